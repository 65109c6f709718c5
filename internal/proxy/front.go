package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Front is the proxy's HTTP/1.x server: on each connection one goroutine
// reads the requests (front_parse.go) and answers them with the handler
// of the http.Server it stands in front of, without net/http's server
// machinery per request (its connection reader's goroutine, woken and
// stopped for every request, was a quarter of what the proxy added:
// docs/benchmarks.md). What it does not take (upgrades, h2c, CONNECT,
// chunked request bodies, any head that is odd) it hands to that
// http.Server with the bytes it read, so that there nothing changes.
//
// A request's caller is watched (its context cancelled when it goes
// away) once it sent the whole request and the answer takes long
// (front_watch.go): most answers come before, and need no reader of the
// caller's connection meanwhile.
type Front struct {
	srv     *http.Server
	handler http.Handler
	handoff *handoff

	shutdown atomic.Bool
	// draining says connections are no longer kept (Drain).
	draining atomic.Bool
	wg       sync.WaitGroup // the connections' goroutines
	handed   atomic.Int64   // connections handed to srv

	mu    sync.Mutex
	ln    net.Listener
	conns map[*frontConn]struct{}
}

// NewFront returns the front of srv: its Handler, ReadHeaderTimeout,
// IdleTimeout (or ReadTimeout) and ErrorLog apply to the requests the
// front takes; srv serves those it hands over.
func NewFront(srv *http.Server) *Front {
	h := srv.Handler
	if h == nil {
		h = http.DefaultServeMux
	}
	return &Front{srv: srv, handler: h, conns: map[*frontConn]struct{}{}}
}

// Serve accepts connections on ln until Shutdown or Close, and returns
// http.ErrServerClosed then, as http.Server's Serve does.
func (f *Front) Serve(ln net.Listener) error {
	f.mu.Lock()
	if f.shutdown.Load() {
		f.mu.Unlock()
		return http.ErrServerClosed
	}
	f.ln = ln
	f.handoff = newHandoff(ln.Addr())
	f.mu.Unlock()
	go f.srv.Serve(f.handoff)
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if f.shutdown.Load() {
				return http.ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: wait, as net/http
			// does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			f.logf("http: Accept error: %v; retrying in %v", err, backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		c := f.newConn(conn)
		if !f.track(c) {
			conn.Close()
			return http.ErrServerClosed
		}
		go c.serve()
	}
}

// Shutdown stops accepting, closes the idle connections, lets the
// requests in flight finish (their connections close after them) and
// returns once they all did, or when ctx ends. The http.Server of the
// handed-over connections shuts down alike.
func (f *Front) Shutdown(ctx context.Context) error {
	f.shutdown.Store(true)
	f.mu.Lock()
	if f.ln != nil {
		f.ln.Close()
	}
	for c := range f.conns {
		c.closeIfIdle()
	}
	f.mu.Unlock()
	err := f.srv.Shutdown(ctx)
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close closes the listener and every connection at once.
func (f *Front) Close() error {
	f.shutdown.Store(true)
	f.mu.Lock()
	if f.ln != nil {
		f.ln.Close()
	}
	for c := range f.conns {
		c.conn.Close()
	}
	f.mu.Unlock()
	return f.srv.Close()
}

// Drain stops keeping connections open, while the front still serves:
// the idle ones close now, and each other closes after its answer (with
// Connection: close). A pod's relay drains its proxy before the workload
// behind it stops: a caller holding a kept connection, opened before the
// pod's endpoint left the Service, would otherwise send its next request
// here, to a workload that is gone. With the connection closed, its
// client opens a new one, which the Service routes to a pod that serves.
func (f *Front) Drain() {
	f.draining.Store(true)
	f.srv.SetKeepAlivesEnabled(false) // the handed-over connections
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		c.closeIfIdle()
	}
}

// shuttingDown says a connection must close after its answer.
func (f *Front) shuttingDown() bool { return f.shutdown.Load() || f.draining.Load() }

func (f *Front) track(c *frontConn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.shutdown.Load() {
		return false
	}
	f.conns[c] = struct{}{}
	f.wg.Add(1)
	return true
}

func (f *Front) untrack(c *frontConn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
	f.wg.Done()
}

func (f *Front) logf(format string, args ...any) {
	if f.srv.ErrorLog != nil {
		f.srv.ErrorLog.Printf(format, args...)
		return
	}
	log.Printf(format, args...)
}

