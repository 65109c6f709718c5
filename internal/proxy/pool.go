package proxy

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// appConn is one HTTP/1.1 connection to the app, used by one request at a
// time and kept for the next while it stays good.
type appConn struct {
	net.Conn
	br *bufio.Reader
	bw *bufio.Writer
	// reused says it served a request before: if it fails before its
	// answer began, the app may have closed it while it was idle.
	reused bool
	idle   time.Time // when it was last put back

	// mu orders the changes of the read deadline: a caller that went
	// away (abort) wins over the wait for the answer's headers.
	mu        sync.Mutex
	aborted   bool
	headersIn bool
	// rdl is the read deadline set for an answer's headers, kept for
	// the next request while it is near enough to what that one needs
	// (awaitHeaders); zero: none.
	rdl time.Time
	// wdl says a write deadline ends the writes (exchange.end).
	wdl bool

	// x is the exchange of the request on it, and res, resHeader and
	// body the answer parseResponse read last: one request at a time
	// uses the connection, and its exchange is over before the
	// connection serves another.
	x         exchange
	res       http.Response
	resHeader http.Header
	body      lenBody
}

// aLongTimeAgo is a deadline in the past: it ends any read or write at
// once.
var aLongTimeAgo = time.Unix(1, 0)

// abort ends every read and write on the connection: its request's
// caller went away.
func (c *appConn) abort() {
	c.mu.Lock()
	c.aborted = true
	c.SetDeadline(aLongTimeAgo)
	c.mu.Unlock()
}

// awaitHeaders bounds the wait for the answer's headers from now, to
// timeout or up to a hundredth of it (a second at most) less: a deadline
// an earlier request set that near is kept. Each change of a deadline
// wakes the Go runtime's network poller, which, request after request,
// was a tenth of what the proxy added (docs/benchmarks.md).
func (c *appConn) awaitHeaders(timeout time.Duration) {
	if timeout <= 0 {
		return
	}
	c.mu.Lock()
	if !c.aborted && !c.headersIn {
		want := time.Now().Add(timeout)
		if c.rdl.IsZero() || want.Sub(c.rdl) > min(timeout/100, time.Second) {
			c.SetReadDeadline(want)
			c.rdl = want
		}
	}
	c.mu.Unlock()
}

// gotHeaders lifts the bound, so that the answer's body may take its
// time; bodyIn says the whole body was read with the headers: the bound
// then stays for the next request.
func (c *appConn) gotHeaders(bodyIn bool) {
	c.mu.Lock()
	c.headersIn = true
	if !c.aborted && !bodyIn {
		c.liftReadDeadline()
	}
	c.mu.Unlock()
}

// liftReadDeadline takes the read deadline off; c.mu is held.
func (c *appConn) liftReadDeadline() {
	if !c.rdl.IsZero() {
		c.SetReadDeadline(time.Time{})
		c.rdl = time.Time{}
	}
}

// pool keeps idle connections to the app for the next requests, at most
// max of them: a burst above it opens more, closed after. A connection
// idle for longer than idleTimeout is closed. Each kept one costs a
// file descriptor and 8 KiB of buffers, and no goroutine.
type pool struct {
	addr        string
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	max         int
	idleTimeout time.Duration

	mu     sync.Mutex
	idle   []*appConn // the most recently used last
	pruner *time.Timer
	closed bool
}

func newPool(addr string) *pool {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &pool{addr: addr, dial: d.DialContext, max: 64, idleTimeout: 30 * time.Second}
}

// get returns a kept connection that is still open, or a new one.
func (p *pool) get(ctx context.Context) (*appConn, error) {
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			return p.open(ctx)
		}
		c := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		// The app may have closed it while it was idle (its own idle
		// timeout: Node's is 5 s); a request sent on it would be lost.
		if c.br.Buffered() > 0 || closedByPeer(c.Conn) {
			c.Close()
			continue
		}
		c.reused = true
		return c, nil
	}
}

// open dials the app.
func (p *pool) open(ctx context.Context) (*appConn, error) {
	conn, err := p.dial(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	conn = withRawIO(conn)
	return &appConn{Conn: conn, br: bufio.NewReader(conn), bw: bufio.NewWriter(conn)}, nil
}

// put keeps c for another request, or closes it when the pool is full.
func (p *pool) put(c *appConn) {
	c.mu.Lock()
	c.aborted, c.headersIn = false, false
	c.mu.Unlock()
	if c.wdl {
		c.SetWriteDeadline(time.Time{})
		c.wdl = false
	}
	c.idle = time.Now()
	p.mu.Lock()
	if p.closed || len(p.idle) >= p.max {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.idle = append(p.idle, c)
	if p.pruner == nil {
		p.pruner = time.AfterFunc(p.idleTimeout, p.prune)
	}
	p.mu.Unlock()
}

// prune closes the connections idle for longer than idleTimeout, and
// comes back when the oldest of the others will be.
func (p *pool) prune() {
	now := time.Now()
	p.mu.Lock()
	n := 0
	for n < len(p.idle) && now.Sub(p.idle[n].idle) >= p.idleTimeout {
		n++
	}
	stale := append([]*appConn(nil), p.idle[:n]...)
	p.idle = append(p.idle[:0], p.idle[n:]...)
	clear(p.idle[len(p.idle):cap(p.idle)])
	if len(p.idle) > 0 && !p.closed {
		p.pruner.Reset(p.idle[0].idle.Add(p.idleTimeout).Sub(now))
	} else {
		p.pruner = nil
	}
	p.mu.Unlock()
	for _, c := range stale {
		c.Close()
	}
}

// close closes the idle connections and keeps none from now on.
func (p *pool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	if p.pruner != nil {
		p.pruner.Stop()
		p.pruner = nil
	}
	p.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
}
