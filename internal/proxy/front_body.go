package proxy

import (
	"io"
	"net/http"
	"sync"
)

// maxDiscard is the most of a body its handler did not read that the
// front reads away to keep the connection for the next request, as
// net/http's server does (more, and the connection is closed instead).
const maxDiscard = 256 << 10

// frontBody is a request's body of a known length, read from the
// caller's connection. It may be read by another goroutine than the
// request's (the lean path's body writer): mu orders that reader and the
// end of the request.
type frontBody struct {
	c *frontConn

	mu        sync.Mutex
	remaining int64
	// expect says 100 Continue goes to the caller before the first read;
	// expected that the caller asked for it.
	expect, expected bool
	reading          bool // a Read is waiting for the caller
	closed           bool // the request is over: no more reads
	err              error
}

func (b *frontBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	switch {
	case b.closed:
		b.mu.Unlock()
		return 0, http.ErrBodyReadAfterClose
	case b.err != nil:
		b.mu.Unlock()
		return 0, b.err
	case b.remaining == 0:
		b.mu.Unlock()
		return 0, io.EOF
	}
	expect := b.expect
	b.expect = false
	b.reading = true
	b.mu.Unlock()
	if expect {
		b.c.sendContinue()
	}

	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.c.br.Read(p)

	b.mu.Lock()
	defer b.mu.Unlock()
	b.reading = false
	b.remaining -= int64(n)
	switch {
	case b.remaining == 0:
		b.err = io.EOF
		b.c.watch.arm() // the caller has said all: watch for it going away
	case err == io.EOF:
		b.err = io.ErrUnexpectedEOF
	case err != nil:
		b.err = err
	}
	// The last bytes come with io.EOF, as from net/http's body: a
	// reader that has all of it need not come back.
	return n, b.err
}

// waiting says the caller asked for 100 Continue and has not sent all
// of its body: once the answer begins, the connection cannot take
// another request (net/http's rule).
func (b *frontBody) waiting() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.expected && b.err != io.EOF
}

func (b *frontBody) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

// finish ends the body once its request was answered, and says whether
// the connection can take another request: all of the body was read, or
// what is left was read away now.
func (b *frontBody) finish() bool {
	b.mu.Lock()
	b.closed = true
	reading, remaining, err, expect := b.reading, b.remaining, b.err, b.expect
	b.mu.Unlock()
	switch {
	case reading || (err != nil && err != io.EOF):
		return false // another goroutine still waits for the caller
	case remaining == 0:
		return true
	case expect || remaining > maxDiscard:
		// A caller that waits for 100 Continue was not told to send
		// its body; a large one is not worth reading.
		return false
	}
	n, err := io.CopyN(io.Discard, b.c.br, remaining)
	return n == remaining && err == nil
}