// The states of a connection: waiting for a request (Shutdown closes
// it), reading or answering one, closed.
const (
	connIdle int32 = iota
	connActive
	connClosed
)

// frontConn is one caller's connection.
type frontConn struct {
	f      *Front
	conn   net.Conn
	ctx    context.Context
	remote string
	cr     callerReader
	br     *bufio.Reader
	bw     *bufio.Writer
	// wmu orders what goes to bw before an answer's head: interim
	// answers, and 100 Continue sent by the body's reader.
	wmu   sync.Mutex
	raw   []byte // the head of the request being read
	h     head
	w     frontWriter
	watch watch
	state atomic.Int32
	// unread says a request's body was not all read: the connection
	// closes after its answer, lingering.
	unread bool
}

func (f *Front) newConn(conn net.Conn) *frontConn {
	conn = withRawIO(conn)
	c := &frontConn{f: f, conn: conn, remote: conn.RemoteAddr().String()}
	c.ctx = context.WithValue(context.WithValue(context.Background(), http.ServerContextKey, f.srv),
		http.LocalAddrContextKey, conn.LocalAddr())
	c.cr.conn = conn
	c.br = bufio.NewReader(&c.cr)
	c.bw = bufio.NewWriter(conn)
	c.w.c = c
	c.w.header = http.Header{}
	c.watch.c = c
	return c
}

// closeIfIdle closes c when it waits for a request (Shutdown, Drain).
func (c *frontConn) closeIfIdle() {
	if c.state.CompareAndSwap(connIdle, connClosed) {
		c.conn.Close()
	}
}

// serve reads and answers c's requests in turn, until the caller or an
// answer ends the connection, or it is handed to net/http.
func (c *frontConn) serve() {
	defer c.f.untrack(c)
	defer c.watch.end()
	f := c.f
	first := true
	// deadline says a read deadline is set. As few are set as can be:
	// each change wakes the Go runtime's network poller (see awaitHeaders).
	deadline := false
	if d := f.srv.ReadHeaderTimeout; d > 0 {
		c.conn.SetReadDeadline(time.Now().Add(d))
		deadline = true
	}
	for {
		if c.br.Buffered() == 0 {
			// Idle until the next request's first byte.
			c.state.Store(connIdle)
			// Draining, a kept connection closes; a new one still has
			// its first request answered.
			if (f.shutdown.Load() || !first && f.draining.Load()) && c.state.CompareAndSwap(connIdle, connClosed) {
				c.conn.Close()
				return
			}
			if d := f.idleTimeout(); !first && d > 0 {
				c.conn.SetReadDeadline(time.Now().Add(d))
				deadline = true
			}
			_, err := c.br.Peek(1)
			if !c.state.CompareAndSwap(connIdle, connActive) {
				return // closed by Shutdown
			}
			if err != nil {
				c.conn.Close()
				return
			}
		}
		// The head's time counts from its first byte; one that came
		// whole needs no bound.
		if d := f.srv.ReadHeaderTimeout; d > 0 && !first && !headBuffered(c.br) {
			c.conn.SetReadDeadline(time.Now().Add(d))
			deadline = true
		}
		first = false
		raw, err := readHead(c.br, c.raw[:0])
		c.raw = raw
		if cap(c.raw) > 64<<10 {
			c.raw = nil // a large head's buffer is not kept
		}
		if err == errHeadTooLarge {
			c.refuse("431 Request Header Fields Too Large")
			return
		}
		if err != nil {
			c.conn.Close()
			return
		}
		c.h = head{}
		if !parseHead(raw, &c.h) {
			c.handOver(raw)
			return
		}
		if deadline {
			c.conn.SetReadDeadline(time.Time{})
			deadline = false
		}
		if !c.serveRequest() || f.shuttingDown() {
			if c.unread {
				c.linger() // the caller may still be sending its body
			}
			c.state.Store(connClosed)
			c.conn.Close()
			return
		}
	}
}

// refuse answers status (its code and text) and closes the connection,
// as net/http's server does: its write side first, then, after the
// caller's unread bytes (for half a second at most), the rest, so that
// the caller reads the answer before a reset.
func (c *frontConn) refuse(status string) {
	io.WriteString(c.conn, "HTTP/1.1 "+status+"\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"+status)
	c.linger()
	c.state.Store(connClosed)
	c.conn.Close()
}

