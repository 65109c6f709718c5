package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"
)

// setup starts app behind a proxy with o and returns the proxy's URL.
func setup(t *testing.T, app http.Handler, o Options) (string, *Proxy) {
	t.Helper()
	as := httptest.NewUnstartedServer(app)
	as.Config.Protocols = new(http.Protocols)
	as.Config.Protocols.SetHTTP1(true)
	as.Config.Protocols.SetUnencryptedHTTP2(true)
	as.Start()
	t.Cleanup(as.Close)
	o.Target, _ = url.Parse(as.URL)
	if o.Metrics == nil {
		o.Metrics = NewMetrics()
	}
	p := New(o)
	t.Cleanup(p.Close)
	return frontServer(t, p), p
}

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	var b strings.Builder
	if err := m.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func get(t *testing.T, method, u string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestProxyForwardsAndCounts(t *testing.T) {
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			http.Error(w, "broken", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%s %s host=%s xff=%s", r.Method, r.URL.RequestURI(), r.Host, r.Header.Get("X-Forwarded-For"))
	})
	u, p := setup(t, app, Options{})
	for range 3 {
		if code, body := get(t, "GET", u+"/orders/7?x=1"); code != 200 || !strings.HasPrefix(body, "GET /orders/7?x=1 host=127.0.0.1:") || !strings.Contains(body, "xff=127.0.0.1") {
			t.Fatalf("GET: %d %q", code, body)
		}
	}
	if code, _ := get(t, "POST", u+"/fail"); code != 500 {
		t.Fatalf("POST /fail: %d", code)
	}
	if code, _ := get(t, "PROPFIND", u+"/"); code != 200 {
		t.Fatalf("PROPFIND: %d", code)
	}
	text := scrape(t, p.o.Metrics)
	for _, want := range []string{
		`http_server_request_duration_seconds_count{http_request_method="GET",http_response_status_code="200"} 3`,
		`http_server_request_duration_seconds_count{http_request_method="POST",http_response_status_code="500"} 1`,
		`http_server_request_duration_seconds_count{http_request_method="_OTHER",http_response_status_code="200"} 1`,
		`http_server_request_duration_seconds_bucket{http_request_method="GET",http_response_status_code="200",le="+Inf"} 3`,
		"# TYPE http_server_request_duration_seconds histogram",
		"http_server_active_requests 0",
		"skiff_cold_starts_total 0",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q:\n%s", want, text)
		}
	}
	w := p.o.Metrics.Window(time.Now(), time.Minute)
	if w.Requests != 5 || w.Errors != 1 || w.Duration.Count() != 5 || w.ColdStarts != 0 {
		t.Errorf("window: %+v", w)
	}
}

func TestProxyTimeoutIs504(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	u, p := setup(t, app, Options{Timeout: 50 * time.Millisecond})
	if code, _ := get(t, "GET", u+"/slow"); code != http.StatusGatewayTimeout {
		t.Fatalf("got %d, want 504", code)
	}
	if text := scrape(t, p.o.Metrics); !strings.Contains(text, `http_server_request_duration_seconds_count{http_request_method="GET",http_response_status_code="504"} 1`) {
		t.Errorf("the timeout is not counted:\n%s", text)
	}
	if w := p.o.Metrics.Window(time.Now(), time.Minute); w.Errors != 1 {
		t.Errorf("errors %d, want 1", w.Errors)
	}
}

func TestProxyAppDownIs502(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse("http://" + ln.Addr().String())
	ln.Close() // nothing listens there now
	m := NewMetrics()
	u := frontServer(t, New(Options{Target: target, Metrics: m}))
	if code, _ := get(t, "GET", u); code != http.StatusBadGateway {
		t.Fatalf("got %d, want 502", code)
	}
	if w := m.Window(time.Now(), time.Minute); w.Requests != 1 || w.Errors != 1 {
		t.Errorf("window: %+v", w)
	}
}

func TestProxyFlushesAtOnceAndCountsInFlight(t *testing.T) {
	release := make(chan struct{})
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: one\n\n")
		http.NewResponseController(w).Flush()
		<-release
		fmt.Fprint(w, "data: two\n\n")
	})
	u, p := setup(t, app, Options{})
	res, err := http.Get(u + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	// The first event arrives while the app still holds the answer open.
	line, err := br.ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	if n := p.o.Metrics.Active(); n != 1 {
		t.Errorf("in flight %d, want 1", n)
	}
	if text := scrape(t, p.o.Metrics); !strings.Contains(text, "http_server_active_requests 1") {
		t.Errorf("gauge:\n%s", text)
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if string(rest) != "\ndata: two\n\n" {
		t.Errorf("rest %q", rest)
	}
}

func TestProxyUpgrade(t *testing.T) {
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "no upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo: " + line)
		brw.Flush()
	})
	u, p := setup(t, app, Options{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(u, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != 101 {
		t.Fatalf("%v %v", res, err)
	}
	fmt.Fprint(conn, "hello\n")
	if line, _ := br.ReadString('\n'); line != "echo: hello\n" {
		t.Fatalf("got %q", line)
	}
	conn.Close()
	// The request ends when the upgraded connection does.
	deadline := time.Now().Add(5 * time.Second)
	for p.o.Metrics.Window(time.Now(), time.Minute).Requests == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the upgraded request was never recorded")
		}
		runtime.Gosched()
	}
	if text := scrape(t, p.o.Metrics); !strings.Contains(text, `http_response_status_code="101"} 1`) {
		t.Errorf("101 not recorded:\n%s", text)
	}
}

