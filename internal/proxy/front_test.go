package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// frontApp answers by its path, and says in its body what it saw of the
// request.
var frontApp = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	var seen strings.Builder
	fmt.Fprintf(&seen, "%s %s %s host=%q length=%d\n", r.Method, r.RequestURI, r.Proto, r.Host, r.ContentLength)
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range r.Header {
			if !yield(k) {
				return
			}
		}
	}) {
		fmt.Fprintf(&seen, "%s: %q\n", k, r.Header[k])
	}
	if r.URL.Path != "/ignore" {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(&seen, "body=%q\n", b)
	}
	h := w.Header()
	switch r.URL.Path {
	case "/nosniff": // no Content-Type: the server in front sniffs one
		io.WriteString(w, "<html><body>"+seen.String())
		return
	case "/nodate":
		h["Date"] = nil
	case "/204":
		w.WriteHeader(http.StatusNoContent)
		return
	case "/304":
		h.Set("Content-Type", "text/plain")
		h.Set("Etag", `"x"`)
		w.WriteHeader(http.StatusNotModified)
		return
	case "/chunked":
		h.Set("Content-Type", "text/plain")
		io.WriteString(w, seen.String())
		http.NewResponseController(w).Flush()
		io.WriteString(w, "more\n")
		return
	case "/empty-chunked":
		h.Set("Content-Type", "text/plain")
		http.NewResponseController(w).Flush()
		return
	case "/trailer":
		h.Set("Content-Type", "text/plain")
		h.Set("Trailer", "X-Sum")
		defer h.Set("X-Sum", "42")
	case "/teapot":
		h.Set("Content-Type", "text/plain")
		w.WriteHeader(599)
	case "/early-hints":
		h.Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		h.Del("Link")
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	io.WriteString(w, seen.String())
})

// rawExchange writes req on a new connection to addr and returns all the
// server wrote until it closed the connection, or for wait.
func rawExchange(t *testing.T, addr, req string, wait time.Duration) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(conn)
	var ne net.Error
	// A server that closes with bytes of the caller unread resets the
	// connection: its answer came before.
	if err != nil && !(errors.As(err, &ne) && ne.Timeout()) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("%.200q: %v after %.500q", req, err, b)
	}
	return string(b)
}

var dateLine = regexp.MustCompile(`(?m)^Date: .*\r$`)

// normal is what a caller read, without what depends on the moment: the
// Date, and where chunks of an answer were cut (its bytes and trailers
// are kept).
func normal(raw string) string {
	raw = dateLine.ReplaceAllString(raw, "Date: D\r")
	var out strings.Builder
	for {
		i := strings.Index(raw, "\r\n\r\n")
		if i < 0 {
			out.WriteString(raw)
			return out.String()
		}
		head := raw[:i+4]
		out.WriteString(head)
		raw = raw[i+4:]
		if !strings.Contains(head, "\r\nTransfer-Encoding: chunked\r\n") {
			continue
		}
		sr := strings.NewReader(raw)
		br := bufio.NewReader(sr)
		data, err := io.ReadAll(httputil.NewChunkedReader(br))
		if err != nil {
			continue
		}
		trailer, err := textproto.NewReader(br).ReadMIMEHeader()
		fmt.Fprintf(&out, "<chunks of %q, trailer %v %v>", data, trailer, err)
		raw = raw[len(raw)-sr.Len()-br.Buffered():]
	}
}

