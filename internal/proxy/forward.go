package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The lean path: an HTTP/1.1 request is written to a kept connection to
// the app and its answer read back on the request's own goroutine (a
// body of more than inlineBody, or of unknown length, is written by a
// goroutine of its own meanwhile, as the app may answer before reading
// it all). httputil.ReverseProxy with its Transport hands every request
// to two more goroutines (the connection's writer and reader) and copies
// its headers twice; on a loopback hop those hand-offs cost a fifth of
// what the proxy adds (docs/benchmarks.md). Upgrades, CONNECT and h2c
// keep ReverseProxy.

// max1xx bounds the interim answers (100 Continue, 103 Early Hints) of
// one request, as net/http's Transport does.
const max1xx = 5

// errBrokeOff is the app ending an answer before its end.
var errBrokeOff = errors.New("the app broke off its answer")

// exchange is one request on one connection to the app.
type exchange struct {
	c *appConn
	// The watch on the caller, which aborts c when it goes away: the
	// front's (watchCaller), or stop, of a context.AfterFunc.
	front callerWatcher
	stop  func() bool
	// body is the end of the request body's writer when it runs on a
	// goroutine of its own; nil otherwise.
	body chan error

	// mu guards what that writer is doing: reading says it waits for
	// the caller's body, answered that the answer is over and it must
	// not read on.
	mu       sync.Mutex
	reading  bool
	answered bool
}

// aborter is what a caller's leaving aborts: the connection to the app
// its request is on.
type aborter interface{ abort() }

// callerWatcher is the front's ResponseWriter, which aborts the
// connection of a request whose caller goes away itself: a
// context.AfterFunc per request costs five allocations.
type callerWatcher interface {
	watchCaller(ctx context.Context, a aborter) bool
	unwatchCaller() bool
}

// watch aborts x's connection when r's caller goes away (r's context
// ends) before unwatch.
func (x *exchange) watch(w http.ResponseWriter, r *http.Request) {
	if rec, ok := w.(*recorder); ok {
		w = rec.ResponseWriter
	}
	if cw, ok := w.(callerWatcher); ok && cw.watchCaller(r.Context(), x.c) {
		x.front = cw
		return
	}
	x.stop = context.AfterFunc(r.Context(), x.c.abort)
}

// unwatch ends the watch on the caller: false once it went away (the
// connection is then aborted).
func (x *exchange) unwatch() bool {
	if x.front != nil {
		return x.front.unwatchCaller()
	}
	return x.stop()
}

// errAnswered ends a request body's writer whose answer is over.
var errAnswered = errors.New("the app answered before it had the whole body")

// end gives the connection back to the pool when it can serve another
// request (its request fully written, its answer fully read), or closes
// it.
func (x *exchange) end(p *pool, reusable bool) {
	if !x.unwatch() {
		reusable = false
	}
	if x.body != nil {
		select {
		case err := <-x.body:
			reusable = reusable && err == nil
		default:
			x.mu.Lock()
			x.answered = true
			reading := x.reading
			x.mu.Unlock()
			if reading {
				// The app answered before the caller sent the whole
				// body: the rest cannot go on this connection.
				reusable = false
				break
			}
			// The writer is writing to the app, or done and not yet
			// said so: what it has left goes now or never.
			x.c.SetWriteDeadline(aLongTimeAgo)
			x.c.wdl = true
			err := <-x.body
			reusable = reusable && err == nil
		}
	}
	if reusable {
		p.put(x.c)
	} else {
		x.c.Close()
	}
}

// readBody reads the caller's body for the writer, unless the answer is
// over (see end).
func (x *exchange) readBody(r *http.Request, buf []byte) (int, error) {
	if x.body == nil {
		return r.Body.Read(buf) // on the request's goroutine: before the answer
	}
	x.mu.Lock()
	if x.answered {
		x.mu.Unlock()
		return 0, errAnswered
	}
	x.reading = true
	x.mu.Unlock()
	n, err := r.Body.Read(buf)
	x.mu.Lock()
	x.reading = false
	x.mu.Unlock()
	return n, err
}

