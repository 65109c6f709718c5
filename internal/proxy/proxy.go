// Package proxy is skiff-relay's per-pod proxy: it stands in front of the
// workload's port, forwards every request to the app on loopback and
// measures it, whatever the app's code (docs/observe.md): requests by
// method and status, their duration, the requests in flight, and, for a
// workload that scales from zero, the pod's cold start.
//
// The proxy cannot know the app's routes, so its series carry no
// http_route: a path is not a route (/orders/42 and /orders/43 are one),
// and labelling by path would let callers grow the series without bound.
package proxy

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// StatusClientClosed is recorded for a request whose caller went away
// before the app answered (nginx's convention; nothing is sent).
const StatusClientClosed = 499

// Options configure a Proxy.
type Options struct {
	// Target is the app: http://127.0.0.1:<port>.
	Target *url.URL
	// Timeout bounds the wait for the app's response headers (a stream or
	// a WebSocket may then last as long as it likes); a request that
	// waits longer is answered 504. 0: no bound.
	Timeout time.Duration
	// ColdStarts says the workload scales from zero: the pod's first
	// request is a cold start, its wait counted from Started.
	ColdStarts bool
	// Started is when the pod started, as near as the relay knows: its
	// own process start (it is the pod's first container).
	Started time.Time
	Metrics *Metrics
	Logger  *slog.Logger
	// Inbound, when set, sees each request before it is forwarded: the
	// place to start or continue a trace (traceparent) for the app.
	Inbound func(*http.Request)
}

// Proxy forwards requests to the app and records each in its Metrics.
//
// An HTTP/1.1 request takes the lean path (forward.go) on connections of
// the proxy's own pool; upgrades (WebSocket) and h2c go through
// httputil.ReverseProxy.
type Proxy struct {
	o        Options
	pool     *pool
	h1, h2c  *httputil.ReverseProxy
	answered atomic.Bool // the first response began
	now      func() time.Time
	// last is when the latest request began (UnixNano), for Quiet.
	last atomic.Int64
	// lean says HTTP/1.1 requests take the lean path: the target is an
	// http:// host without a path of its own (the chart's
	// http://127.0.0.1:PORT/).
	// The package's benchmarks turn it off to compare.
	lean bool
}

// New returns the proxy of o.
func New(o Options) *Proxy {
	port := o.Target.Port()
	if port == "" {
		port = "80"
	}
	p := &Proxy{o: o, now: time.Now, pool: newPool(net.JoinHostPort(o.Target.Hostname(), port))}
	p.lean = o.Target.Scheme == "http" && (o.Target.Path == "" || o.Target.Path == "/") && o.Target.RawQuery == ""
	p.h1 = p.reverseProxy(transport(o.Timeout, false))
	p.h2c = p.reverseProxy(transport(o.Timeout, true))
	return p
}

// Close closes the idle connections to the app. The Proxy may still
// serve: its later connections are not kept.
func (p *Proxy) Close() {
	p.pool.close()
	for _, rp := range []*httputil.ReverseProxy{p.h1, p.h2c} {
		rp.Transport.(*http.Transport).CloseIdleConnections()
	}
}

// transport keeps connections to the app open (every request goes to the
// same loopback address). With h2c, it speaks HTTP/2 without TLS, for a
// caller that did so (gRPC): the app must then speak it too.
func transport(timeout time.Duration, h2c bool) *http.Transport {
	t := &http.Transport{
		DialContext: (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		// Enough kept connections for the requests in flight at once in
		// a busy pod; a burst above it opens more, closed after. Each
		// idle one costs two goroutines and 8 KiB of buffers.
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: timeout,
		// The app's answer goes to the caller as it is, compressed or not.
		DisableCompression: true,
	}
	if h2c {
		t.Protocols = new(http.Protocols)
		t.Protocols.SetUnencryptedHTTP2(true)
	}
	return t
}

func (p *Proxy) reverseProxy(t http.RoundTripper) *httputil.ReverseProxy {
	target := p.o.Target
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // the app sees the Host its caller asked for
			r.SetXForwarded()
		},
		Transport: t,
		// ReverseProxy flushes every write of an answer without a length
		// (a stream) or of text/event-stream at once; an answer of known
		// length goes out as its buffer fills. WebSockets are hijacked.
		FlushInterval: 0,
		ErrorHandler:  p.failed,
		BufferPool:    buffers,
	}
}

