package dev

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/event"
	"github.com/skiffdev/skiff/internal/hostrun"
	"github.com/skiffdev/skiff/internal/project"
)

// TestWakeOnRequest: a scale.min 0 workload runs no process until a
// request; requests that arrive while it starts wait for that one start
// and are answered by it; after its idle time it is stopped; the next
// request starts it again; Stop leaves no listener.
func TestWakeOnRequest(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	notices := make(chan string, 100)
	l := &Local{Root: t.TempDir(), Logs: io.Discard, Events: &Emitter{Sink: func(ev event.Event) {
		if ev.Kind == event.Notice {
			notices <- ev.Message
		}
	}}}
	defer l.Stop()
	w := &project.Workload{Name: "fn", Port: port, Ready: "/", Scale: &project.Scale{Min: 0, Idle: "1s"}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wk, _, err := l.wakerFor(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	var starts atomic.Int32
	plan := &hostrun.Plan{Command: []string{os.Args[0]}, Dir: t.TempDir(), Port: wk.port,
		Env: []string{"SKIFF_DEV_TEST_SERVER=127.0.0.1:" + strconv.Itoa(wk.port), "PORT=" + strconv.Itoa(wk.port)}}
	wk.setVersion(func(ctx context.Context) (*hostrun.Process, error) {
		starts.Add(1)
		return l.launch(ctx, w, plan, wk.port)
	})
	if starts.Load() != 0 {
		t.Fatal("started before a request")
	}
	get := func() string {
		resp, err := http.Get(URL(w) + "/")
		if err != nil {
			t.Error(err)
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %s", resp.Status, b)
		}
		return string(b)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got := get(); got != "hello from "+strconv.Itoa(wk.port) {
				t.Errorf("answered %q", got)
			}
		}()
	}
	wg.Wait()
	if n := starts.Load(); n != 1 {
		t.Fatalf("%d starts for 10 requests at once, want 1", n)
	}
	await := func(prefix string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case m := <-notices:
				if strings.HasPrefix(m, prefix) {
					return
				}
			case <-deadline:
				t.Fatalf("no notice %q", prefix)
			}
		}
	}
	await("fn: woken by a request")
	await("fn: stopped after 1s without a request")
	if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(wk.port)); err == nil {
		c.Close()
		t.Fatal("the process still listens after its idle time")
	}
	get()
	if n := starts.Load(); n != 2 {
		t.Fatalf("%d starts, want 2 (woken again)", n)
	}
	l.Stop()
	if c, err := net.Dial("tcp", URL(w)[len("http://"):]); err == nil {
		c.Close()
		t.Error("the workload's port still answers after Stop")
	}
}

// TestWakeSupersededByANewVersion: a cycle that replaces the version
// while a request wakes the workload (its start then fails: the cycle
// stopped that process) is neither a failure nor the end of the request:
// the request is answered by the new version.
func TestWakeSupersededByANewVersion(t *testing.T) {
	// A cycle marks the version replaced before it stops the old
	// process, and sets the new one after: the old start may end in
	// between (cycle), or only after the new version is set (late).
	for _, order := range []string{"cycle", "late"} {
		t.Run(order, func(t *testing.T) { testWakeSuperseded(t, order == "cycle") })
	}
}

func testWakeSuperseded(t *testing.T, cycleOrder bool) {
	l, w, wk, failures := sleepyWaker(t, "1m")
	oldStarted, release := make(chan struct{}), make(chan struct{})
	wk.setVersion(func(context.Context) (*hostrun.Process, error) {
		close(oldStarted)
		<-release
		return nil, errors.New("old exited: signal: terminated before it was ready")
	})
	answer := make(chan string, 1)
	go func() {
		resp, err := http.Get(URL(w) + "/")
		if err != nil {
			answer <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answer <- resp.Status + " " + string(b)
	}()
	<-oldStarted
	plan := &hostrun.Plan{Command: []string{os.Args[0]}, Dir: t.TempDir(), Port: wk.port,
		Env: []string{"SKIFF_DEV_TEST_SERVER=127.0.0.1:" + strconv.Itoa(wk.port), "PORT=" + strconv.Itoa(wk.port)}}
	var newStarts atomic.Int32
	newVersion := func(ctx context.Context) (*hostrun.Process, error) {
		newStarts.Add(1)
		return l.launch(ctx, w, plan, wk.port)
	}
	if cycleOrder {
		wk.replace()
		close(release) // the cycle stops the old process: its start fails
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			wk.mu.Lock()
			ended := wk.starting == nil
			wk.mu.Unlock()
			if ended {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the old start did not end")
			}
		}
		wk.setVersion(newVersion)
	} else {
		wk.setVersion(newVersion)
		close(release)
	}
	if got, want := <-answer, "200 OK hello from "+strconv.Itoa(wk.port); got != want {
		t.Errorf("the request waiting through the cycle got %q, want %q", got, want)
	}
	if n := newStarts.Load(); n != 1 {
		t.Errorf("the new version started %d times, want 1", n)
	}
	if f := failures(); len(f) > 0 {
		t.Errorf("a superseded start was reported as a failure: %q", f)
	}
}

// sleepyWaker returns a Local (stopped with the test) and the waker of
// its scale.min 0 workload fn on a free port, idle after idle, and a
// function that returns the failure events' errors so far.
func sleepyWaker(t *testing.T, idle string) (*Local, *project.Workload, *waker, func() []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	var mu sync.Mutex
	var failures []string
	l := &Local{Root: t.TempDir(), Logs: io.Discard, Events: &Emitter{Sink: func(ev event.Event) {
		if ev.Kind == Failed {
			mu.Lock()
			failures = append(failures, ev.Error)
			mu.Unlock()
		}
	}}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { l.Stop(); cancel() })
	w := &project.Workload{Name: "fn", Port: port, Ready: "/", Scale: &project.Scale{Min: 0, Idle: idle}}
	wk, _, err := l.wakerFor(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	return l, w, wk, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(failures)
	}
}