// idleClosedError is a kept connection failing before the app answered
// anything: the app probably closed it while it was idle.
type idleClosedError struct {
	err error
	// sent says the request went out; when it did not, the app saw
	// nothing of it.
	sent bool
}

func (e *idleClosedError) Error() string { return e.err.Error() }
func (e *idleClosedError) Unwrap() error { return e.err }

// forward is the lean path of a request (see above).
func (p *Proxy) forward(w *recorder, r *http.Request) {
	if bodyAside(r) {
		// The answer may go out while the body still comes in: the
		// server must not wait for the rest of it before the answer.
		http.NewResponseController(w).EnableFullDuplex()
	}
	x, res, err := p.head(w, r)
	if err != nil {
		p.failed(w, r, err)
		return
	}
	reusable, err := p.respond(w, res)
	x.end(p.pool, reusable)
	if errors.Is(err, errBrokeOff) && r.Context().Err() == nil {
		// As ReverseProxy does: the caller's connection is cut, so that
		// it does not take a truncated answer for a whole one.
		panic(http.ErrAbortHandler)
	}
}

// head sends r to the app and returns the head of its final answer,
// after passing on interim ones to w. A request that can be sent again
// is, once, on a new connection when a kept one turns out closed.
func (p *Proxy) head(w http.ResponseWriter, r *http.Request) (*exchange, *http.Response, error) {
	x, res, err := p.send(w, r, false)
	if err != nil && retryable(r, err) {
		x, res, err = p.send(w, r, true)
	}
	if err != nil {
		return nil, nil, err
	}
	for n := 0; res.StatusCode < 200 && res.StatusCode != http.StatusSwitchingProtocols; n++ {
		if n == max1xx {
			err = fmt.Errorf("the app sent more than %d interim answers", max1xx)
			break
		}
		h := w.Header()
		for k, vv := range res.Header {
			h[k] = vv
		}
		w.WriteHeader(res.StatusCode)
		clear(h)
		if res, err = x.c.readResponse(r); err != nil {
			break
		}
	}
	if err == nil && res.StatusCode == http.StatusSwitchingProtocols {
		err = errors.New("the app switched protocols unasked")
	}
	if err != nil {
		x.end(p.pool, false)
		return nil, nil, err
	}
	x.c.gotHeaders(res.Body == http.NoBody || (res.ContentLength >= 0 && int64(x.c.br.Buffered()) >= res.ContentLength))
	return x, res, nil
}

// send writes r on a kept connection (a new one when fresh) and reads the
// head of the app's first answer.
func (p *Proxy) send(w http.ResponseWriter, r *http.Request, fresh bool) (*exchange, *http.Response, error) {
	var c *appConn
	var err error
	if fresh {
		c, err = p.pool.open(r.Context())
	} else {
		c, err = p.pool.get(r.Context())
	}
	if err != nil {
		return nil, nil, err
	}
	x := &c.x
	*x = exchange{c: c}
	x.watch(w, r)
	body := hasBody(r)
	writeHead(c.bw, r, p.o.Target.Host, body)
	switch {
	case bodyAside(r):
		// The answer is awaited from now, while the body goes: without
		// the bound an earlier request left (its writer sets it).
		c.mu.Lock()
		c.liftReadDeadline()
		c.mu.Unlock()
		x.body = make(chan error, 1)
		go func() { x.body <- x.sendBody(r, p.o.Timeout) }()
	case body:
		if err := x.sendBody(r, p.o.Timeout); err != nil {
			x.end(p.pool, false)
			return nil, nil, err
		}
	default:
		if err := c.bw.Flush(); err != nil {
			x.end(p.pool, false)
			if c.reused {
				err = &idleClosedError{err: err}
			}
			return nil, nil, err
		}
		c.awaitHeaders(p.o.Timeout)
	}
	if _, err := c.br.Peek(1); err != nil {
		x.end(p.pool, false)
		var ne net.Error
		if c.reused && !(errors.As(err, &ne) && ne.Timeout()) {
			err = &idleClosedError{err: err, sent: true}
		}
		return nil, nil, err
	}
	res, err := c.readResponse(r)
	if err != nil {
		x.end(p.pool, false)
		return nil, nil, err
	}
	return x, res, nil
}

