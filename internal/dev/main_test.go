package dev

import (
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The test binary is also the workload some tests start: an HTTP
	// server on this address answering 200 to everything.
	if addr := os.Getenv("SKIFF_DEV_TEST_SERVER"); addr != "" {
		// With SKIFF_DEV_TEST_HOLD=DIR, SIGTERM does not stop it at
		// once: it creates DIR/stopping, then listens on until the test
		// writes to the FIFO DIR/release (a slow graceful shutdown).
		if dir := os.Getenv("SKIFF_DEV_TEST_HOLD"); dir != "" {
			term := make(chan os.Signal, 1)
			signal.Notify(term, syscall.SIGTERM)
			go func() {
				<-term
				os.WriteFile(filepath.Join(dir, "stopping"), nil, 0o644)
				if f, err := os.Open(filepath.Join(dir, "release")); err == nil {
					f.Read(make([]byte, 1))
				}
				os.Exit(0)
			}()
		}
		_ = http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte("hello from " + os.Getenv("PORT")))
		}))
		os.Exit(1)
	}
	// Nothing a session, a cycle or a restore starts may outlive it.
	goleak.VerifyTestMain(m)
}