// linger closes the connection's write side and reads what the caller
// still sends, for half a second at most, before the connection is
// closed: closed with bytes unread, it would be reset, and the caller
// might lose the answer it was sent (net/http's server does the same).
func (c *frontConn) linger() {
	if cw, ok := c.conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		c.conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		io.Copy(io.Discard, c.conn)
	}
}

// headBuffered says br holds a whole head: reading it cannot wait.
func headBuffered(br *bufio.Reader) bool {
	b, _ := br.Peek(br.Buffered())
	return bytes.Contains(b, []byte("\r\n\r\n"))
}

func (f *Front) idleTimeout() time.Duration {
	if f.srv.IdleTimeout != 0 {
		return f.srv.IdleTimeout
	}
	return f.srv.ReadTimeout
}

// serveRequest answers the request of c.h and says whether the
// connection can take another.
func (c *frontConn) serveRequest() bool {
	h := &c.h
	// The request is built here and copied once with its context
	// (WithContext allocates the copy; this one stays on the stack).
	req := http.Request{
		Method: h.method, URL: h.url, RequestURI: h.target,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: h.minor,
		Header: h.header, Host: h.host, RemoteAddr: c.remote,
		Body: http.NoBody, ContentLength: h.length, Close: h.close,
	}
	if h.minor == 0 {
		req.Proto = "HTTP/1.0"
	}
	var body *frontBody
	if h.length > 0 {
		body = &frontBody{c: c, remaining: h.length, expect: h.expect, expected: h.expect}
		req.Body = body
	}
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	r := req.WithContext(ctx)
	c.w.reset(h, body, ctx)
	c.watch.begin(cancel)
	if body == nil {
		c.watch.arm()
	}
	if !c.handle(r) {
		// The handler broke off its answer (http.ErrAbortHandler): the
		// caller must not take what went out for all of it.
		c.bw.Flush()
		c.watch.stop()
		return false
	}
	keep := c.w.finish()
	if err := c.bw.Flush(); err != nil {
		keep = false
	}
	if body != nil && !body.finish() {
		keep = false
		c.unread = true
	}
	if gone := c.watch.stop(); gone {
		keep = false
	}
	return keep
}

// handle runs the handler on r and says whether it returned (false: it
// panicked, as it does to abort an answer).
func (c *frontConn) handle(r *http.Request) (ok bool) {
	defer func() {
		if err := recover(); err != nil {
			if err != http.ErrAbortHandler {
				c.f.logf("http: panic serving %v: %v", c.remote, err)
			}
			ok = false
		}
	}()
	c.f.handler.ServeHTTP(&c.w, r)
	return true
}

// sendContinue tells a caller that waits for it to send its body, unless
// the answer began.
func (c *frontConn) sendContinue() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.w.committed {
		c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		c.bw.Flush()
	}
}

// handOver gives the connection to the http.Server, raw first.
func (c *frontConn) handOver(raw []byte) {
	c.conn.SetReadDeadline(time.Time{})
	rc := &replayConn{Conn: c.conn, r: io.MultiReader(&byteReader{b: raw}, c.br)}
	c.f.handed.Add(1)
	if !c.f.handoff.give(rc) {
		c.conn.Close()
	}
}

// callerReader reads the caller's connection, after the byte the watch
// may have read.
type callerReader struct {
	conn net.Conn
	b    [1]byte
	has  bool
}

func (r *callerReader) Read(p []byte) (int, error) {
	if r.has && len(p) > 0 {
		r.has = false
		p[0] = r.b[0]
		return 1, nil
	}
	return r.conn.Read(p)
}

// handoff is the listener of the http.Server behind the front: its
// connections are those the front gives it.
type handoff struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newHandoff(addr net.Addr) *handoff {
	return &handoff{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// give hands conn to the server; false once it closed.
func (h *handoff) give(conn net.Conn) bool {
	select {
	case h.conns <- conn:
		return true
	case <-h.done:
		return false
	}
}

func (h *handoff) Accept() (net.Conn, error) {
	select {
	case c := <-h.conns:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

func (h *handoff) Close() error {
	h.once.Do(func() { close(h.done) })
	return nil
}

func (h *handoff) Addr() net.Addr { return h.addr }

// replayConn is a caller's connection handed to net/http: its reads
// return what the front read first.
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite lets net/http half-close it, as a *net.TCPConn.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// byteReader reads b once (bytes.Reader without its Seek and ReadAt).
type byteReader struct{ b []byte }

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}
