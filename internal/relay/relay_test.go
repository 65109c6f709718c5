package relay

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skiffdev/skiff/internal/eventstream"
	"github.com/skiffdev/skiff/internal/natstest"
)

// runNATS starts a real nats-server with JetStream on a file store in a
// temporary folder, on loopback.
func runNATS(t *testing.T) jetstream.JetStream {
	t.Helper()
	js := natstest.Connect(t, natstest.Start(t))
	if err := EnsureStreams(context.Background(), js, "shop", eventstream.Limits{}); err != nil {
		t.Fatal(err)
	}
	return js
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func post(t *testing.T, url string, header map[string]string, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func binary(id, typ string) map[string]string {
	return map[string]string{"ce-specversion": "1.0", "ce-id": id, "ce-source": "/test", "ce-type": typ, "Content-Type": "application/json"}
}

func TestSinkStoresEventsBeforeAnswering(t *testing.T) {
	js := runNATS(t)
	metrics := &Metrics{}
	sink := httptest.NewServer(&Sink{Stream: "shop", JS: js, Logger: quiet, Metrics: metrics})
	defer sink.Close()
	ctx := context.Background()

	if code, body := post(t, sink.URL, binary("1", "com.example.order.placed"), `{"n":1}`); code != http.StatusAccepted {
		t.Fatalf("binary event: %d %s", code, body)
	}
	structured := `{"specversion":"1.0","id":"2","source":"/test","type":"com.example.order.paid","datacontenttype":"application/json","data":{"n":2}}`
	if code, body := post(t, sink.URL, map[string]string{"Content-Type": "application/cloudevents+json"}, structured); code != http.StatusAccepted {
		t.Fatalf("structured event: %d %s", code, body)
	}
	// The same source and id again: stored once.
	if code, body := post(t, sink.URL, binary("1", "com.example.order.placed"), `{"n":1}`); code != http.StatusAccepted || !strings.Contains(body, `"duplicate":true`) {
		t.Errorf("a duplicate: %d %s", code, body)
	}
	s, _ := js.Stream(ctx, "shop")
	info, _ := s.Info(ctx)
	if info.State.Msgs != 2 {
		t.Fatalf("the stream holds %d events, want 2", info.State.Msgs)
	}
	m, err := s.GetMsg(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := FromMessage(m.Header, m.Data)
	if err != nil || m.Subject != "shop.com.example.order.paid" || ev.ID() != "2" || string(ev.Data) != `{"n":2}` {
		t.Errorf("stored %s %v %q: %v", m.Subject, ev.Attrs, ev.Data, err)
	}

	for name, tc := range map[string]struct {
		header map[string]string
		want   int
	}{
		"no id":        {map[string]string{"ce-specversion": "1.0", "ce-source": "/t", "ce-type": "a.b"}, http.StatusBadRequest},
		"not an event": {map[string]string{"Content-Type": "text/plain"}, http.StatusBadRequest},
		"bad type":     {binary("3", "a..b"), http.StatusBadRequest},
	} {
		if code, body := post(t, sink.URL, tc.header, "x"); code != tc.want {
			t.Errorf("%s: %d %s, want %d", name, code, body, tc.want)
		}
	}
	// A subject no stream holds: the event is not stored, and the client
	// is told so.
	other := httptest.NewServer(&Sink{Stream: "nostream", JS: js, Logger: quiet, Timeout: time.Second})
	defer other.Close()
	if code, body := post(t, other.URL, binary("4", "a.b"), "x"); code != http.StatusServiceUnavailable {
		t.Errorf("no stream: %d %s", code, body)
	}
	if metrics.Get(Published) != 3 {
		t.Errorf("published = %d, want 3 (one a duplicate)", metrics.Get(Published))
	}
}

// function is a handler that records the ids of the events it gets and
// fails those fail says to.
type function struct {
	mu   sync.Mutex
	got  map[string]int
	all  chan string
	fail func(id string, attempt int) int
}

func newFunction(fail func(string, int) int) *function {
	return &function{got: map[string]int{}, all: make(chan string, 10000), fail: fail}
}

func (f *function) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("ce-id")
	f.mu.Lock()
	f.got[id]++
	n := f.got[id]
	f.mu.Unlock()
	if f.fail != nil {
		if code := f.fail(id, n); code != 0 {
			w.WriteHeader(code)
			f.all <- id
			return
		}
	}
	if r.Header.Get("ce-type") == "" || r.Header.Get("ce-source") == "" {
		w.WriteHeader(http.StatusBadRequest)
	}
	f.all <- id
}

func (f *function) count(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.got[id]
}

func publish(t *testing.T, js jetstream.JetStream, id, source, typ string) {
	t.Helper()
	ev := &Event{Attrs: map[string]string{"specversion": "1.0", "id": id, "source": source, "type": typ}, ContentType: "application/json", Data: []byte(`{}`)}
	subject, _ := Subject("shop", typ)
	if _, err := js.PublishMsg(context.Background(), ev.Message(subject)); err != nil {
		t.Fatal(err)
	}
}

func startDispatcher(t *testing.T, js jetstream.JetStream, fn http.Handler, d Delivery, triggers ...Trigger) (*Metrics, context.CancelFunc, chan error) {
	t.Helper()
	srv := httptest.NewServer(fn)
	t.Cleanup(srv.Close)
	m := &Metrics{}
	disp := &Dispatcher{JS: js, Stream: "shop", Workload: "thumbs", Target: srv.URL, Triggers: triggers,
		Delivery: d, Concurrency: 8, Client: HandlerClient(8), Logger: quiet, Metrics: m}
	// As skiff deploy does before a pod runs: a new consumer holds the
	// events published from its creation on.
	for _, tr := range triggers {
		if _, err := js.CreateOrUpdateConsumer(context.Background(), "shop", ConsumerConfig(tr, "thumbs", d, 8)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- disp.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return m, cancel, done
}

// wait receives n ids from the function.
func (f *function) wait(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for range n {
		select {
		case <-f.all:
		case <-timeout:
			t.Fatalf("the function got fewer than %d deliveries", n)
		}
	}
}

func TestDispatcherDeliversEveryEvent(t *testing.T) {
	js := runNATS(t)
	fn := newFunction(nil)
	filter, _ := Filter("shop", "com.example.image.*")
	m, _, _ := startDispatcher(t, js, fn, Delivery{Retries: 3, Backoff: 100 * time.Millisecond, Timeout: 5 * time.Second},
		Trigger{Consumer: "thumbs-0", Filter: filter})
	for i := range 200 {
		publish(t, js, fmt.Sprint(i), "/uploads", "com.example.image.uploaded")
	}
	publish(t, js, "other", "/uploads", "com.example.order.placed") // not this trigger's
	fn.wait(t, 200)
	for i := range 200 {
		if n := fn.count(fmt.Sprint(i)); n != 1 {
			t.Errorf("event %d delivered %d times", i, n)
		}
	}
	if fn.count("other") != 0 {
		t.Error("an event of another type was delivered")
	}
	waitAcked(t, js, "thumbs-0")
	if m.Get(Delivered) != 200 {
		t.Errorf("delivered = %d", m.Get(Delivered))
	}
}

func TestDispatcherKeepsItsConnectionsToTheHandler(t *testing.T) {
	js := runNATS(t)
	fn := newFunction(nil)
	var mu sync.Mutex
	opened := 0
	srv := httptest.NewUnstartedServer(fn)
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			mu.Lock()
			opened++
			mu.Unlock()
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	const concurrency = 8
	filter, _ := Filter("shop", "com.example.image.*")
	tr := Trigger{Consumer: "thumbs-0", Filter: filter}
	d := Delivery{Retries: 3, Backoff: 100 * time.Millisecond, Timeout: 5 * time.Second}
	if _, err := js.CreateOrUpdateConsumer(context.Background(), "shop", ConsumerConfig(tr, "thumbs", d, concurrency)); err != nil {
		t.Fatal(err)
	}
	disp := &Dispatcher{JS: js, Stream: "shop", Workload: "thumbs", Target: srv.URL, Triggers: []Trigger{tr},
		Delivery: d, Concurrency: concurrency, Client: HandlerClient(concurrency), Logger: quiet, Metrics: &Metrics{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- disp.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for i := range 500 {
		publish(t, js, fmt.Sprint(i), "/uploads", "com.example.image.uploaded")
	}
	fn.wait(t, 500)
	waitAcked(t, js, "thumbs-0")
	mu.Lock()
	defer mu.Unlock()
	// About one connection per delivery in flight, kept open between
	// deliveries (Go's default client keeps 2 a host and opens the rest
	// anew: 226 here). Not exactly one: a request that finds no idle
	// connection starts a dial, and when a connection comes back meanwhile
	// it takes that one and the dialed one joins the pool (1 run in 8 on a
	// busy machine opened 9 or 10).
	if opened > 2*concurrency {
		t.Errorf("500 deliveries, %d in flight, opened %d connections to the handler; want at most %d", concurrency, opened, 2*concurrency)
	}
}

// waitAcked waits until consumer has nothing pending or in flight.
func waitAcked(t *testing.T, js jetstream.JetStream, consumer string) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := js.Consumer(ctx, "shop", consumer)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumPending == 0 && info.NumAckPending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer %s: %d pending, %d awaiting an ack", consumer, info.NumPending, info.NumAckPending)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDispatcherRetriesThenDeadLetters(t *testing.T) {
	js := runNATS(t)
	fn := newFunction(func(id string, attempt int) int {
		if id == "poison" {
			return http.StatusInternalServerError
		}
		if id == "flaky" && attempt == 1 {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	filter, _ := Filter("shop", "com.example.a")
	m, _, _ := startDispatcher(t, js, fn, Delivery{Retries: 2, Backoff: 50 * time.Millisecond, Timeout: 5 * time.Second},
		Trigger{Consumer: "thumbs-0", Filter: filter})
	publish(t, js, "poison", "/t", "com.example.a")
	publish(t, js, "flaky", "/t", "com.example.a")
	publish(t, js, "fine", "/t", "com.example.a")
	fn.wait(t, 3+2+1) // poison: 1 + 2 retries; flaky: 2; fine: 1
	waitAcked(t, js, "thumbs-0")
	if fn.count("poison") != 3 || fn.count("flaky") != 2 || fn.count("fine") != 1 {
		t.Errorf("deliveries: poison %d, flaky %d, fine %d", fn.count("poison"), fn.count("flaky"), fn.count("fine"))
	}
	ctx := context.Background()
	dlq, err := js.Stream(ctx, DeadLetterStream("shop"))
	if err != nil {
		t.Fatal(err)
	}
	dl, err := dlq.GetLastMsgForSubject(ctx, DeadLetterSubject("shop", "thumbs"))
	if err != nil {
		t.Fatal(err)
	}
	if got := dl.Header.Get("ce-id"); got != "poison" {
		t.Errorf("the dead letter is %q, want poison", got)
	}
	if dl.Header.Get("Skiff-Status") != "500" || dl.Header.Get("Skiff-Deliveries") != "3" || !strings.Contains(dl.Header.Get("Skiff-Reason"), "500") {
		t.Errorf("dead letter headers: %v", dl.Header)
	}
	info, _ := dlq.Info(ctx)
	if info.State.Msgs != 1 || m.Get(DeadLettered) != 1 || m.Get(Retried) != 3 {
		t.Errorf("dead letters %d (metric %d), retried %d", info.State.Msgs, m.Get(DeadLettered), m.Get(Retried))
	}
	// Per trigger: flaky and fine delivered, poison's 3 attempts and
	// flaky's first failed.
	w := m.Window(time.Now(), time.Minute)["thumbs-0"]
	if w.Delivered != 2 || w.Failed != 4 || w.Retried != 3 || w.DeadLettered != 1 || w.Latency.Count() != 2 {
		t.Errorf("the trigger's window: %+v", w)
	}
}

func TestDispatcherReadsTheLag(t *testing.T) {
	js := runNATS(t)
	filter, _ := Filter("shop", "com.example.a")
	tr := Trigger{Consumer: "thumbs-0", Filter: filter}
	d := Delivery{Retries: 1, Backoff: time.Second, Timeout: time.Second}
	cons, err := js.CreateOrUpdateConsumer(context.Background(), "shop", ConsumerConfig(tr, "thumbs", d, 8))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		publish(t, js, fmt.Sprint(i), "/t", "com.example.a")
	}
	m := &Metrics{}
	disp := &Dispatcher{JS: js, Stream: "shop", Metrics: m, Logger: quiet}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { disp.readPending(ctx, tr.Consumer, cons); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for m.Window(time.Now(), time.Minute)["thumbs-0"].Pending != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("pending %+v, want 3", m.Window(time.Now(), time.Minute))
		}
		time.Sleep(10 * time.Millisecond)
	}
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `skiff_relay_consumer_pending{trigger="thumbs-0"} 3`) {
		t.Errorf("metrics:\n%s", rec.Body)
	}
}

func TestDispatcherRetriesAHandlerThatTimesOut(t *testing.T) {
	js := runNATS(t)
	release := make(chan struct{})
	slow := newFunction(nil)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slow.count(r.Header.Get("ce-id")) == 0 {
			slow.ServeHTTP(httptest.NewRecorder(), r) // counts the attempt
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		slow.ServeHTTP(w, r)
	})
	filter, _ := Filter("shop", "com.example.a")
	startDispatcher(t, js, handler, Delivery{Retries: 1, Backoff: 10 * time.Millisecond, Timeout: 200 * time.Millisecond},
		Trigger{Consumer: "thumbs-0", Filter: filter})
	publish(t, js, "slow", "/t", "com.example.a")
	slow.wait(t, 2)
	close(release)
	waitAcked(t, js, "thumbs-0")
	if n := slow.count("slow"); n != 2 {
		t.Errorf("attempts = %d, want 2 (the first timed out)", n)
	}
}

func TestDispatcherFiltersBySource(t *testing.T) {
	js := runNATS(t)
	fn := newFunction(nil)
	filter, _ := Filter("shop", "*")
	m, _, _ := startDispatcher(t, js, fn, Delivery{Retries: 1, Backoff: 10 * time.Millisecond, Timeout: time.Second},
		Trigger{Consumer: "thumbs-0", Filter: filter, Source: "/uploads"})
	publish(t, js, "a", "/elsewhere", "x.y")
	publish(t, js, "b", "/uploads", "x.z")
	fn.wait(t, 1)
	waitAcked(t, js, "thumbs-0")
	if fn.count("a") != 0 || fn.count("b") != 1 || m.Get(Skipped) != 1 {
		t.Errorf("a %d, b %d, skipped %d", fn.count("a"), fn.count("b"), m.Get(Skipped))
	}
}

// TestDispatcherStopLosesNothing: events in flight when the relay stops
// (a rollout) are delivered by the next relay; none is lost.
func TestDispatcherStopLosesNothing(t *testing.T) {
	js := runNATS(t)
	gate := make(chan struct{})
	first := newFunction(nil)
	blocking := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first.ServeHTTP(w, r)
		<-gate // answers only when the relay is stopping
	})
	filter, _ := Filter("shop", "com.example.a")
	d := Delivery{Retries: 5, Backoff: 10 * time.Millisecond, Timeout: 2 * time.Second}
	_, stop, done := startDispatcher(t, js, blocking, d, Trigger{Consumer: "thumbs-0", Filter: filter})
	for i := range 50 {
		publish(t, js, fmt.Sprint(i), "/t", "com.example.a")
	}
	first.wait(t, 8) // Concurrency events in flight, more fetched
	stop()
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil // for the cleanup

	second := newFunction(nil)
	startDispatcher(t, js, second, d, Trigger{Consumer: "thumbs-0", Filter: filter})
	waitAcked(t, js, "thumbs-0")
	for i := range 50 {
		id := fmt.Sprint(i)
		if first.count(id)+second.count(id) == 0 {
			t.Errorf("event %s was never delivered", id)
		}
	}
}

func TestFilterAndSubject(t *testing.T) {
	for _, tc := range []struct{ pattern, want, err string }{
		{"com.example.a", "shop.com.example.a", ""},
		{"com.example.*", "shop.com.example.>", ""},
		{"*", "shop.>", ""},
		{"com.ex*", "", "may hold * only as its last part"},
		{"com..a", "", "empty part"},
		{"", "", "is empty"},
	} {
		got, err := Filter("shop", tc.pattern)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Filter(%q) = %q, %v; want an error with %q", tc.pattern, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Filter(%q) = %q, %v; want %q", tc.pattern, got, err, tc.want)
		}
	}
	if _, err := Subject("shop", "a.*"); err == nil {
		t.Error("an event type with * was accepted")
	}
}

