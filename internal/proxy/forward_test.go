package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countConns counts the connections an app server accepted.
func countConns(s *httptest.Server) *atomic.Int64 {
	var n atomic.Int64
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			n.Add(1)
		}
	}
	return &n
}

// leanSetup starts app behind a proxy and says how many connections the
// app accepted.
func leanSetup(t *testing.T, app http.Handler, o Options) (string, *Proxy, *atomic.Int64) {
	t.Helper()
	as := httptest.NewUnstartedServer(app)
	conns := countConns(as)
	as.Start()
	t.Cleanup(as.Close)
	o.Target, _ = url.Parse(as.URL + "/")
	if o.Metrics == nil {
		o.Metrics = NewMetrics()
	}
	p := New(o)
	if !p.lean {
		t.Fatal("a target without a path takes the lean path")
	}
	t.Cleanup(p.Close)
	return frontServer(t, p), p, conns
}

func TestForwardKeepsOneConnectionForSequentialRequests(t *testing.T) {
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %d", r.Method, r.URL.RequestURI(), len(b))
	})
	u, p, conns := leanSetup(t, app, Options{})
	for i := range 10 {
		// A small body goes before the answer is read; a large one, and
		// one of unknown length, from a goroutine of its own.
		for _, size := range []int{i, inlineBody + 1 + i} {
			res, err := http.Post(u+"/p?i="+strconv.Itoa(i), "text/plain", strings.NewReader(strings.Repeat("x", size)))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if want := fmt.Sprintf("POST /p?i=%d %d", i, size); string(b) != want {
				t.Fatalf("got %q, want %q", b, want)
			}
		}
		req, _ := http.NewRequest("PUT", u+"/c", io.MultiReader(strings.NewReader("chunked "), strings.NewReader("body")))
		if code, body := doReq(t, req); code != 200 || body != "PUT /c 12" {
			t.Fatalf("PUT of unknown length: %d %q", code, body)
		}
		if code, body := get(t, "GET", u+"/g"); code != 200 || body != "GET /g 0" {
			t.Fatalf("GET: %d %q", code, body)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("the app saw %d connections for 40 requests one after the other, want 1", n)
	}
	if w := p.o.Metrics.Window(time.Now(), time.Minute); w.Requests != 40 {
		t.Errorf("recorded %d requests", w.Requests)
	}
}