// TestFrontMatchesNetHTTP sends the same bytes to the proxy behind
// net/http's server and behind the front: the app must see the same
// requests and the callers get the same bytes back (but the Date).
func TestFrontMatchesNetHTTP(t *testing.T) {
	nsAddr, frAddr, f := compareServers(t)
	const closing = "GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	for name, req := range map[string]string{
		"pipelined":               "GET /a?x=1&y=%20 HTTP/1.1\r\nHost: app.example\r\nAccept: */*\r\nX-Multi: one\r\nX-Multi: two\r\n\r\nHEAD /h HTTP/1.1\r\nHost: x\r\n\r\n" + closing,
		"hop headers":             "GET /a HTTP/1.1\r\nHost: x\r\nConnection: X-Drop, keep-alive\r\nX-Drop: gone\r\nKeep-Alive: 5\r\nTe: trailers\r\nX-Forwarded-For: 10.0.0.1\r\nForwarded: for=10.0.0.1\r\n\r\n" + closing,
		"http/1.0":                "GET /plain HTTP/1.0\r\n\r\n",
		"http/1.0 host":           "GET /plain HTTP/1.0\r\nHost: old.example\r\n\r\n",
		"http/1.0 keep-alive":     "GET /plain HTTP/1.0\r\nConnection: keep-alive\r\n\r\nHEAD /plain HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /chunked HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"http/1.0 no length":      "GET /trailer HTTP/1.0\r\n\r\n",
		"close":                   "GET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		"post":                    "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}" + closing,
		"post empty":              "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\nPUT /echo HTTP/1.1\r\nHost: x\r\n\r\n" + closing,
		"expect 100-continue":     "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello" + closing,
		"body unread":             "POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789" + closing,
		"sniffed":                 "GET /nosniff HTTP/1.1\r\nHost: x\r\n\r\n" + closing,
		"no date":                 "GET /nodate HTTP/1.1\r\nHost: x\r\n\r\n" + closing,
		"204 and 304":             "DELETE /204 HTTP/1.1\r\nHost: x\r\n\r\nGET /304 HTTP/1.1\r\nHost: x\r\n\r\n" + closing,
		"chunked":                 "GET /chunked HTTP/1.1\r\nHost: x\r\n\r\nGET /empty-chunked HTTP/1.1\r\nHost: x\r\n\r\n" + closing,
		"trailer":                 "GET /trailer HTTP/1.1\r\nHost: x\r\n\r\n" + closing,
		"unknown status":          "GET /teapot HTTP/1.1\r\nHost: x\r\n\r\n" + closing,
		"early hints":             "GET /early-hints HTTP/1.1\r\nHost: x\r\n\r\n" + closing,
		"pragma":                  "GET /a HTTP/1.1\r\nHost: x\r\nPragma: no-cache\r\n\r\n" + closing,
		"other method":            "PROPFIND /dav HTTP/1.1\r\nHost: x\r\n\r\n" + closing,
		"escaped path":            "GET /a/b%2Fc/%7e HTTP/1.1\r\nHost: x\r\n\r\n" + closing,
		"handed: bad escape":      "GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n",
		"handed: no host":         "GET / HTTP/1.1\r\n\r\n",
		"handed: after one taken": "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"handed: asterisk":        "OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		"handed: expectation":     "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: something\r\nConnection: close\r\n\r\nhi",
		"too large":               "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", maxHead) + "\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			before := f.handed.Load()
			want := normal(rawExchange(t, nsAddr, req, 10*time.Second))
			got := normal(rawExchange(t, frAddr, req, 10*time.Second))
			if got != want {
				t.Errorf("the front differs from net/http's server:\n--- front\n%s\n--- net/http\n%s", got, want)
			}
			if handed := f.handed.Load() - before; handed != 0 && !strings.HasPrefix(name, "handed") {
				t.Errorf("handed to net/http")
			}
		})
	}
}

// compareServers starts frontApp behind one proxy, and that proxy behind
// net/http's server and behind a front: it returns their addresses.
func compareServers(t *testing.T) (nsAddr, frAddr string, f *Front) {
	as := httptest.NewServer(frontApp)
	t.Cleanup(as.Close)
	target, _ := url.Parse(as.URL)
	p := New(Options{Target: target, Metrics: NewMetrics()})
	t.Cleanup(p.Close)
	ns := httptest.NewUnstartedServer(p)
	ns.Config.Protocols = new(http.Protocols)
	ns.Config.Protocols.SetHTTP1(true)
	ns.Config.Protocols.SetUnencryptedHTTP2(true)
	ns.Start()
	t.Cleanup(ns.Close)
	u, f := frontServerOf(t, p)
	return strings.TrimPrefix(ns.URL, "http://"), strings.TrimPrefix(u, "http://"), f
}

