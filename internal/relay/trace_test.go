package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

const (
	knownTrace  = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	knownID     = "4bf92f3577b34da6a3ce929d0e0e4736"
	otherTrace  = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
	otherID     = "0af7651916cd43dd8448eb211c80319c"
	knownState  = "congo=t61rcWkgMzE"
	binaryTrace = "ce-traceparent"
)

func TestParseTraceparent(t *testing.T) {
	for _, tc := range []struct {
		in    string
		ok    bool
		id    string
		flags byte
	}{
		{knownTrace, true, knownID, 1},
		{otherTrace, true, otherID, 0},
		// A later version is read as 00, with what follows ignored.
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-what-comes-next", true, knownID, 1},
		{"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true, knownID, 1},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", false, "", 0},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", false, "", 0},
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false, "", 0},
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false, "", 0},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false, "", 0},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false, "", 0},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", false, "", 0},
		{"00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01", false, "", 0},
		{"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", false, "", 0},
		{"", false, "", 0},
	} {
		tp, ok := ParseTraceparent(tc.in)
		if ok != tc.ok {
			t.Errorf("ParseTraceparent(%q) ok = %v, want %v", tc.in, ok, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		if tp.TraceIDString() != tc.id || tp.Flags != tc.flags {
			t.Errorf("ParseTraceparent(%q) = %s flags %x, want %s flags %x", tc.in, tp.TraceIDString(), tp.Flags, tc.id, tc.flags)
		}
	}
	if tp, _ := ParseTraceparent(knownTrace); tp.String() != knownTrace {
		t.Errorf("String() = %q, want %q back", tp.String(), knownTrace)
	}
}

func TestNewTraceparentAndChild(t *testing.T) {
	a, b := NewTraceparent(), NewTraceparent()
	if a.TraceID == b.TraceID || a.ParentID == b.ParentID {
		t.Errorf("two new traces share an id: %s %s", a, b)
	}
	if _, ok := ParseTraceparent(a.String()); !ok || a.Flags != Sampled {
		t.Errorf("a new traceparent %s does not parse back, or is not sampled", a)
	}
	c := a.Child()
	if c.TraceID != a.TraceID || c.ParentID == a.ParentID {
		t.Errorf("child %s of %s: want the same trace and a new parent", c, a)
	}
}

func TestEnsureTrace(t *testing.T) {
	h := http.Header{"Traceparent": {knownTrace}, "Tracestate": {knownState}}
	if tp, started := EnsureTrace(h); started || tp.TraceIDString() != knownID || h.Get("traceparent") != knownTrace || h.Get("tracestate") != knownState {
		t.Errorf("a valid traceparent: %s started=%v, header %v", tp, started, h)
	}
	for _, h := range []http.Header{{}, {"Traceparent": {"garbage"}, "Tracestate": {knownState}}} {
		tp, started := EnsureTrace(h)
		if !started || h.Get("traceparent") != tp.String() || h.Get("tracestate") != "" {
			t.Errorf("no valid traceparent: %s started=%v, header %v", tp, started, h)
		}
	}
}

// syncBuffer is a log destination the test reads while the relay writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines are the JSON log lines written so far whose msg is msg.
func (s *syncBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		var rec map[string]any
		if l == "" {
			continue
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// The sink stores the trace context as the event's traceparent attribute:
// the request's header in binary mode, the event's attribute in structured
// mode, or a new trace.
func TestSinkStoresTheTraceContext(t *testing.T) {
	js := runNATS(t)
	var logs syncBuffer
	sink := httptest.NewServer(&Sink{Stream: "shop", JS: js, Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Metrics: &Metrics{}})
	defer sink.Close()

	bin := binary("bin", "com.example.order.placed")
	bin["traceparent"], bin["tracestate"] = knownTrace, knownState
	// The HTTP hop's header wins over a ce-traceparent attribute.
	both := binary("both", "com.example.order.placed")
	both["traceparent"], both[binaryTrace] = knownTrace, otherTrace
	attrOnly := binary("attr", "com.example.order.placed")
	attrOnly[binaryTrace] = otherTrace
	structuredCT := map[string]string{"Content-Type": "application/cloudevents+json", "traceparent": knownTrace}
	for _, p := range []struct {
		header map[string]string
		body   string
	}{
		{bin, `{}`},
		{both, `{}`},
		{attrOnly, `{}`},
		{structuredCT, `{"specversion":"1.0","id":"struct","source":"/test","type":"com.example.order.paid","traceparent":"` + otherTrace + `","data":{}}`},
		{map[string]string{"Content-Type": "application/cloudevents+json", "traceparent": knownTrace},
			`{"specversion":"1.0","id":"struct-header","source":"/test","type":"com.example.order.paid","data":{}}`},
		{binary("none", "com.example.order.placed"), `{}`},
	} {
		if code, body := post(t, sink.URL, p.header, p.body); code != http.StatusAccepted {
			t.Fatalf("%v: %d %s", p.header, code, body)
		}
	}
	want := map[string]string{"bin": knownTrace, "both": knownTrace, "attr": otherTrace, "struct": otherTrace, "struct-header": knownTrace}
	s, err := js.Stream(context.Background(), "shop")
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 6; seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := FromMessage(m.Header, m.Data)
		if err != nil {
			t.Fatal(err)
		}
		got := ev.Attrs["traceparent"]
		if w, ok := want[ev.ID()]; ok && got != w {
			t.Errorf("event %s stored with traceparent %q, want %q", ev.ID(), got, w)
		}
		if _, valid := ev.Trace(); !valid {
			t.Errorf("event %s stored with no valid traceparent: %q", ev.ID(), got)
		}
		if ev.ID() == "bin" && ev.Attrs["tracestate"] != knownState {
			t.Errorf("event bin lost its tracestate: %v", ev.Attrs)
		}
		if ev.ID() == "none" && (got == knownTrace || got == otherTrace) {
			t.Errorf("event none got someone else's trace %s", got)
		}
	}
	// A line for each event in a sampled trace (otherTrace is not; the
	// trace started for "none" is, the sink's first of the second).
	var ids []string
	for _, l := range logs.lines(t, "stored") {
		ids = append(ids, l["id"].(string))
		if id := l["id"]; id != "none" && l["trace_id"] != knownID {
			t.Errorf("the stored line of %s has trace_id %v, want %s", id, l["trace_id"], knownID)
		}
	}
	if got, want := strings.Join(ids, " "), "bin both struct-header none"; got != want {
		t.Errorf("stored lines for %s, want %s", got, want)
	}
}

// The dispatcher sends an event's trace context as the traceparent header
// and the ce-traceparent attribute, logs the delivery with its trace id,
// and stores the function's reply in the same trace.
func TestDispatcherCarriesTheTrace(t *testing.T) {
	js := runNATS(t)
	got := make(chan http.Header, 10)
	fn := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		switch r.Header.Get("ce-id") {
		case "traced":
		case "own": // a reply in a trace of its own keeps it
			w.Header().Set("ce-traceparent", otherTrace)
		default:
			return
		}
		w.Header().Set("ce-specversion", "1.0")
		w.Header().Set("ce-id", "reply-"+r.Header.Get("ce-id"))
		w.Header().Set("ce-source", "/thumbs")
		w.Header().Set("ce-type", "com.example.thumb.made")
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`))
	})
	srv := httptest.NewServer(fn)
	defer srv.Close()
	filter, _ := Filter("shop", "com.example.image.uploaded")
	tr := Trigger{Consumer: "thumbs-img", Filter: filter}
	d := Delivery{Retries: 1, Backoff: 50 * time.Millisecond, Timeout: 5 * time.Second}
	if _, err := js.CreateOrUpdateConsumer(context.Background(), "shop", ConsumerConfig(tr, "thumbs", d, 1)); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	disp := &Dispatcher{JS: js, Stream: "shop", Workload: "thumbs", Target: srv.URL, Triggers: []Trigger{tr},
		Delivery: d, Concurrency: 1, Client: &http.Client{}, Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Metrics: &Metrics{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- disp.Run(ctx) }()
	defer func() { cancel(); <-done }()

	traced := &Event{Attrs: map[string]string{"specversion": "1.0", "id": "traced", "source": "/up", "type": "com.example.image.uploaded",
		"traceparent": knownTrace, "tracestate": knownState}}
	untraced := &Event{Attrs: map[string]string{"specversion": "1.0", "id": "untraced", "source": "/up", "type": "com.example.image.uploaded"}}
	own := &Event{Attrs: map[string]string{"specversion": "1.0", "id": "own", "source": "/up", "type": "com.example.image.uploaded",
		"traceparent": knownTrace}}
	for _, ev := range []*Event{traced, untraced, own} {
		if _, err := Publish(context.Background(), js, "shop", ev); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		var h http.Header
		select {
		case h = <-got:
		case <-time.After(20 * time.Second):
			t.Fatal("the function got fewer than 3 deliveries")
		}
		tp, ce := h.Get("traceparent"), h.Get(binaryTrace)
		if tp != ce {
			t.Errorf("delivery %s: traceparent %q and ce-traceparent %q differ", h.Get("ce-id"), tp, ce)
		}
		switch h.Get("ce-id") {
		case "traced":
			if tp != knownTrace || h.Get("tracestate") != knownState {
				t.Errorf("the traced event came with traceparent %q tracestate %q", tp, h.Get("tracestate"))
			}
		case "untraced":
			if _, ok := ParseTraceparent(tp); !ok {
				t.Errorf("an event stored without a trace came with traceparent %q, want a new one", tp)
			}
		}
	}

	replies, err := js.OrderedConsumer(context.Background(), "shop", jetstream.OrderedConsumerConfig{FilterSubjects: []string{"shop.com.example.thumb.made"}})
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]*Event{}
	for range 2 {
		msg, err := replies.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		reply, err := FromMessage(msg.Headers(), msg.Data())
		if err != nil {
			t.Fatal(err)
		}
		stored[reply.ID()] = reply
	}
	if r := stored["reply-traced"]; r == nil || r.Attrs["traceparent"] != knownTrace || r.Attrs["tracestate"] != knownState {
		t.Errorf("the reply was stored with %v, want the delivered event's trace", r)
	}
	if r := stored["reply-own"]; r == nil || r.Attrs["traceparent"] != otherTrace {
		t.Errorf("the reply with a trace of its own was stored with %v, want its own", r)
	}
	// The reply is stored before the delivery's line is written: wait for
	// the acks of all three, then read the lines.
	c, _ := js.Consumer(context.Background(), "shop", "thumbs-img")
	for tick := time.NewTicker(10 * time.Millisecond); ; <-tick.C {
		if info, err := c.Info(context.Background()); err == nil && info.AckFloor.Consumer >= 3 && info.NumAckPending == 0 {
			break
		}
	}
	ids := map[string]string{}
	for _, l := range logs.lines(t, "delivered") {
		ids[l["id"].(string)], _ = l["trace_id"].(string)
	}
	if ids["traced"] != knownID || len(ids["untraced"]) != 32 {
		t.Errorf("delivered lines carry trace ids %v, want traced: %s and untraced: a new one", ids, knownID)
	}
}

func TestNewEventStartsATrace(t *testing.T) {
	a := NewEvent("com.example.tick", "/cron", "1", time.Now(), nil)
	b := NewEvent("com.example.tick", "/cron", "2", time.Now(), nil)
	if a.TraceID() == "" || a.TraceID() == b.TraceID() {
		t.Errorf("two new events: trace ids %q and %q, want two valid different ones", a.TraceID(), b.TraceID())
	}
	if err := a.Validate(); err != nil {
		t.Error(err)
	}
}

// BenchmarkDeliveryTrace is what tracing adds to a delivery: give an event
// without one a trace, put it on the request, and write the delivered line
// (JSON, as skiff-relay logs).
func BenchmarkDeliveryTrace(b *testing.B) {
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	h := http.Header{}
	for b.Loop() {
		ev := &Event{Attrs: map[string]string{"specversion": "1.0", "id": "1", "source": "/b", "type": "com.example.b"}}
		ev.carryTrace(http.Header{}, false, nil, nil)
		ev.writeTrace(h)
		logger.Info("delivered", "id", ev.ID(), "type", ev.Type(), "consumer", "c", "attempt", uint64(1),
			"status", 200, "duration_ms", 0.25, "trace_id", ev.TraceID())
	}
}
