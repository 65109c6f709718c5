//go:build unix

package dev

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/hostrun"
)

// TestWakeWaitsForTheSleepingProcess: a request that comes while the
// process put to sleep after its idle time is still stopping (a slow
// graceful shutdown, holding the port) waits for it to exit and wakes
// the workload then, rather than failing on the port in use.
func TestWakeWaitsForTheSleepingProcess(t *testing.T) {
	l, w, wk, failures := sleepyWaker(t, "1ms")
	hold := t.TempDir()
	release := filepath.Join(hold, "release")
	if err := syscall.Mkfifo(release, 0o600); err != nil {
		t.Skipf("no FIFO here: %v", err)
	}
	var released sync.Once
	unhold := func() {
		released.Do(func() {
			if f, err := os.OpenFile(release, os.O_WRONLY, 0); err == nil {
				f.Write([]byte{1})
				f.Close()
			}
		})
	}
	defer unhold()
	var starts atomic.Int32
	wk.setVersion(func(ctx context.Context) (*hostrun.Process, error) {
		plan := &hostrun.Plan{Command: []string{os.Args[0]}, Dir: t.TempDir(), Port: wk.port,
			Env: []string{"SKIFF_DEV_TEST_SERVER=127.0.0.1:" + strconv.Itoa(wk.port), "PORT=" + strconv.Itoa(wk.port)}}
		if starts.Add(1) == 1 {
			plan.Env = append(plan.Env, "SKIFF_DEV_TEST_HOLD="+hold)
		}
		return l.launch(ctx, w, plan, wk.port)
	})
	get := func() string {
		resp, err := http.Get(URL(w) + "/")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.Status + " " + string(b)
	}
	want := "200 OK hello from " + strconv.Itoa(wk.port)
	if got := get(); got != want {
		t.Fatalf("the first request got %q, want %q", got, want)
	}
	// After its idle time the process is told to stop, and holds on.
	waitFor(t, "the first process got SIGTERM", func() bool {
		_, err := os.Stat(filepath.Join(hold, "stopping"))
		return err == nil
	})
	answer := make(chan string, 1)
	go func() { answer <- get() }()
	waitFor(t, "the request's wake began", func() bool {
		wk.mu.Lock()
		defer wk.mu.Unlock()
		return wk.starting != nil
	})
	unhold()
	if got := <-answer; got != want {
		t.Errorf("the request during the stop got %q, want %q", got, want)
	}
	if n := starts.Load(); n != 2 {
		t.Errorf("%d starts, want 2", n)
	}
	if f := failures(); len(f) > 0 {
		t.Errorf("failure events: %q", f)
	}
}

// waitFor polls cond until it holds, for 10 s at most.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: timed out", what)
		}
	}
}
