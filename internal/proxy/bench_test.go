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
// beside BenchmarkDirect: the difference is what the proxy adds.
func BenchmarkProxy(b *testing.B) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer app.Close()
	u, _ := setupBench(app.URL)
	benchGet(b, u)
}

func BenchmarkDirect(b *testing.B) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer app.Close()
	benchGet(b, app.URL)
}

func setupBench(target string) (string, func()) {
	o := Options{Metrics: NewMetrics()}
	o.Target, _ = url.Parse(target)
	ps := httptest.NewServer(New(o))
	return ps.URL, ps.Close
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