// slowProxy returns a proxy (closed with the test) to an app that
// answers "ok", and GET /slow only once release is called; entered is
// closed when /slow arrived. The app is released when the test ends,
// failed or not.
func slowProxy(t *testing.T) (p *Proxy, entered <-chan struct{}, release func()) {
	t.Helper()
	in, out := make(chan struct{}), make(chan struct{})
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(in)
			<-out
		}
		io.WriteString(w, "ok")
	})
	as := httptest.NewServer(app)
	var once sync.Once
	release = func() { once.Do(func() { close(out) }) }
	target, _ := url.Parse(as.URL)
	p = New(Options{Target: target, Metrics: NewMetrics()})
	t.Cleanup(func() { release(); as.Close(); p.Close() })
	return p, in, release
}

// TestFrontShutdown: Shutdown closes the idle connections at once, lets
// the request in flight finish (its answer says the connection closes)
// and returns after it.
func TestFrontShutdown(t *testing.T) {
	p, entered, release := slowProxy(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := NewFront(&http.Server{Handler: p})
	served := make(chan error, 1)
	go func() { served <- f.Serve(ln) }()
	addr := ln.Addr().String()

	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	io.WriteString(idle, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
	ibr := bufio.NewReader(idle)
	if res, err := http.ReadResponse(ibr, nil); err != nil || res.StatusCode != 200 {
		t.Fatalf("%v %v", res, err)
	} else {
		io.ReadAll(res.Body)
	}
	busy, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-entered

	shut := make(chan error, 1)
	go func() { shut <- f.Shutdown(context.Background()) }()
	// The idle connection closes while the request is in flight.
	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := ibr.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the idle connection: %d, %v; want it closed", n, err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned before the request in flight ended: %v", err)
	default:
	}
	release()
	busy.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || string(b) != "ok" || !res.Close {
		t.Errorf("in flight: %d %q close=%v", res.StatusCode, b, res.Close)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; err != http.ErrServerClosed {
		t.Errorf("Serve: %v", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("still listening after Shutdown")
	}
}

// TestFrontDrain: Drain closes the idle kept connections at once, the
// request in flight is answered with Connection: close, and the front
// still serves: a new connection gets its answer, and is not kept.
func TestFrontDrain(t *testing.T) {
	p, entered, release := slowProxy(t)
	u, f := frontServerOf(t, p)
	addr := strings.TrimPrefix(u, "http://")
	get := func(conn net.Conn, br *bufio.Reader, path string) *http.Response {
		t.Helper()
		io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(res.Body); res.StatusCode != 200 || string(b) != "ok" {
			t.Fatalf("%s: %d %q", path, res.StatusCode, b)
		}
		return res
	}

	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	ibr := bufio.NewReader(idle)
	if res := get(idle, ibr, "/fast"); res.Close {
		t.Fatal("before Drain, an answer closed its connection")
	}
	busy, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-entered

	f.Drain()
	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := ibr.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the idle connection: %d, %v; want it closed", n, err)
	}
	release()
	busy.SetReadDeadline(time.Now().Add(10 * time.Second))
	bbr := bufio.NewReader(busy)
	res, err := http.ReadResponse(bbr, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || string(b) != "ok" || !res.Close {
		t.Errorf("in flight: %d %q close=%v", res.StatusCode, b, res.Close)
	}
	if n, err := bbr.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("the busy connection after its answer: %d, %v; want it closed", n, err)
	}

	fresh, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("no longer listening after Drain: %v", err)
	}
	defer fresh.Close()
	fbr := bufio.NewReader(fresh)
	if res := get(fresh, fbr, "/fast"); !res.Close {
		t.Error("after Drain, a new connection's answer keeps it")
	}
	if n, err := fbr.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("a new connection after its answer: %d, %v; want it closed", n, err)
	}
}

// TestFrontReadHeaderTimeout: a connection that sends no whole head
// within the server's ReadHeaderTimeout is closed, as net/http does.
func TestFrontReadHeaderTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := NewFront(&http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: 50 * time.Millisecond})
	go f.Serve(ln)
	defer f.Close()
	for _, sent := range []string{"", "GET / HTTP/1.1\r\nHost: x\r\n"} {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, sent)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(conn)
		conn.Close()
		if err != nil || len(b) != 0 {
			t.Errorf("after %q: read %q, %v; want the connection closed", sent, b, err)
		}
	}
}
