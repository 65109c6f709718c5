package relay

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

func TestSampler(t *testing.T) {
	var s sampler
	at := time.Unix(1000, 0)
	for i := range 5 {
		if got, want := s.sample(at, 3), i < 3; got != want {
			t.Errorf("trace %d at once: %v, want %v", i+1, got, want)
		}
	}
	// A third of a second later one more is allowed, and only one.
	if !s.sample(at.Add(time.Second/3+time.Millisecond), 3) || s.sample(at.Add(time.Second/3+2*time.Millisecond), 3) {
		t.Error("a third of a second later: want one trace sampled, then none")
	}
	// A quiet minute fills the bucket, no more.
	later := at.Add(time.Minute)
	n := 0
	for range 10 {
		if s.sample(later, 3) {
			n++
		}
	}
	if n != 3 {
		t.Errorf("after a quiet minute %d of 10 traces sampled, want 3", n)
	}
	// A clock that goes back does not fill it.
	if s.sample(at, 3) {
		t.Error("a trace at an earlier time was sampled from an empty bucket")
	}
	var zero sampler
	for i := range TracesPerSecond + 1 {
		if got := zero.sample(at, 0); got != (i < TracesPerSecond) {
			t.Fatalf("the default, trace %d: %v", i+1, got)
		}
	}
}

// The dispatcher logs a "delivered" line for an event whose trace is
// sampled, for one delivered after a retry, and for at most
// TracesPerSecond a second of the events it starts a trace for; none for
// an event in an unsampled trace. A failure is always logged.
func TestDispatcherLogsSampledDeliveries(t *testing.T) {
	js := runNATS(t)
	fn := newFunction(func(id string, n int) int {
		if id == "unsampled-flaky" && n == 1 {
			return 500
		}
		return 0
	})
	srv := httptest.NewServer(fn)
	defer srv.Close()
	filter, _ := Filter("shop", "com.example.image.uploaded")
	tr := Trigger{Consumer: "thumbs-img", Filter: filter}
	d := Delivery{Retries: 1, Backoff: 50 * time.Millisecond, Timeout: 5 * time.Second}
	if _, err := js.CreateOrUpdateConsumer(context.Background(), "shop", ConsumerConfig(tr, "thumbs", d, 8)); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	disp := &Dispatcher{JS: js, Stream: "shop", Workload: "thumbs", Target: srv.URL, Triggers: []Trigger{tr}, TracesPerSecond: 2,
		Delivery: d, Concurrency: 8, Client: HandlerClient(8), Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Metrics: &Metrics{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- disp.Run(ctx) }()

	const untraced = 100
	store := func(id, traceparent string) {
		ev := &Event{Attrs: map[string]string{"specversion": "1.0", "id": id, "source": "/up", "type": "com.example.image.uploaded"}}
		if traceparent != "" {
			ev.Attrs["traceparent"] = traceparent
		}
		if _, err := Publish(context.Background(), js, "shop", ev); err != nil {
			t.Fatal(err)
		}
	}
	store("sampled", knownTrace)
	store("unsampled", otherTrace)
	store("unsampled-flaky", otherTrace)
	for i := range untraced {
		store("untraced-"+strconv.Itoa(i), "")
	}
	fn.wait(t, untraced+3)
	waitAcked(t, js, tr.Consumer)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	seconds := time.Since(start).Seconds()

	lines := map[string]bool{}
	started := 0
	for _, l := range logs.lines(t, "delivered") {
		id := l["id"].(string)
		lines[id] = true
		if len(id) > 9 && id[:9] == "untraced-" {
			started++
		}
	}
	if !lines["sampled"] || lines["unsampled"] || !lines["unsampled-flaky"] {
		t.Errorf("delivered lines for %v, want sampled and unsampled-flaky (a retry), not unsampled", lines)
	}
	if max := 2 + int(2*seconds) + 1; started < 1 || started > max {
		t.Errorf("%d delivered lines for %d events without a trace in %.1fs, want 1 to %d", started, untraced, seconds, max)
	}
	if failed := logs.lines(t, "delivery failed; retrying"); len(failed) != 1 || failed[0]["trace_id"] != otherID {
		t.Errorf("failure lines: %v, want one for unsampled-flaky", failed)
	}
}
