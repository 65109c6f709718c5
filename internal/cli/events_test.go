package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/dev/localbus"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/natstest"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/relay"
	"github.com/skiffdev/skiff/internal/relay/relayplan"
)

// TestEventsPublish stores an event on a real nats-server on loopback
// (no cluster needed for a bus outside it) and reads it back.
func TestEventsPublish(t *testing.T) {
	busURL := natstest.Start(t)

	f, dir, errOut := testFactoryBuffers(t, false)
	manifest := "apiVersion: skiff.dev/v1alpha1\nname: shop\nevents: {bus: " + busURL + "}\nworkloads:\n  - {name: orders, kind: service, lang: go}\n"
	if err := os.WriteFile(filepath.Join(dir, project.FileName), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "order.json"), []byte(`{"n":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI(t, f, errOut, "events", "publish", "com.example.order.placed", "--source", "/orders", "--id", "o-1",
		"--data", "@"+filepath.Join(dir, "order.json"), "-o", "json")
	var got published
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got.Stream != "shop" || got.Seq != 1 || got.Subject != "shop.com.example.order.placed" {
		t.Fatalf("publish: exit %d, %s %s", code, out, stderr)
	}
	// The same source and id again: stored once.
	code, out, _ = runCLI(t, f, errOut, "events", "publish", "com.example.order.placed", "--source", "/orders", "--id", "o-1", "-o", "json")
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || !got.Duplicate {
		t.Errorf("publish again: exit %d, %s", code, out)
	}

	// tail from an hour ago: the stored event, then it stops (--count).
	code, out, stderr = runCLI(t, f, errOut, "events", "tail", "--since", "1h", "--count", "1", "--type", "com.example.*", "-o", "json")
	var tl tailed
	if code != 0 || json.Unmarshal([]byte(out), &tl) != nil || tl.Attrs["id"] != "o-1" || tl.Seq != 1 || string(tl.Data) != `{"n":1}` {
		t.Errorf("tail: exit %d, %q %s", code, out, stderr)
	}
	if code, _, _ := runCLI(t, f, errOut, "events", "tail", "--type", "a.*.b"); code != cmdutil.ExitUsage {
		t.Errorf("tail --type a.*.b: exit %d", code)
	}

	js := natstest.Connect(t, busURL)
	s, err := js.Stream(context.Background(), "shop")
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := relay.FromMessage(m.Header, m.Data)
	if err != nil || ev.ID() != "o-1" || ev.Source() != "/orders" || string(ev.Data) != `{"n":1}` {
		t.Errorf("stored %v %q: %v", ev.Attrs, ev.Data, err)
	}

	for name, args := range map[string][]string{
		"bad type": {"events", "publish", "com.ex*"},
		"bad data": {"events", "publish", "a.b", "--data", "{not json"},
		"no type":  {"events", "publish"},
	} {
		if code, _, stderr := runCLI(t, f, errOut, args...); code != cmdutil.ExitUsage {
			t.Errorf("%s: exit %d, want %d\n%s", name, code, cmdutil.ExitUsage, stderr)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, project.FileName), []byte("apiVersion: skiff.dev/v1alpha1\nname: shop\nworkloads:\n  - {name: orders, kind: service, lang: go}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, f, errOut, "events", "publish", "a.b"); code != cmdutil.ExitUsage {
		t.Errorf("no bus: exit %d\n%s", code, stderr)
	}
}

// TestEventsStatusAndDeadLetters: a trigger's backlog and dead letters as
// status and dlq show them, and a replay through the CLI.
func TestEventsStatusAndDeadLetters(t *testing.T) {
	busURL := natstest.Start(t)
	f, dir, errOut := testFactoryBuffers(t, false)
	manifest := "apiVersion: skiff.dev/v1alpha1\nname: shop\nevents: {bus: " + busURL + "}\nworkloads:\n" +
		"  - {name: thumbs, kind: function, lang: go, triggers: [{event: com.example.image.uploaded}], delivery: {retries: 0}}\n" +
		"  - {name: orders, kind: service, lang: go}\n"
	if err := os.WriteFile(filepath.Join(dir, project.FileName), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := project.Parse([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	w, _ := p.Workload("thumbs")
	plan, _ := relayplan.For(p, w)
	js := natstest.Connect(t, busURL)
	ctx := context.Background()
	if err := relay.Subscribe(ctx, js, "thumbs", plan, 4); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if code, out, stderr := runCLI(t, f, errOut, "events", "publish", "com.example.image.uploaded", "--id", id); code != 0 {
			t.Fatalf("publish: %s %s", out, stderr)
		}
	}
	// The server counts a consumer's pending events a moment after it
	// stored them: status is asked again until it shows them.
	waitPending := func(want uint64) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; {
			var st []relay.TriggerStatus
			code, out, stderr := runCLI(t, f, errOut, "events", "status", "-o", "json")
			if code != 0 || json.Unmarshal([]byte(out), &st) != nil || len(st) != 1 || !st[0].Deployed || st[0].Workload != "thumbs" {
				t.Fatalf("status: exit %d, %s %s", code, out, stderr)
			}
			if st[0].Pending == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("status never showed %d events pending: %s", want, out)
			}
		}
	}
	waitPending(2)
	var code int
	var out, stderr string

	// A handler that fails b: it goes to the dead letters at once (no retries).
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("ce-id") == "b" {
			http.Error(w, "cannot", http.StatusInternalServerError)
		}
	})
	srv := httptest.NewServer(handler)
	defer srv.Close()
	dctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	d := &relay.Dispatcher{JS: js, Stream: "shop", Workload: "thumbs", Target: srv.URL, Triggers: plan.Triggers, Delivery: plan.Delivery,
		Concurrency: 4, Client: &http.Client{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: &relay.Metrics{}}
	go func() { done <- d.Run(dctx) }()
	var dls []relay.DeadLetter
	for len(dls) == 0 {
		code, out, stderr = runCLI(t, f, errOut, "events", "dlq", "list", "thumbs", "-o", "json")
		if code != 0 || json.Unmarshal([]byte(out), &dls) != nil {
			t.Fatalf("dlq list: exit %d, %s %s", code, out, stderr)
		}
	}
	cancel()
	<-done
	if len(dls) != 1 || dls[0].ID != "b" || dls[0].Status != 500 {
		t.Fatalf("dead letters: %+v", dls)
	}
	code, out, _ = runCLI(t, f, errOut, "events", "status", "thumbs")
	if code != 0 || !strings.Contains(out, "thumbs") || !strings.Contains(out, "com.example.image.uploaded") {
		t.Errorf("status table: exit %d\n%s", code, out)
	}
	// The streams against the default limits (1 GiB, 7 days; dead letters 30 days).
	for _, want := range []string{"STREAM", "MAX SIZE", "1.0 GiB (0%)", "168h0m0s", "720h0m0s", "shop-dlq"} {
		if !strings.Contains(out, want) {
			t.Errorf("status table lacks %q:\n%s", want, out)
		}
	}

	for name, args := range map[string][]string{
		"replay chooses nothing": {"events", "dlq", "replay"},
		"replay unknown seq":     {"events", "dlq", "replay", "--seq", "999"},
		"no triggers":            {"events", "status", "orders"},
		"no such workload":       {"events", "dlq", "list", "nope"},
	} {
		if code, _, stderr := runCLI(t, f, errOut, args...); code != cmdutil.ExitUsage {
			t.Errorf("%s: exit %d, want %d\n%s", name, code, cmdutil.ExitUsage, stderr)
		}
	}
	code, out, stderr = runCLI(t, f, errOut, "events", "dlq", "replay", "--seq", fmt.Sprint(dls[0].Seq), "-o", "json")
	var rp []replayed
	if code != 0 || json.Unmarshal([]byte(out), &rp) != nil || len(rp) != 1 || rp[0].ID != "b" {
		t.Fatalf("replay: exit %d, %s %s", code, out, stderr)
	}
	code, out, _ = runCLI(t, f, errOut, "events", "dlq", "list", "-o", "json")
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("after the replay: %s", out)
	}
	// Back on the stream, for thumbs' consumer alone.
	waitPending(1)
}

// TestEventsFindTheLocalBus: while skiff dev --local runs in the project,
// the events commands use its bus (no events.bus needed); --local insists
// on it, --local=false on events.bus; once it stopped, --local says so.
func TestEventsFindTheLocalBus(t *testing.T) {
	f, dir, errOut := testFactoryBuffers(t, false)
	manifest := "apiVersion: skiff.dev/v1alpha1\nname: shop\nworkloads:\n  - {name: thumbs, kind: function, lang: go, triggers: [{event: com.example.up}]}\n"
	if err := os.WriteFile(filepath.Join(dir, project.FileName), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := project.Load(filepath.Join(dir, project.FileName))
	if err != nil {
		t.Fatal(err)
	}
	lb, err := localbus.Start(context.Background(), engine.DevBusConfig{Root: dir, Project: p, Workloads: []string{"thumbs"}, Logs: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()

	code, out, stderr := runCLI(t, f, errOut, "events", "publish", "com.example.up", "--id", "u-1", "-o", "json")
	var got published
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got.Stream != "shop" || got.Seq != 1 {
		t.Fatalf("publish to the local bus: exit %d, %s %s", code, out, stderr)
	}
	code, _, stderr = runCLI(t, f, errOut, "events", "tail", "--since", "1h", "--count", "1")
	if code != 0 || !strings.Contains(stderr, "Using the bus of skiff dev --local (pid ") || !strings.Contains(stderr, lb.URL) {
		t.Errorf("tail: exit %d, stderr %q", code, stderr)
	}
	code, out, stderr = runCLI(t, f, errOut, "events", "status", "--local", "-o", "json")
	var st []relay.TriggerStatus
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || len(st) != 1 || !st[0].Deployed {
		t.Errorf("status --local: exit %d, %s %s", code, out, stderr)
	}
	if code, _, stderr := runCLI(t, f, errOut, "events", "publish", "a.b", "--local=false"); code != cmdutil.ExitUsage || !strings.Contains(stderr, "skiff.yaml has no events.bus") {
		t.Errorf("--local=false without events.bus: exit %d, %s", code, stderr)
	}

	lb.Close()
	if code, _, stderr := runCLI(t, f, errOut, "events", "publish", "a.b", "--local"); code != cmdutil.ExitFailure || !strings.Contains(stderr, "no skiff dev --local runs for this project") {
		t.Errorf("--local once dev stopped: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, f, errOut, "events", "publish", "a.b"); code != cmdutil.ExitUsage || !strings.Contains(stderr, "start `skiff dev --local`") {
		t.Errorf("no bus at all: exit %d, %s", code, stderr)
	}
}