func TestProxyH2C(t *testing.T) {
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "proto %d", r.ProtoMajor)
	})
	u, _ := setup(t, app, Options{})
	tr := &http.Transport{Protocols: new(http.Protocols), TLSClientConfig: &tls.Config{}}
	tr.Protocols.SetUnencryptedHTTP2(true)
	res, err := (&http.Client{Transport: tr}).Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.ProtoMajor != 2 || string(b) != "proto 2" {
		t.Errorf("caller %s, app said %q", res.Proto, b)
	}
}

func TestProxyColdStart(t *testing.T) {
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	started := time.Now().Add(-1700 * time.Millisecond)
	u, p := setup(t, app, Options{ColdStarts: true, Started: started})
	for range 3 {
		get(t, "GET", u)
	}
	text := scrape(t, p.o.Metrics)
	if !strings.Contains(text, "skiff_cold_starts_total 1\n") || !strings.Contains(text, `skiff_cold_start_wait_seconds_bucket{le="1.5"} 0`) ||
		!strings.Contains(text, `skiff_cold_start_wait_seconds_bucket{le="2"} 1`) || !strings.Contains(text, "skiff_cold_start_wait_seconds_count 1") {
		t.Errorf("cold start:\n%s", text)
	}
	w := p.o.Metrics.Window(time.Now(), time.Minute)
	if w.ColdStarts != 1 || w.ColdStartWait.Sum < 1.7 || w.ColdStartWait.Sum > 10 {
		t.Errorf("window: %d cold starts, waited %v", w.ColdStarts, w.ColdStartWait.Sum)
	}
}

func TestProxyNoColdStartWhenAlwaysUp(t *testing.T) {
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	u, p := setup(t, app, Options{Started: time.Now()})
	get(t, "GET", u)
	if text := scrape(t, p.o.Metrics); !strings.Contains(text, "skiff_cold_starts_total 0\n") || strings.Contains(text, "skiff_cold_start_wait_seconds_count") {
		t.Errorf("a workload that does not scale from zero has no cold starts:\n%s", text)
	}
}

func TestProxyClientGone(t *testing.T) {
	entered := make(chan struct{})
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done()
	})
	u, p := setup(t, app, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-entered; cancel() }()
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("the request was not cancelled")
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.o.Metrics.Window(time.Now(), time.Minute).Requests == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the cancelled request was never recorded")
		}
		runtime.Gosched()
	}
	w := p.o.Metrics.Window(time.Now(), time.Minute)
	if w.Errors != 0 {
		t.Errorf("a caller that went away is no error of the app: %+v", w)
	}
	if text := scrape(t, p.o.Metrics); !strings.Contains(text, `http_response_status_code="499"} 1`) {
		t.Errorf("not recorded as 499:\n%s", text)
	}
}

func TestProxyEarlyHintsAreNotTheStatus(t *testing.T) {
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</app.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusCreated)
	})
	u, p := setup(t, app, Options{})
	if code, _ := get(t, "GET", u); code != http.StatusCreated {
		t.Fatalf("got %d", code)
	}
	if text := scrape(t, p.o.Metrics); !strings.Contains(text, `http_response_status_code="201"} 1`) || strings.Contains(text, `"103"`) {
		t.Errorf("an interim 103 was taken for the status:\n%s", text)
	}
	// An idle window keeps its buckets.
	var idle Metrics
	if w := idle.Window(time.Now(), time.Minute); len(w.Duration.Bounds) == 0 || len(w.Duration.Counts) != len(w.Duration.Bounds)+1 {
		t.Errorf("idle window: %+v", w.Duration)
	}
}

// Quiet waits for a spell without new requests, from its call at the
// earliest (a pod quiet before its termination is still routed to until
// its endpoint is removed), past the latest request's start otherwise,
// and no longer than its context.
func TestQuiet(t *testing.T) {
	u, p := setup(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), Options{})
	called := time.Now()
	if err := p.Quiet(context.Background(), 30*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if since := time.Since(called); since < 30*time.Millisecond {
		t.Fatalf("a proxy that served nothing was quiet %s after the call, before the 30ms asked", since)
	}
	if code, _ := get(t, http.MethodGet, u); code != http.StatusOK {
		t.Fatalf("GET: %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.Quiet(ctx, time.Hour); err != context.DeadlineExceeded {
		t.Fatalf("quiet for an hour right after a request: %v", err)
	}
	began := time.Unix(0, p.last.Load())
	if err := p.Quiet(context.Background(), 30*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if since := time.Since(began); since < 30*time.Millisecond {
		t.Fatalf("quiet %s after the request began, before the 30ms asked", since)
	}
}
