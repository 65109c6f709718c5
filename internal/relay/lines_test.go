package relay

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

func TestLineBudget(t *testing.T) {
	b := &lineBudget{perSecond: 3}
	at := time.Unix(1000, 0)
	for i := range 5 {
		if got, want := b.take(at.Add(time.Duration(i)*time.Millisecond)), i < 3; got != want {
			t.Errorf("line %d in the first second: %v, want %v", i+1, got, want)
		}
	}
	if n, since := b.report(); n != 2 || !since.Equal(at.Add(3*time.Millisecond)) {
		t.Errorf("report = %d since %s, want 2 since the 4th line", n, since)
	}
	if n, _ := b.report(); n != 0 {
		t.Errorf("a second report = %d, want 0", n)
	}
	// The next second has its own budget.
	if !b.take(at.Add(time.Second)) {
		t.Error("the next second's first line was not allowed")
	}
	var zero lineBudget
	for i := range DeliveredLinesPerSecond + 1 {
		if got := zero.take(at); got != (i < DeliveredLinesPerSecond) {
			t.Fatalf("the zero budget, line %d: %v", i+1, got)
		}
	}
}

// Under a burst, the relay logs at most DeliveredLinesPerSecond
// "delivered" lines a second, and counts the other deliveries.
func TestDispatcherLogsDeliveriesWithinItsBudget(t *testing.T) {
	js := runNATS(t)
	fn := newFunction(nil)
	srv := httptest.NewServer(fn)
	defer srv.Close()
	filter, _ := Filter("shop", "com.example.image.uploaded")
	tr := Trigger{Consumer: "thumbs-img", Filter: filter}
	d := Delivery{Retries: 1, Backoff: 50 * time.Millisecond, Timeout: 5 * time.Second}
	if _, err := js.CreateOrUpdateConsumer(context.Background(), "shop", ConsumerConfig(tr, "thumbs", d, 8)); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	disp := &Dispatcher{JS: js, Stream: "shop", Workload: "thumbs", Target: srv.URL, Triggers: []Trigger{tr},
		Delivery: d, Concurrency: 8, Client: HandlerClient(8), Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Metrics: &Metrics{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- disp.Run(ctx) }()
	const n = 300
	for i := range n {
		publish(t, js, strconv.Itoa(i), "/uploads", "com.example.image.uploaded")
	}
	fn.wait(t, n)
	waitAcked(t, js, tr.Consumer)
	cancel() // Run logs the deliveries not yet counted before it returns
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The burst touched at most this many seconds of the clock.
	seconds := int(time.Since(start).Seconds()) + 2
	lines := logs.lines(t, "delivered")
	counted := 0
	for _, l := range logs.lines(t, "delivered without a line each") {
		counted += int(l["events"].(float64))
	}
	if len(lines)+counted != n {
		t.Errorf("%d delivered lines and %d deliveries counted, want %d in all", len(lines), counted, n)
	}
	if len(lines) > seconds*DeliveredLinesPerSecond {
		t.Errorf("%d delivered lines in under %d s, want at most %d a second", len(lines), seconds, DeliveredLinesPerSecond)
	}
	if counted == 0 && seconds*DeliveredLinesPerSecond < n {
		t.Error("no delivery was counted instead of logged")
	}
}
