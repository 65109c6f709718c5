package proxy

import (
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

// BenchmarkProxy is one request through the proxy to an app on loopback,
// beside BenchmarkDirect: the difference is what the proxy adds. lean is
// the path HTTP/1.1 requests take, reverseproxy the one of upgrades and
// h2c (httputil.ReverseProxy), which all requests took before.
func BenchmarkProxy(b *testing.B) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer app.Close()
	for _, lean := range []bool{true, false} {
		name := "lean"
		if !lean {
			name = "reverseproxy"
		}
		b.Run(name, func(b *testing.B) {
			u, done := setupBench(app.URL, lean)
			defer done()
			benchGet(b, u)
		})
	}
}

func BenchmarkDirect(b *testing.B) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer app.Close()
	benchGet(b, app.URL)
}

func setupBench(target string, lean bool) (string, func()) {
	o := Options{Metrics: NewMetrics()}
	o.Target, _ = url.Parse(target)
	p := New(o)
	p.lean = lean
	ps := httptest.NewServer(p)
	return ps.URL, func() { ps.Close(); p.Close() }
}

func benchGet(b *testing.B, u string) {
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 10}}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