func TestMetricsText(t *testing.T) {
	m := &Metrics{}
	now := time.Now()
	m.add(Published, 2)
	for _, d := range []time.Duration{3 * time.Millisecond, 40 * time.Millisecond, 2 * time.Second} {
		m.observe(Delivered, "shop-orders-0", d, now)
	}
	m.count(Failed, "shop-orders-0")
	m.count(Retried, "shop-orders-0")
	m.count(DeadLettered, "shop-audit-0")
	m.SetPending("shop-orders-0", 7)
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		"skiff_relay_published_total 2\n",
		`skiff_relay_delivered_total{trigger="shop-orders-0"} 3` + "\n",
		`skiff_relay_delivered_total{trigger="shop-audit-0"} 0` + "\n",
		`skiff_relay_delivery_failed_total{trigger="shop-orders-0"} 1` + "\n",
		`skiff_relay_dead_lettered_total{trigger="shop-audit-0"} 1` + "\n",
		`skiff_relay_delivery_duration_seconds_bucket{trigger="shop-orders-0",le="0.005"} 1` + "\n",
		`skiff_relay_delivery_duration_seconds_bucket{trigger="shop-orders-0",le="0.05"} 2` + "\n",
		`skiff_relay_delivery_duration_seconds_bucket{trigger="shop-orders-0",le="+Inf"} 3` + "\n",
		`skiff_relay_delivery_duration_seconds_count{trigger="shop-orders-0"} 3` + "\n",
		`skiff_relay_consumer_pending{trigger="shop-orders-0"} 7` + "\n",
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, rec.Body)
		}
	}
	if m.Get(Delivered) != 3 {
		t.Errorf("delivered in all %d", m.Get(Delivered))
	}
	w := m.Window(now, time.Minute)
	o := w["shop-orders-0"]
	if o.Delivered != 3 || o.Failed != 1 || o.Retried != 1 || o.Pending != 7 || o.Latency.Count() != 3 || w["shop-audit-0"].DeadLettered != 1 {
		t.Errorf("window: %+v", w)
	}
	if q := o.Latency.Quantile(0.5); q <= 0.025 || q > 0.05 {
		t.Errorf("median latency %v, want in (0.025, 0.05]", q)
	}
	var none *Metrics
	none.add(Delivered, 1) // counts nothing, does not panic
	none.count(Delivered, "x")
}
