package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
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

// BenchmarkParseHead is the front's reading of a request's head.
func BenchmarkParseHead(b *testing.B) {
	raw := []byte("GET /orders/42?expand=items HTTP/1.1\r\nHost: orders.shop.svc.cluster.local:8080\r\nUser-Agent: Go-http-client/1.1\r\n" +
		"Traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nAccept-Encoding: gzip\r\n\r\n")
	b.ReportAllocs()
	for b.Loop() {
		var h head
		if !parseHead(raw, &h) {
			b.Fatal("not taken")
		}
	}
}

// BenchmarkReadResponse is the lean path's reading of an answer (its
// head and its 27-byte body) by its own parser, and by net/http's.
func BenchmarkReadResponse(b *testing.B) {
	const raw = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Sun, 06 Dec 2026 22:00:00 GMT\r\nContent-Length: 27\r\n\r\n" +
		`{"message":"Hello, World!"}`
	req := &http.Request{Method: "GET"}
	for _, lean := range []bool{true, false} {
		name := "lean"
		if !lean {
			name = "net-http"
		}
		b.Run(name, func(b *testing.B) {
			sr := strings.NewReader(raw)
			c := &appConn{br: bufio.NewReader(sr)}
			buf := make([]byte, 512)
			b.ReportAllocs()
			for b.Loop() {
				sr.Reset(raw)
				c.br.Reset(sr)
				c.br.Peek(1) // as send does
				var res *http.Response
				var err error
				if lean {
					res, err = c.readResponse(req)
				} else {
					res, err = http.ReadResponse(c.br, req)
				}
				if err != nil {
					b.Fatal(err)
				}
				if n, err := res.Body.Read(buf); n != 27 || (err != nil && err != io.EOF) {
					b.Fatal(n, err)
				}
			}
		})
	}
}