// buffers are ReverseProxy's copy buffers, reused: without them, each
// request allocates 32 KiB.
var buffers = &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 32*1024); return &b }}}

type bufferPool struct{ pool sync.Pool }

func (b *bufferPool) Get() []byte  { return *b.pool.Get().(*[]byte) }
func (b *bufferPool) Put(x []byte) { b.pool.Put(&x) }

// get and put are Get and Put without the allocation of a new pointer
// for each Put: the lean path's.
func (b *bufferPool) get() *[]byte  { return b.pool.Get().(*[]byte) }
func (b *bufferPool) put(p *[]byte) { b.pool.Put(p) }

// failed answers a request the app did not: 504 when it did not answer
// in time, 502 when it could not be reached or broke off; nothing when
// the caller went away (recorded as StatusClientClosed).
func (p *Proxy) failed(w http.ResponseWriter, r *http.Request, err error) {
	rec, _ := w.(*recorder)
	var ne net.Error
	switch {
	case r.Context().Err() != nil:
		if rec != nil {
			rec.status = StatusClientClosed
		}
		return
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		w.WriteHeader(http.StatusGatewayTimeout)
	default:
		w.WriteHeader(http.StatusBadGateway)
	}
	if p.o.Logger != nil {
		p.o.Logger.Warn("the app did not answer", "method", r.Method, "path", r.URL.Path, "error", err.Error())
	}
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := p.now()
	p.last.Store(start.UnixNano())
	m := p.o.Metrics
	m.begin()
	rec := &recorder{ResponseWriter: w, p: p}
	if p.o.Inbound != nil {
		p.o.Inbound(r)
	}
	defer func() {
		// A panic (ErrAbortHandler when the app broke off an answer)
		// still ends the request.
		status := rec.status
		if status == 0 {
			status = http.StatusBadGateway
		}
		now := p.now()
		m.end(r.Method, status, now.Sub(start), now)
	}()
	switch {
	case r.ProtoMajor == 2:
		p.h2c.ServeHTTP(rec, r)
	case !p.lean || r.Method == http.MethodConnect || hasToken(r.Header["Connection"], "upgrade"):
		p.h1.ServeHTTP(rec, r)
	default:
		p.forward(rec, r)
	}
	if rec.status == 0 {
		rec.status = http.StatusOK // an answer without a body or header written
	}
}

// firstByte notes that a response began: for the pod's first, with cold
// starts on, the caller's wait ends here.
func (p *Proxy) firstByte() {
	if !p.o.ColdStarts || p.answered.Load() || !p.answered.CompareAndSwap(false, true) {
		return
	}
	now := p.now()
	p.o.Metrics.coldStart(now.Sub(p.o.Started), now)
}

// recorder notes the status of the answer and when it began. Unwrap lets
// ReverseProxy flush and hijack (a WebSocket) through it.
type recorder struct {
	http.ResponseWriter
	p      *Proxy
	status int
}

func (r *recorder) WriteHeader(code int) {
	// 1xx other than 101 are interim: the answer's status comes after.
	if r.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		r.status = code
		r.p.firstByte()
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
		r.p.firstByte()
	}
	return r.ResponseWriter.Write(b)
}

// Hijack hands the connection to ReverseProxy for a protocol upgrade
// (WebSocket): the app's 101 goes to the caller on the raw connection.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err == nil && r.status == 0 {
		r.status = http.StatusSwitchingProtocols
		r.p.firstByte()
	}
	return conn, brw, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// flush sends what was written so far to the caller.
func (r *recorder) flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Quiet returns once no request began for quiet, counted from the call
// at the earliest, or when ctx ends. A terminating pod's relay waits for
// it before its workload is told to stop (the preStop hook's /drain):
// callers still routed to the pod while its endpoint is being removed
// everywhere (kube-proxy, the KEDA interceptor) are answered by the
// workload rather than refused. That removal begins with the pod's
// termination, so a pod quiet before it waits all the same. The
// requests in flight then are the workload's to finish (its graceful
// shutdown), so a long stream does not hold the pod.
func (p *Proxy) Quiet(ctx context.Context, quiet time.Duration) error {
	begin := p.now().UnixNano()
	for {
		wait := quiet - p.now().Sub(time.Unix(0, max(p.last.Load(), begin)))
		if wait <= 0 {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
