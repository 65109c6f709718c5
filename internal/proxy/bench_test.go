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
// difference is what the proxy adds. front is skiff-relay's: the lean
// path behind the Front; lean is the same path behind net/http's server;
// reverseproxy the path of upgrades and h2c (httputil.ReverseProxy behind
// net/http's server), which all requests took before.
func BenchmarkProxy(b *testing.B) {
	app := httptest.NewServer(echo)
	defer app.Close()
	for _, method := range []string{"GET", "POST"} {
		for _, mode := range []string{"front", "lean", "reverseproxy"} {
			b.Run(method+"/"+mode, func(b *testing.B) {
				bench(b, method, setupBench(b, app.URL, mode))
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

func setupBench(b *testing.B, target, mode string) string {
	o := Options{Metrics: NewMetrics()}
	o.Target, _ = url.Parse(target)
	p := New(o)
	b.Cleanup(p.Close)
	p.lean = mode != "reverseproxy"
	if mode == "front" {
		return frontServer(b, p)
	}
	ps := httptest.NewServer(p)
	b.Cleanup(ps.Close)
	return ps.URL
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
