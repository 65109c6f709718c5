package localbus

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skiffdev/skiff/internal/bus"
	"github.com/skiffdev/skiff/internal/dev"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/eventstream"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/relay"
)

// handler is a workload's HTTP server on a port of its own: it records
// the events it gets and answers with what answer says.
type handler struct {
	mu     sync.Mutex
	got    []http.Header
	answer func(h http.Header, w http.ResponseWriter)
	seen   chan http.Header
}

func startHandler(t testing.TB, answer func(h http.Header, w http.ResponseWriter)) (*handler, int) {
	t.Helper()
	h := &handler{answer: answer, seen: make(chan http.Header, 100)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			return // readiness
		}
		io.Copy(io.Discard, r.Body)
		h.mu.Lock()
		h.got = append(h.got, r.Header.Clone())
		h.mu.Unlock()
		h.seen <- r.Header.Clone()
		h.answer(r.Header, w)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return h, ln.Addr().(*net.TCPAddr).Port
}

// lockedWriter writes to w one write at a time (the relay's lines come
// from its goroutines).
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (lw *lockedWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.w.Write(p)
}

func (h *handler) next(t *testing.T, what string) http.Header {
	t.Helper()
	select {
	case hd := <-h.seen:
		return hd
	case <-time.After(15 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		return nil
	}
}

// TestLocalBus runs the event half of dev --local against two workloads
// served by the test: an event published to the sink (K_SINK) is
// delivered once to its trigger and the handler's reply is stored on the
// stream; a failing handler's event is retried, dead-lettered and
// replayed; a schedule ticks; the state file names the running bus; Close
// leaves no port, state or lock.
func TestLocalBus(t *testing.T) {
	root := t.TempDir()
	greeter, gport := startHandler(t, func(h http.Header, w http.ResponseWriter) {
		if h.Get("Ce-Type") == eventstream.ScheduleType {
			return
		}
		w.Header().Set("Ce-Specversion", "1.0")
		w.Header().Set("Ce-Id", "reply-"+h.Get("Ce-Id"))
		w.Header().Set("Ce-Source", "/greeter")
		w.Header().Set("Ce-Type", "com.example.greeted")
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"message":"hi"}`))
	})
	var fail sync.Mutex
	failing := true
	picky, pport := startHandler(t, func(_ http.Header, w http.ResponseWriter) {
		fail.Lock()
		defer fail.Unlock()
		if failing {
			http.Error(w, "not today", http.StatusInternalServerError)
		}
	})
	retries := 1
	p := &project.Project{Name: "shop", Workloads: []project.Workload{
		{Name: "greeter", Port: gport, Ready: "/", Triggers: []project.Trigger{{Event: "com.example.hello"}, {Schedule: "@every 1s"}}},
		{Name: "picky", Port: pport, Ready: "/", Triggers: []project.Trigger{{Event: "com.example.hard"}},
			Delivery: &project.Delivery{Retries: &retries, Backoff: "10ms", Timeout: "2s"}},
		{Name: "web", Port: 1},
	}}
	var logs bytes.Buffer
	var logMu sync.Mutex
	lb, err := Start(context.Background(), engine.DevBusConfig{Root: root, Project: p, Workloads: []string{"greeter", "picky", "web"},
		Logs: &lockedWriter{mu: &logMu, w: &logs}})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			lb.Close()
		}
	}()

	// A second one for the project is refused, naming the first.
	if _, err := Start(context.Background(), engine.DevBusConfig{Root: root, Project: p}); err == nil || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("a second bus: %v, want an error naming this pid", err)
	}
	st, err := bus.FindLocal(root)
	if err != nil || st.Bus != lb.URL || st.Sink != lb.Sink || st.Stream != "shop" {
		t.Fatalf("FindLocal = %+v, %v; want the running bus %s", st, err, lb.URL)
	}
	if got := lb.Env(); len(got) != 1 || got[0] != "K_SINK="+lb.Sink {
		t.Errorf("Env = %v", got)
	}

	post := func(typ, id string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, lb.Sink, strings.NewReader(`{"name":"Ada"}`))
		req.Header.Set("Ce-Specversion", "1.0")
		req.Header.Set("Ce-Id", id)
		req.Header.Set("Ce-Source", "/test")
		req.Header.Set("Ce-Type", typ)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("the sink answered %s", resp.Status)
		}
	}
	nc, err := nats.Connect(lb.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Delivered once, and the reply stored.
	post("com.example.hello", "e1")
	for {
		h := greeter.next(t, "the event")
		if h.Get("Ce-Type") == "com.example.hello" {
			if h.Get("Ce-Id") != "e1" {
				t.Fatalf("delivered %s", h.Get("Ce-Id"))
			}
			break
		}
	}
	stream, err := js.Stream(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := stream.GetLastMsgForSubject(ctx, "shop.com.example.greeted")
		if err == nil {
			if m.Header.Get("ce-id") != "reply-e1" {
				t.Fatalf("the reply stored is %v", m.Header)
			}
			break
		}
		if !errors.Is(err, jetstream.ErrMsgNotFound) || time.Now().After(deadline) {
			t.Fatalf("the reply is not on the stream: %v", err)
		}
		greeter.next(t, "a tick, while the reply is stored") // ticks come every second: a pace, not a sleep
	}

	// A schedule ticks (the greeter gets dev.skiff.schedule events).
	for {
		if greeter.next(t, "a tick").Get("Ce-Type") == eventstream.ScheduleType {
			break
		}
	}

	// Retried, then dead-lettered, then replayed to the fixed handler.
	post("com.example.hard", "h1")
	picky.next(t, "the first delivery")
	picky.next(t, "the retry")
	var dls []relay.DeadLetter
	for deadline := time.Now().Add(10 * time.Second); len(dls) == 0; {
		if dls, err = relay.DeadLetters(ctx, js, "shop", "picky"); err != nil {
			t.Fatal(err)
		}
		if len(dls) == 0 && time.Now().After(deadline) {
			t.Fatal("no dead letter")
		}
		if len(dls) == 0 {
			greeter.next(t, "a tick, while the dead letter is stored")
		}
	}
	if dls[0].ID != "h1" || dls[0].Deliveries != 2 || dls[0].Status != 500 {
		t.Fatalf("dead letter %+v", dls[0])
	}
	fail.Lock()
	failing = false
	fail.Unlock()
	if err := relay.Replay(ctx, js, "shop", dls[0]); err != nil {
		t.Fatal(err)
	}
	if h := picky.next(t, "the replay"); h.Get("Ce-Id") != "h1" {
		t.Fatalf("replayed %v", h)
	}

	// skiff.yaml loses picky's trigger: its consumer goes.
	p2 := *p
	p2.Workloads = []project.Workload{p.Workloads[0], {Name: "picky", Port: pport}, p.Workloads[2]}
	if err := lb.SetProject(ctx, &p2); err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range stream.ConsumerNames(ctx).Name() {
		names = append(names, n)
	}
	if len(names) != 2 || strings.Contains(strings.Join(names, " "), "picky") {
		t.Errorf("consumers after picky lost its trigger: %v", names)
	}

	nc.Close()
	lb.Close()
	closed = true
	if _, err := bus.FindLocal(root); !errors.Is(err, bus.ErrNoLocalBus) {
		t.Errorf("after Close, FindLocal = %v", err)
	}
	for _, u := range []string{lb.URL, lb.Sink} {
		host := u[strings.Index(u, "//")+2:]
		if c, err := net.Dial("tcp", host); err == nil {
			c.Close()
			t.Errorf("%s still answers after Close", u)
		}
	}
	for _, f := range []string{"dev.json", "dev.lock"} {
		if _, err := os.Stat(filepath.Join(root, ".skiff", f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf(".skiff/%s is left: %v", f, err)
		}
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), "relay | ") || !strings.Contains(logs.String(), "dead-lettered") {
		t.Errorf("the relay's lines:\n%s", logs.String())
	}
}

// dev --local keeps liveConfig workloads' config in the folder of the
// bus's store and state: dev names it without importing package bus.
func TestDevKeepsItsFilesWhereTheBusDoes(t *testing.T) {
	if dev.LocalDir != bus.LocalDir {
		t.Errorf("dev.LocalDir = %q, bus.LocalDir = %q; want one folder", dev.LocalDir, bus.LocalDir)
	}
}
