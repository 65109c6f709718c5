package proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// BenchmarkMetricsEnd is the proxy's bookkeeping of one request.
func BenchmarkMetricsEnd(b *testing.B) {
	m := NewMetrics()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		m.begin()
		m.end("GET", 200, 3*time.Millisecond, now)
	}
}

// BenchmarkProxy is one request through the proxy to an app on loopback
// (a GET, and a POST of 1 KiB echoed), beside BenchmarkDirect: the
// difference is what the proxy adds. lean is the path HTTP/1.1 requests
// take, reverseproxy the one of upgrades and h2c (httputil.ReverseProxy),
// which all requests took before.
func BenchmarkProxy(b *testing.B) {
	app := httptest.NewServer(echo)
	defer app.Close()
	for _, method := range []string{"GET", "POST"} {
		for _, lean := range []bool{true, false} {
			name := method + "/lean"
			if !lean {
				name = method + "/reverseproxy"
			}
			b.Run(name, func(b *testing.B) {
				u, done := setupBench(app.URL, lean)
				defer done()
				bench(b, method, u)
			})
		}
	}
}

func BenchmarkDirect(b *testing.B) {
	app := httptest.NewServer(echo)
	defer app.Close()
	for _, method := range []string{"GET", "POST"} {
		b.Run(method, func(b *testing.B) { bench(b, method, app.URL) })
	}
}

// echo answers a GET "ok" and a POST its body.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		io.WriteString(w, "ok")
		return
	}
	b, _ := io.ReadAll(r.Body) // all of it before answering, as HTTP/1.1 wants
	w.Write(b)
})

func setupBench(target string, lean bool) (string, func()) {
	o := Options{Metrics: NewMetrics()}
	o.Target, _ = url.Parse(target)
	p := New(o)
	p.lean = lean
	ps := httptest.NewServer(p)
	return ps.URL, func() { ps.Close(); p.Close() }
}

func bench(b *testing.B, method, u string) {
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 10}}
	body := bytes.Repeat([]byte("x"), 1024)
	b.ReportAllocs()
	for b.Loop() {
		var rd io.Reader
		if method == http.MethodPost {
			rd = bytes.NewReader(body)
		}
		req, _ := http.NewRequest(method, u, rd)
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || (method == http.MethodPost && n != int64(len(body))) {
			b.Fatalf("%s: %d, %d bytes", method, resp.StatusCode, n)
		}
	}
}
