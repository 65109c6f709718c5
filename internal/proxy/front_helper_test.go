package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"
)

// frontServer serves h on loopback through a Front, as skiff-relay does
// (HTTP/1 and h2c), and returns its URL. It stops with the test, once
// its connections' goroutines ended.
func frontServer(tb testing.TB, h http.Handler) string {
	tb.Helper()
	u, _ := frontServerOf(tb, h)
	return u
}

func frontServerOf(tb testing.TB, h http.Handler) (string, *Front) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	f := NewFront(srv)
	served := make(chan error, 1)
	go func() { served <- f.Serve(ln) }()
	tb.Cleanup(func() {
		f.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := f.Shutdown(ctx); err != nil {
			tb.Errorf("the front's connections did not end: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			tb.Errorf("Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String(), f
}