func doReq(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestForwardPipelinedRequests(t *testing.T) {
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.URL.Path) })
	u, _, conns := leanSetup(t, app, Options{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(u, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Three requests in one write: the proxy answers them in order.
	fmt.Fprint(conn, "GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\nHEAD /three HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(conn)
	for _, want := range []string{"/one", "/two", ""} {
		method := "GET"
		if want == "" {
			method = "HEAD"
		}
		res, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || string(b) != want {
			t.Errorf("%s: %d %q", want, res.StatusCode, b)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("the app saw %d connections, want 1", n)
	}
}

func TestForwardHead(t *testing.T) {
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1234")
		if r.Method != http.MethodHead {
			w.Write(make([]byte, 1234))
		}
	})
	u, _, conns := leanSetup(t, app, Options{})
	res, err := http.Head(u)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.ContentLength != 1234 {
		t.Errorf("HEAD: %d, length %d", res.StatusCode, res.ContentLength)
	}
	// The connection is still good for a request with a body after it.
	if code, body := get(t, "GET", u); code != 200 || len(body) != 1234 {
		t.Errorf("GET: %d, %d bytes", code, len(body))
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("the app saw %d connections, want 1", n)
	}
}

func TestForwardBigBodies(t *testing.T) {
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		// The answer is the body, twice over, after its digest.
		w.Header().Set("X-Length", strconv.FormatInt(n, 10))
		w.Header().Set("X-Sha256", fmt.Sprintf("%x", h.Sum(nil)))
		w.Header().Set("X-Chunked", strconv.FormatBool(r.ContentLength < 0))
		w.Header().Set("X-Trailer", r.Trailer.Get("X-Check"))
		big := bytes.Repeat([]byte("0123456789abcdef"), 2*(1<<20)/16)
		w.Write(big)
		w.Write(big)
	})
	u, _, _ := leanSetup(t, app, Options{})
	body := bytes.Repeat([]byte("skiff"), (5<<20)/5) // 5 MiB
	sum := fmt.Sprintf("%x", sha256.Sum256(body))

	// With a length.
	res, err := http.Post(u, "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.Header.Get("X-Length") != strconv.Itoa(len(body)) || res.Header.Get("X-Sha256") != sum || res.Header.Get("X-Chunked") != "false" || len(got) != 4<<20 {
		t.Errorf("with a length: %v, answer of %d bytes", res.Header, len(got))
	}

	// Chunked (no length), with a trailer.
	pr, pw := io.Pipe()
	go func() {
		for off := 0; off < len(body); off += 100_000 {
			pw.Write(body[off:min(off+100_000, len(body))])
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("PUT", u, pr)
	// A request's trailers are declared before it is sent; their values
	// go after the body.
	req.Trailer = http.Header{"X-Check": []string{"ok"}}
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.Header.Get("X-Length") != strconv.Itoa(len(body)) || res.Header.Get("X-Sha256") != sum || res.Header.Get("X-Chunked") != "true" ||
		res.Header.Get("X-Trailer") != "ok" || len(got) != 4<<20 {
		t.Errorf("chunked: %v, answer of %d bytes", res.Header, len(got))
	}
}

func TestForwardTrailersAndHopHeaders(t *testing.T) {
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		fmt.Fprintf(w, "secret=%q te=%q proto=%q fhost=%q ka=%q", r.Header.Get("X-Secret"), r.Header.Get("Te"),
			r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Host"), r.Header.Get("Keep-Alive"))
		w.Header().Set("X-Sum", "42")
	})
	u, _, _ := leanSetup(t, app, Options{})
	req, _ := http.NewRequest("GET", u, nil)
	req.Host = "orders.example"
	req.Header.Set("Connection", "X-Secret")
	req.Header.Set("X-Secret", "hop")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Te", "gzip, trailers")
	req.Header.Set("X-Forwarded-Host", "spoofed")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if want := `secret="" te="trailers" proto="http" fhost="orders.example" ka=""`; string(b) != want {
		t.Errorf("the app saw %s, want %s", b, want)
	}
	if res.Trailer.Get("X-Sum") != "42" {
		t.Errorf("trailer: %v", res.Trailer)
	}
}

func TestForwardExpectContinue(t *testing.T) {
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "expect=%q body=%s", r.Header.Get("Expect"), b)
	})
	u, _, _ := leanSetup(t, app, Options{})
	c := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}
	req, _ := http.NewRequest("POST", u, strings.NewReader("payload"))
	req.Header.Set("Expect", "100-continue")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	// A minute's timeout: the body went only after the 100 Continue.
	if res.StatusCode != 200 || string(b) != `expect="100-continue" body=payload` {
		t.Errorf("%d %q", res.StatusCode, b)
	}
}

func TestForwardTimeoutAfterTheBody(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	u, p, _ := leanSetup(t, app, Options{Timeout: 50 * time.Millisecond})
	res, err := http.Post(u, "text/plain", strings.NewReader("a body"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("got %d, want 504", res.StatusCode)
	}
	if text := scrape(t, p.o.Metrics); !strings.Contains(text, `http_request_method="POST",http_response_status_code="504"} 1`) {
		t.Errorf("not recorded:\n%s", text)
	}
}

func TestForwardCallerGoneDuringAStream(t *testing.T) {
	appSawEnd := make(chan struct{})
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: one\n\n")
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
		close(appSawEnd)
	})
	u, p, _ := leanSetup(t, app, Options{})
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	if line, _ := bufio.NewReader(res.Body).ReadString('\n'); line != "data: one\n" {
		t.Fatalf("first line %q", line)
	}
	res.Body.Close() // the caller goes away
	// The proxy lets go of the app's connection: the app's request ends.
	select {
	case <-appSawEnd:
	case <-time.After(10 * time.Second):
		t.Fatal("the app's stream outlived its caller")
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.o.Metrics.Active() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the request never ended")
		}
		runtime.Gosched()
	}
}