// retryable says whether r, which failed with err, may be sent again on
// another connection: as net/http's Transport decides, a request without
// a body that the app never saw, or an idempotent one (RFC 9110 9.2.2)
// on a connection closed before it answered.
func retryable(r *http.Request, err error) bool {
	var ic *idleClosedError
	if !errors.As(err, &ic) || r.Context().Err() != nil || hasBody(r) {
		return false
	}
	if !ic.sent {
		return true
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, key := r.Header["Idempotency-Key"]
	_, xkey := r.Header["X-Idempotency-Key"]
	return key || xkey
}

func hasBody(r *http.Request) bool { return r.Body != nil && r.Body != http.NoBody }

// bodyAside says r's body is written by a goroutine of its own while the
// answer is read: it is larger than inlineBody, or of unknown length.
func bodyAside(r *http.Request) bool {
	return hasBody(r) && (r.ContentLength < 0 || r.ContentLength > inlineBody)
}

// inlineBody is the largest body written on the request's goroutine
// before its answer is read: one that fits in the app's socket buffers
// on loopback, so that writing it cannot wait for an app that answers
// without reading it. A larger one, or one of unknown length, is written
// by a goroutine of its own while the answer is read.
const inlineBody = 64 << 10

// sendBody writes r's body to the app: as it comes after a
// Content-Length, in chunks otherwise (each flushed at once, for a
// stream), then its trailers. The wait for the answer's headers starts
// once it is all written. A caller whose body breaks off ends the
// exchange: the app would wait for the rest.
func (x *exchange) sendBody(r *http.Request, timeout time.Duration) error {
	bw := x.c.bw
	var dst io.Writer = bw
	var cw io.WriteCloser
	if r.ContentLength < 0 {
		cw = httputil.NewChunkedWriter(bw)
		dst = cw
	}
	bp := buffers.get()
	defer buffers.put(bp)
	buf := *bp
	for {
		n, rerr := x.readBody(r, buf)
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return err
			}
			if cw != nil {
				if err := bw.Flush(); err != nil {
					return err
				}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if rerr != errAnswered {
				x.c.abort()
			}
			return rerr
		}
	}
	if cw != nil {
		cw.Close() // the last chunk; its trailers follow
		r.Trailer.Write(bw)
		bw.WriteString("\r\n")
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	x.c.awaitHeaders(timeout)
	return nil
}

// writeHead writes the request line and headers of r to the app: the
// caller's Host, its headers but those of its connection (hop-by-hop,
// RFC 9110 7.6.1), X-Forwarded-For, -Host and -Proto as ReverseProxy's
// SetXForwarded sets them, and the framing of the body. Errors stay in
// bw until it is flushed.
func writeHead(bw *bufio.Writer, r *http.Request, targetHost string, body bool) {
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(r.URL.RequestURI())
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	host := r.Host
	if host == "" {
		host = targetHost
	}
	bw.WriteString(host)
	bw.WriteString("\r\n")
	r.Header.WriteSubset(bw, skipped(r.Header, requestSkip))
	if hasToken(r.Header["Te"], "trailers") {
		bw.WriteString("Te: trailers\r\n")
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		bw.WriteString("X-Forwarded-For: ")
		bw.WriteString(ip)
		bw.WriteString("\r\n")
	}
	if r.Host != "" {
		bw.WriteString("X-Forwarded-Host: ")
		bw.WriteString(r.Host)
		bw.WriteString("\r\n")
	}
	if r.TLS == nil {
		bw.WriteString("X-Forwarded-Proto: http\r\n")
	} else {
		bw.WriteString("X-Forwarded-Proto: https\r\n")
	}
	switch {
	case r.ContentLength > 0:
		var b [20]byte
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(b[:0], r.ContentLength, 10))
		bw.WriteString("\r\n")
	case body:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
		if len(r.Trailer) > 0 {
			keys := make([]string, 0, len(r.Trailer))
			for k := range r.Trailer {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			bw.WriteString("Trailer: ")
			bw.WriteString(strings.Join(keys, ", "))
			bw.WriteString("\r\n")
		}
	case r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch:
		// Many servers want a length for these, as net/http sends it.
		bw.WriteString("Content-Length: 0\r\n")
	}
	bw.WriteString("\r\n")
}

// respond writes the app's answer res to the caller: its headers but
// those of the connection, its body (each read flushed at once for a
// stream: no length, or server-sent events) and trailers. It says
// whether the connection can serve another request, and errBrokeOff when
// the app broke off the body.
func (p *Proxy) respond(w *recorder, res *http.Response) (reusable bool, err error) {
	h := w.Header()
	skip := skipped(res.Header, hopHeaders)
	for k, vv := range res.Header {
		if !skip[k] {
			h[k] = vv
		}
	}
	announced := len(res.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		h["Trailer"] = []string{strings.Join(keys, ", ")}
	}
	w.WriteHeader(res.StatusCode)
	stream := res.ContentLength < 0 || isEventStream(res.Header.Get("Content-Type"))
	if announced > 0 {
		// The answer goes out chunked, so that trailers can follow.
		w.flush()
	}
	bp := buffers.get()
	defer buffers.put(bp)
	buf := *bp
	for {
		n, rerr := res.Body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return false, err // the caller went away
			}
			if stream {
				w.flush()
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return false, fmt.Errorf("%w: %w", errBrokeOff, rerr)
		}
	}
	if len(res.Trailer) > 0 {
		prefix := ""
		if len(res.Trailer) != announced {
			prefix = http.TrailerPrefix // some were not announced
		}
		for k, vv := range res.Trailer {
			h[prefix+k] = vv
		}
	}
	return !res.Close, nil
}

