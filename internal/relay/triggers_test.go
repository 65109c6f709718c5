package relay

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestSubscribeRemovesTheConsumersOfGoneTriggers(t *testing.T) {
	js := runNATS(t)
	ctx := context.Background()
	triggers := map[string][]string{"thumbs": {"com.example.a", "com.example.b"}, "orders": {"com.example.a"}}
	for _, wl := range []string{"thumbs", "orders"} {
		if err := Subscribe(ctx, js, wl, planOf(t, "shop", wl, DefaultDelivery(), triggers[wl]...), 4); err != nil {
			t.Fatal(err)
		}
	}
	if got := consumers(t, js); len(got) != 3 {
		t.Fatalf("consumers after subscribing: %v, want 3", got)
	}
	pl := planOf(t, "shop", "thumbs", DefaultDelivery(), "com.example.b")
	if err := Subscribe(ctx, js, "thumbs", pl, 4); err != nil {
		t.Fatal(err)
	}
	got := consumers(t, js)
	if len(got) != 2 || !got[pl.Triggers[0].Consumer] {
		t.Errorf("after thumbs lost a trigger: %v, want orders' and thumbs' remaining one", got)
	}
	if err := Unsubscribe(ctx, js, "shop", "thumbs", nil); err != nil {
		t.Fatal(err)
	}
	if got := consumers(t, js); len(got) != 1 {
		t.Errorf("after thumbs unsubscribed: %v, want orders' alone", got)
	}
}

// A consumer made by an older skiff, with fewer events in flight, takes
// the new bound at the next deploy, keeping its place in the stream.
func TestSubscribeUpdatesTheEventsInFlight(t *testing.T) {
	js := runNATS(t)
	ctx := context.Background()
	pl := planOf(t, "shop", "thumbs", DefaultDelivery(), "com.example.a")
	if err := Subscribe(ctx, js, "thumbs", pl, 16); err != nil {
		t.Fatal(err)
	}
	publish(t, js, "1", "/test", "com.example.a")
	if err := Subscribe(ctx, js, "thumbs", pl, DefaultConcurrency); err != nil {
		t.Fatalf("deploying with %d in flight over a consumer of 16: %v", DefaultConcurrency, err)
	}
	c, err := js.Consumer(ctx, "shop", pl.Triggers[0].Consumer)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.MaxAckPending != 2*DefaultConcurrency || info.NumPending != 1 {
		t.Errorf("MaxAckPending %d with %d waiting, want %d with the 1 published before", info.Config.MaxAckPending, info.NumPending, 2*DefaultConcurrency)
	}
}

// planOf is the plan of workload's triggers on events (types or
// patterns) on stream, with delivery d and no limits.
func planOf(t *testing.T, stream, workload string, d Delivery, events ...string) *Plan {
	t.Helper()
	pl := &Plan{Stream: stream, Delivery: d}
	for _, ev := range events {
		tr, err := EventTrigger(stream, workload, ev, "")
		if err != nil {
			t.Fatal(err)
		}
		pl.Triggers = append(pl.Triggers, tr)
	}
	return pl
}