// rawApp is an app on loopback that answers by hand: serve is called for
// each request, with the index of its connection and of the request on
// it, and writes the answer itself (the body is read after it); false
// closes the connection.
func rawApp(t *testing.T, serve func(conn, req int, r *http.Request, c net.Conn) bool) (*url.URL, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	var conns atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := int(conns.Add(1)) - 1
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for i := 0; ; i++ {
					r, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					if !serve(n, i, r, c) {
						return
					}
					if _, err := io.Copy(io.Discard, r.Body); err != nil {
						return
					}
				}
			}()
		}
	}()
	u, _ := url.Parse("http://" + ln.Addr().String() + "/")
	return u, &conns
}

func rawProxy(t *testing.T, target *url.URL) (string, *Proxy) {
	t.Helper()
	p := New(Options{Target: target, Metrics: NewMetrics()})
	t.Cleanup(p.Close)
	return frontServer(t, p), p
}

func TestForwardRetriesAnIdempotentRequestOnAConnectionClosedUnderIt(t *testing.T) {
	var posts atomic.Int64
	target, conns := rawApp(t, func(conn, req int, r *http.Request, c net.Conn) bool {
		if r.Method == "POST" {
			posts.Add(1)
		}
		if req == 1 {
			// The app closes the connection as the request arrives, as
			// one whose idle timeout struck just then.
			return false
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	u, _ := rawProxy(t, target)
	if code, body := get(t, "GET", u); code != 200 || body != "ok" {
		t.Fatalf("first: %d %q", code, body)
	}
	// The kept connection fails; a GET goes again on a new one.
	if code, body := get(t, "GET", u); code != 200 || body != "ok" {
		t.Fatalf("retried GET: %d %q", code, body)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("the app saw %d connections, want 2", n)
	}
	// A POST that reached the app is not sent twice: 502.
	if code, _ := get(t, "POST", u); code != http.StatusBadGateway {
		t.Errorf("POST on a connection closed under it: %d, want 502", code)
	}
	if n := posts.Load(); n != 1 {
		t.Errorf("the app saw the POST %d times", n)
	}
}

func TestForwardSkipsAConnectionTheAppClosedWhileIdle(t *testing.T) {
	closed := make(chan struct{}, 10)
	target, conns := rawApp(t, func(conn, req int, r *http.Request, c net.Conn) bool {
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(r.Method), r.Method)
		if conn == 0 {
			c.Close() // the app's idle timeout, right after its answer
			closed <- struct{}{}
			return false
		}
		return true
	})
	u, p := rawProxy(t, target)
	if code, body := get(t, "GET", u); code != 200 || body != "GET" {
		t.Fatalf("first: %d %q", code, body)
	}
	<-closed
	// Wait for the app's FIN to reach the proxy's end of it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		p.pool.mu.Lock()
		c := p.pool.idle[0]
		p.pool.mu.Unlock()
		if closedByPeer(c.Conn) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the closed connection never looked closed")
		}
		runtime.Gosched()
	}
	// A POST, which could not be sent again, goes on a new connection.
	if code, body := get(t, "POST", u); code != 200 || body != "POST" {
		t.Fatalf("POST after the app closed the idle connection: %d %q", code, body)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("the app saw %d connections, want 2", n)
	}
}