// isEventStream says whether a Content-Type is text/event-stream,
// without parsing it (mime.ParseMediaType allocates).
func isEventStream(ct string) bool {
	const es = "text/event-stream"
	if len(ct) < len(es) || !strings.EqualFold(ct[:len(es)], es) {
		return false
	}
	return len(ct) == len(es) || ct[len(es)] == ';' || ct[len(es)] == ' '
}

// hopHeaders are the headers of one connection (RFC 9110 7.6.1), not
// forwarded in either direction, as ReverseProxy drops them.
var hopHeaders = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// requestSkip are the caller's headers writeHead does not copy: those of
// the connection, the body's framing and the forwarding headers, which it
// writes itself.
var requestSkip = func() map[string]bool {
	m := map[string]bool{"Content-Length": true, "Forwarded": true, "X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true}
	for k := range hopHeaders {
		m[k] = true
	}
	return m
}()

// skipped is base, with the headers that h's Connection names added (a
// new map only when it names one base does not have; "close" names
// none).
func skipped(h http.Header, base map[string]bool) map[string]bool {
	m, copied := base, false
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			tok = http.CanonicalHeaderKey(strings.TrimSpace(tok))
			if tok == "" || tok == "Close" || m[tok] {
				continue
			}
			if !copied {
				m, copied = make(map[string]bool, len(base)+1), true
				for k := range base {
					m[k] = true
				}
			}
			m[tok] = true
		}
	}
	return m
}

// hasToken says whether a comma-separated header lists tok (any case).
func hasToken(values []string, tok string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), tok) {
				return true
			}
		}
	}
	return false
}
