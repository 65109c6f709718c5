package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestProfileHandler(t *testing.T) {
	srv := httptest.NewServer(profileHandler())
	defer srv.Close()
	get := func(path string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	gzipped := []byte{0x1f, 0x8b} // a profile is gzipped protobuf
	if code, b := get("/debug/pprof/profile?seconds=1"); code != http.StatusOK || !bytes.HasPrefix(b, gzipped) {
		t.Errorf("CPU profile: %d, %d bytes starting %q", code, len(b), b[:min(len(b), 8)])
	}
	if code, b := get("/debug/pprof/allocs"); code != http.StatusOK || !bytes.HasPrefix(b, gzipped) {
		t.Errorf("allocs: %d, %d bytes", code, len(b))
	}
	for path, want := range map[string]int{
		"/debug/pprof/profile?seconds=x":     http.StatusBadRequest,
		"/debug/pprof/profile?seconds=0":     http.StatusBadRequest,
		"/debug/pprof/profile?seconds=86400": http.StatusBadRequest,
		"/debug/pprof/nosuch":                http.StatusNotFound,
	} {
		if code, b := get(path); code != want {
			t.Errorf("%s: %d %s, want %d", path, code, b, want)
		}
	}
}