func TestForwardAnswerWithoutLengthUntilClose(t *testing.T) {
	next := make(chan struct{})
	target, conns := rawApp(t, func(conn, req int, r *http.Request, c net.Conn) bool {
		if r.URL.Path == "/stream" {
			fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst\n")
			<-next
			fmt.Fprint(c, "second\n")
			return false // the end of the answer
		}
		fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	u, _ := rawProxy(t, target)
	res, err := http.Get(u + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(res.Body)
	// The first line comes while the app holds the rest.
	if line, err := br.ReadString('\n'); line != "first\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	close(next)
	rest, err := io.ReadAll(br)
	res.Body.Close()
	if err != nil || string(rest) != "second\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}
	// The connection that ended the answer is not kept.
	if code, body := get(t, "GET", u+"/after"); code != 200 || body != "ok" {
		t.Fatalf("after: %d %q", code, body)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("the app saw %d connections, want 2", n)
	}
}

func TestForwardAppBreaksOff(t *testing.T) {
	target, _ := rawApp(t, func(conn, req int, r *http.Request, c net.Conn) bool {
		fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
		return false
	})
	u, p := rawProxy(t, target)
	// The caller must not take the 10 bytes for the whole answer: its
	// connection is cut, before or after the head (as ReverseProxy does).
	res, err := http.Get(u)
	if err == nil {
		var b []byte
		b, err = io.ReadAll(res.Body)
		res.Body.Close()
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("read %q, %v; want the answer cut", b, err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.o.Metrics.Window(time.Now(), time.Minute).Requests == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the request was never recorded")
		}
		runtime.Gosched()
	}
}

func TestForwardNeverKeepsMoreThanMax(t *testing.T) {
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	as := httptest.NewServer(app)
	defer as.Close()
	pl := newPool(strings.TrimPrefix(as.URL, "http://"))
	pl.max = 2
	defer pl.close()
	var cs []*appConn
	for range 4 {
		c, err := pl.get(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	for _, c := range cs {
		pl.put(c)
	}
	if n := len(pl.idle); n != 2 {
		t.Errorf("%d idle connections kept, want 2", n)
	}
	// Those past their idle time go.
	pl.mu.Lock()
	pl.idle[0].idle = time.Now().Add(-time.Hour)
	pl.mu.Unlock()
	pl.prune()
	if n := len(pl.idle); n != 1 {
		t.Errorf("%d idle connections after pruning, want 1", n)
	}
}

func TestOnlyAPlainHostTakesTheLeanPath(t *testing.T) {
	for target, lean := range map[string]bool{
		"http://127.0.0.1:8080/": true,
		"http://127.0.0.1:8080":  true,
		"http://localhost/":      true,
		"https://127.0.0.1:8443": false,
		"http://127.0.0.1/api/":  false,
		"http://127.0.0.1/?a=b":  false,
	} {
		u, _ := url.Parse(target)
		p := New(Options{Target: u})
		if p.lean != lean {
			t.Errorf("%s: lean %v, want %v", target, p.lean, lean)
		}
		if target == "http://localhost/" && p.pool.addr != "localhost:80" {
			t.Errorf("%s: dials %s", target, p.pool.addr)
		}
	}
}

func TestForwardSendsWhatInboundSet(t *testing.T) {
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.Header.Get("Traceparent")) })
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	u, _, _ := leanSetup(t, app, Options{Inbound: func(r *http.Request) { r.Header.Set("Traceparent", tp) }})
	if code, body := get(t, "GET", u); code != 200 || body != tp {
		t.Errorf("the app saw traceparent %q (%d)", body, code)
	}
}

func TestForwardAnswerBeforeTheWholeBody(t *testing.T) {
	target, conns := rawApp(t, func(conn, req int, r *http.Request, c net.Conn) bool {
		if r.URL.Path == "/early" {
			// Without reading the body, which the caller still sends.
			fmt.Fprint(c, "HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 9\r\n\r\ntoo large")
			return true
		}
		fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	u, _ := rawProxy(t, target)
	for _, size := range []int{0, inlineBody + 1} {
		pr, pw := io.Pipe()
		go pw.Write(bytes.Repeat([]byte("x"), size+1))
		req, _ := http.NewRequest("POST", u+"/early", pr)
		if size > 0 {
			req.ContentLength = int64(2 * size) // more than is sent before the answer
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		pw.CloseWithError(errors.New("the caller gives up"))
		if res.StatusCode != http.StatusRequestEntityTooLarge || string(b) != "too large" {
			t.Errorf("got %d %q, want the app's 413 while the caller still sends", res.StatusCode, b)
		}
		// The connection the rest of that body would have gone on is
		// not kept for the next request.
		if code, body := get(t, "GET", u+"/next"); code != 200 || body != "ok" {
			t.Errorf("next: %d %q", code, body)
		}
	}
	// One for the first POST, one for the GET after it and the second
	// POST, one for the last GET.
	if n := conns.Load(); n != 3 {
		t.Errorf("the app saw %d connections, want 3", n)
	}
}

// TestLeanMatchesReverseProxy sends the same requests through the lean
// path and through ReverseProxy: the app must see the same requests, and
// the callers the same answers.
func TestLeanMatchesReverseProxy(t *testing.T) {
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var seen strings.Builder
		fmt.Fprintf(&seen, "%s %s %s host=%s length=%d chunked=%v\n", r.Method, r.RequestURI, r.Proto, r.Host, r.ContentLength, r.TransferEncoding)
		r.Header.Write(&seen)
		// The trailers' names only: ReverseProxy sends a request
		// trailer without its value, the lean path with it
		// (TestForwardBigBodies).
		fmt.Fprintf(&seen, "trailers=%v\nbody=%q\n", slices.Sorted(maps.Keys(r.Trailer)), b)
		w.Header().Set("X-App", "1")
		w.Header().Set("Keep-Alive", "timeout=9") // of the app's connection: not passed on
		w.Header().Set("Connection", "X-Private")
		w.Header().Set("X-Private", "hop")
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		switch r.URL.Path {
		case "/status":
			w.WriteHeader(http.StatusAccepted)
		case "/trailer":
			w.Header().Set("Trailer", "X-Sum")
			defer w.Header().Set("X-Sum", "3")
		case "/stream":
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: 1\n\n")
			http.NewResponseController(w).Flush()
		}
		io.WriteString(w, seen.String())
	})
	as := httptest.NewServer(app)
	defer as.Close()
	target, _ := url.Parse(as.URL)
	// The lean path behind the front, as skiff-relay serves it;
	// ReverseProxy behind net/http's server, as before both.
	answer := func(lean bool, req func(base string) *http.Request) string {
		p := New(Options{Target: target, Metrics: NewMetrics()})
		defer p.Close()
		p.lean = lean
		var u string
		if lean {
			u = frontServer(t, p)
		} else {
			ps := httptest.NewServer(p)
			defer ps.Close()
			u = ps.URL
		}
		res, err := http.DefaultClient.Do(req(u))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		res.Header.Del("Date")
		var out strings.Builder
		fmt.Fprintf(&out, "%d %s %d %v\n", res.StatusCode, res.Proto, res.ContentLength, res.TransferEncoding)
		res.Header.Write(&out)
		fmt.Fprintf(&out, "trailer: %v\n", res.Trailer)
		// The caller's own port differs between the two proxies.
		out.WriteString(strings.ReplaceAll(string(b), strings.TrimPrefix(u, "http://"), "PROXY"))
		return out.String()
	}
	for name, req := range map[string]func(string) *http.Request{
		"get": func(u string) *http.Request {
			r, _ := http.NewRequest("GET", u+"/a/b%2Fc?x=1&y=%20", nil)
			r.Header.Set("Accept", "*/*")
			r.Header.Add("X-Multi", "one")
			r.Header.Add("X-Multi", "two")
			r.Header.Set("Connection", "X-Drop")
			r.Header.Set("X-Drop", "gone")
			r.Header.Set("Te", "trailers")
			r.Header.Set("X-Forwarded-For", "10.0.0.1")
			r.Header.Set("Forwarded", "for=10.0.0.1")
			return r
		},
		"head":    func(u string) *http.Request { r, _ := http.NewRequest("HEAD", u+"/h", nil); return r },
		"trailer": func(u string) *http.Request { r, _ := http.NewRequest("GET", u+"/trailer", nil); return r },
		"stream":  func(u string) *http.Request { r, _ := http.NewRequest("GET", u+"/stream", nil); return r },
		"delete":  func(u string) *http.Request { r, _ := http.NewRequest("DELETE", u+"/status", nil); return r },
		"post": func(u string) *http.Request {
			r, _ := http.NewRequest("POST", u+"/p", strings.NewReader(`{"a":1}`))
			r.Header.Set("Content-Type", "application/json")
			return r
		},
		"put chunked with a trailer": func(u string) *http.Request {
			r, _ := http.NewRequest("PUT", u+"/c", io.MultiReader(strings.NewReader("part one, "), strings.NewReader("part two")))
			r.Trailer = http.Header{"X-Sum": []string{"17"}}
			return r
		},
		"http/1.0 host": func(u string) *http.Request {
			r, _ := http.NewRequest("GET", u+"/old", nil)
			r.Host = "other.example:8080"
			return r
		},
	} {
		lean, rp := answer(true, req), answer(false, req)
		if lean != rp {
			t.Errorf("%s: the lean path differs from ReverseProxy:\n--- lean\n%s\n--- ReverseProxy\n%s", name, lean, rp)
		}
	}
}
