package dev

import (
	"net/http"
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The test binary is also the workload some tests start: an HTTP
	// server on this address answering 200 to everything.
	if addr := os.Getenv("SKIFF_DEV_TEST_SERVER"); addr != "" {
		_ = http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte("hello from " + os.Getenv("PORT")))
		}))
		os.Exit(1)
	}
	// Nothing a session, a cycle or a restore starts may outlive it.
	goleak.VerifyTestMain(m)
}