func consumers(t *testing.T, js jetstream.JetStream) map[string]bool {
	t.Helper()
	s, err := js.Stream(context.Background(), "shop")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	names := s.ConsumerNames(context.Background())
	for n := range names.Name() {
		out[n] = true
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// A pod's relay fetches nothing before its function is ready: a slow
// starter does not use up its events' retries.
func TestDispatcherWaitsForTheFunction(t *testing.T) {
	js := runNATS(t)
	var ready atomic.Bool
	readyz := make(chan struct{}, 100)
	fn := newFunction(nil)
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		readyz <- struct{}{}
		if !ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	mux.Handle("/", fn)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	filter, _ := Filter("shop", "com.example.a")
	tr := Trigger{Consumer: "thumbs-a", Filter: filter}
	d := Delivery{Retries: 0, Backoff: time.Second, Timeout: 5 * time.Second}
	if _, err := js.CreateOrUpdateConsumer(context.Background(), "shop", ConsumerConfig(tr, "thumbs", d, 4)); err != nil {
		t.Fatal(err)
	}
	publish(t, js, "1", "/a", "com.example.a")
	disp := &Dispatcher{JS: js, Stream: "shop", Workload: "thumbs", Target: srv.URL + "/", Ready: srv.URL + "/readyz",
		Triggers: []Trigger{tr}, Delivery: d, Concurrency: 4, Client: &http.Client{}, Logger: quiet, Metrics: &Metrics{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- disp.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for range 3 { // asked three times, answered 503
		<-readyz
	}
	if n := fn.count("1"); n != 0 {
		t.Fatalf("delivered %d times before the function was ready", n)
	}
	ready.Store(true)
	fn.wait(t, 1)
	if n := fn.count("1"); n != 1 {
		t.Errorf("delivered %d times, want once", n)
	}
}

// A poison event ends in the dead letters with why; status counts it;
// replay sends it to its consumer alone, and once fixed it is delivered.
func TestDeadLettersStatusAndReplay(t *testing.T) {
	js := runNATS(t)
	ctx := context.Background()
	plans := map[string]*Plan{
		"thumbs": planOf(t, "shop", "thumbs", Delivery{Retries: 1, Backoff: 50 * time.Millisecond, Timeout: 5 * time.Second}, "com.example.image.uploaded"),
		"audit":  planOf(t, "shop", "audit", DefaultDelivery(), "com.example.*"),
	}
	for _, w := range []string{"thumbs", "audit"} {
		if err := Subscribe(ctx, js, w, plans[w], 4); err != nil {
			t.Fatal(err)
		}
	}
	var fixed atomic.Bool
	fn := newFunction(func(id string, _ int) int {
		if id == "poison" && !fixed.Load() {
			return http.StatusUnprocessableEntity
		}
		return 0
	})
	startDispatcher(t, js, fn, plans["thumbs"].Delivery, plans["thumbs"].Triggers...)
	publish(t, js, "good", "/uploads", "com.example.image.uploaded")
	publish(t, js, "poison", "/uploads", "com.example.image.uploaded")
	fn.wait(t, 3) // good, and poison twice (one retry)

	var dls []DeadLetter
	for dls == nil { // stored after the last answer
		var err error
		if dls, err = DeadLetters(ctx, js, "shop", "thumbs"); err != nil {
			t.Fatal(err)
		}
	}
	if len(dls) != 1 || dls[0].ID != "poison" || dls[0].Status != 422 || dls[0].Deliveries != 2 ||
		dls[0].Consumer != plans["thumbs"].Triggers[0].Consumer || dls[0].Workload != "thumbs" ||
		dls[0].Subject != "shop.com.example.image.uploaded" {
		t.Fatalf("dead letters: %+v", dls)
	}
	if all, _ := DeadLetters(ctx, js, "shop", ""); len(all) != 1 {
		t.Errorf("every workload's dead letters: %+v", all)
	}
	st, err := Status(ctx, js, "thumbs", plans["thumbs"])
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || !st[0].Deployed || st[0].DeadLetters != 1 || st[0].Trigger != "com.example.image.uploaded" {
		t.Errorf("status: %+v", st)
	}
	audit, _ := Status(ctx, js, "audit", plans["audit"])
	pendingBefore := audit[0].Pending

	fixed.Store(true)
	if err := Replay(ctx, js, "shop", dls[0]); err != nil {
		t.Fatal(err)
	}
	fn.wait(t, 1)
	if n := fn.count("poison"); n != 3 {
		t.Errorf("poison delivered %d times, want 3: twice, then once replayed", n)
	}
	if left, _ := DeadLetters(ctx, js, "shop", "thumbs"); len(left) != 0 {
		t.Errorf("after the replay the dead letters hold %+v", left)
	}
	if audit, _ := Status(ctx, js, "audit", plans["audit"]); audit[0].Pending != pendingBefore {
		t.Errorf("the replay reached audit's consumer too: pending %d, was %d", audit[0].Pending, pendingBefore)
	}
}

// The function's reply (a CloudEvent in its answer) is stored on the
// stream, unless it is of a type that triggers the function itself.
func TestDispatcherStoresReplies(t *testing.T) {
	js := runNATS(t)
	fn := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		typ := "com.example.thumb.made"
		if r.Header.Get("ce-id") == "loop" {
			typ = "com.example.image.uploaded"
		}
		w.Header().Set("ce-specversion", "1.0")
		w.Header().Set("ce-id", "reply-"+r.Header.Get("ce-id"))
		w.Header().Set("ce-source", "/thumbs")
		w.Header().Set("ce-type", typ)
		w.Header().Set("ce-subject", r.Header.Get("ce-id"))
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}`))
	})
	filter, _ := Filter("shop", "com.example.image.uploaded")
	m, _, _ := startDispatcher(t, js, fn, Delivery{Retries: 1, Backoff: 50 * time.Millisecond, Timeout: 5 * time.Second},
		Trigger{Consumer: "thumbs-img", Filter: filter})
	replies, err := js.OrderedConsumer(context.Background(), "shop", jetstream.OrderedConsumerConfig{FilterSubjects: []string{"shop.com.example.thumb.made"}})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, js, "loop", "/uploads", "com.example.image.uploaded")
	publish(t, js, "1", "/uploads", "com.example.image.uploaded")
	msg, err := replies.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := FromMessage(msg.Headers(), msg.Data())
	if err != nil || ev.ID() != "reply-1" || ev.Attrs["subject"] != "1" || string(ev.Data) != `{"ok":true}` {
		t.Fatalf("reply: %+v %v", ev, err)
	}
	// Once both events are acked (each after its reply was stored, if
	// any), the loop's reply is not on the stream.
	c, _ := js.Consumer(context.Background(), "shop", "thumbs-img")
	for tick := time.NewTicker(10 * time.Millisecond); ; <-tick.C {
		if info, err := c.Info(context.Background()); err == nil && info.AckFloor.Consumer >= 2 && info.NumAckPending == 0 {
			break
		}
	}
	if m.Get(Replied) != 1 {
		t.Errorf("replies stored: %d, want 1", m.Get(Replied))
	}
	s, _ := js.Stream(context.Background(), "shop")
	info, _ := s.Info(context.Background())
	if info.State.Msgs != 3 {
		t.Errorf("the stream holds %d events, want the 2 published and 1 reply", info.State.Msgs)
	}
}

// replyGate is a JetStream whose first publish of each reply fails and
// whose second waits until release is closed.
type replyGate struct {
	jetstream.JetStream
	mu      sync.Mutex
	tries   map[string]int
	held    chan string // the id of a reply being held
	release chan struct{}
}

func (g *replyGate) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	id := m.Header.Get("ce-id")
	g.mu.Lock()
	g.tries[id]++
	n := g.tries[id]
	g.mu.Unlock()
	if n == 1 {
		return nil, errors.New("the bus is away")
	}
	g.held <- id
	<-g.release
	return g.JetStream.PublishMsgAsync(m, opts...)
}

func TestDispatcherAcksOnlyOnceTheReplyIsStored(t *testing.T) {
	js := runNATS(t)
	got := make(chan string, 10)
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("ce-id")
		w.Header().Set("ce-specversion", "1.0")
		w.Header().Set("ce-id", "reply-"+r.Header.Get("ce-id"))
		w.Header().Set("ce-source", "/thumbs")
		w.Header().Set("ce-type", "com.example.thumb.made")
	}))
	defer fn.Close()
	filter, _ := Filter("shop", "com.example.image.uploaded")
	tr := Trigger{Consumer: "thumbs-img", Filter: filter}
	d := Delivery{Retries: 3, Backoff: 10 * time.Millisecond, Timeout: 10 * time.Second}
	if _, err := js.CreateOrUpdateConsumer(context.Background(), "shop", ConsumerConfig(tr, "thumbs", d, 1)); err != nil {
		t.Fatal(err)
	}
	gate := &replyGate{JetStream: js, tries: map[string]int{}, held: make(chan string, 1), release: make(chan struct{})}
	m := &Metrics{}
	// One event in flight to the function at a time.
	disp := &Dispatcher{JS: gate, Stream: "shop", Workload: "thumbs", Target: fn.URL, Triggers: []Trigger{tr},
		Delivery: d, Concurrency: 1, Client: HandlerClient(1), Logger: quiet, Metrics: m}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- disp.Run(ctx) }()
	defer func() { cancel(); <-done }()
	next := func(what string) string {
		t.Helper()
		select {
		case id := <-got:
			return id
		case <-time.After(20 * time.Second):
			t.Fatalf("the function did not get %s", what)
			return ""
		}
	}

	publish(t, js, "a", "/uploads", "com.example.image.uploaded")
	// Its reply could not be stored: the event comes again.
	if id := next("the event"); id != "a" {
		t.Fatalf("got %q first", id)
	}
	if id := next("the event again after its reply failed"); id != "a" {
		t.Fatalf("got %q, want a again", id)
	}
	select {
	case <-gate.held:
	case <-time.After(20 * time.Second):
		t.Fatal("the second reply was not published")
	}
	// While a's reply is being stored, the function has the next event;
	// a is not acked.
	publish(t, js, "b", "/uploads", "com.example.image.uploaded")
	if id := next("the next event while a reply was being stored"); id != "b" {
		t.Fatalf("got %q, want b", id)
	}
	c, _ := js.Consumer(context.Background(), "shop", tr.Consumer)
	if info, err := c.Info(context.Background()); err != nil || info.AckFloor.Stream != 0 {
		t.Fatalf("acked before its reply was stored: %+v %v", info, err)
	}
	close(gate.release)
	deadline := time.Now().Add(20 * time.Second)
	for tick := time.NewTicker(10 * time.Millisecond); ; <-tick.C {
		info, err := c.Info(context.Background())
		if err == nil && info.AckFloor.Consumer >= 4 && info.NumAckPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every delivery acked: %+v %v", info, err)
		}
	}
	// Each reply failed once (a retry of its event), then was stored.
	if m.Get(Replied) != 2 || m.Get(Failed) != 2 || m.Get(Retried) != 2 || m.Get(Delivered) != 2 {
		t.Errorf("replied %d, failed %d, retried %d, delivered %d; want 2, 2, 2, 2", m.Get(Replied), m.Get(Failed), m.Get(Retried), m.Get(Delivered))
	}
	s, _ := js.Stream(context.Background(), "shop")
	info, _ := s.Info(context.Background())
	if info.State.Msgs != 4 {
		t.Errorf("the stream holds %d messages, want the 2 events and their 2 replies", info.State.Msgs)
	}
}

func TestSubjectMatches(t *testing.T) {
	for _, tc := range []struct {
		filter, subject string
		want            bool
	}{
		{"shop.a.b", "shop.a.b", true}, {"shop.a.>", "shop.a.b.c", true}, {"shop.a.>", "shop.a", false},
		{"shop.*.b", "shop.x.b", true}, {"shop.*.b", "shop.x.c", false}, {"shop.a", "shop.a.b", false}, {"shop.>", "other.a", false},
	} {
		if got := SubjectMatches(tc.filter, tc.subject); got != tc.want {
			t.Errorf("SubjectMatches(%q, %q) = %v", tc.filter, tc.subject, got)
		}
	}
}
