package relayplan

import (
	"strings"
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/relay"
)

func retries(n int) *int { return &n }

func TestFor(t *testing.T) {
	p := &project.Project{Name: "shop", Events: &project.Events{Bus: "nats://nats:4222"}}
	w := &project.Workload{Name: "thumbs", Triggers: []project.Trigger{
		{Event: "com.example.image.uploaded", Source: "/uploads"},
		{Event: "com.example.*"},
		{Schedule: "*/5 * * * *", TimeZone: "Europe/Berlin"},
	}, Delivery: &project.Delivery{Retries: retries(5), Backoff: "250ms"}}
	pl, err := For(p, w)
	if err != nil {
		t.Fatal(err)
	}
	if pl.Stream != "shop" || len(pl.Triggers) != 3 || len(pl.Schedules) != 1 {
		t.Fatalf("plan: %+v", pl)
	}
	if d := pl.Delivery; d.Retries != 5 || d.Backoff != 250*time.Millisecond || d.Timeout != relay.DefaultTimeout {
		t.Errorf("delivery = %+v, want 5 retries, 250ms backoff, the default timeout", d)
	}
	if f := pl.Triggers[0]; f.Filter != "shop.com.example.image.uploaded" || f.Source != "/uploads" {
		t.Errorf("first trigger: %+v", f)
	}
	if f := pl.Triggers[1]; f.Filter != "shop.com.example.>" {
		t.Errorf("prefix trigger: %+v", f)
	}
	s := pl.Schedules[0]
	if pl.Triggers[2].Filter != s.Subject || !strings.HasPrefix(s.Subject, "shop.dev.skiff.schedule.thumbs.") {
		t.Errorf("the schedule's consumer reads %s, its CronJob publishes on %s", pl.Triggers[2].Filter, s.Subject)
	}
	names := map[string]bool{}
	for _, tr := range pl.Triggers {
		if names[tr.Consumer] || !strings.HasPrefix(tr.Consumer, "thumbs-") || strings.ContainsAny(tr.Consumer, ".*> ") {
			t.Errorf("consumer name %q: not unique or not a durable name", tr.Consumer)
		}
		names[tr.Consumer] = true
	}

	// Reordered, the same triggers keep their consumers; a changed one
	// gets a new one.
	w2 := *w
	w2.Triggers = []project.Trigger{w.Triggers[2], {Event: "com.example.image.uploaded", Source: "/other"}, w.Triggers[1]}
	pl2, _ := For(p, &w2)
	if pl2.Triggers[0].Consumer != pl.Triggers[2].Consumer || pl2.Triggers[2].Consumer != pl.Triggers[1].Consumer {
		t.Errorf("reordering renamed consumers: %v then %v", pl.Triggers, pl2.Triggers)
	}
	if names[pl2.Triggers[1].Consumer] {
		t.Errorf("a trigger with another source kept the consumer %s", pl2.Triggers[1].Consumer)
	}
	if pl2.Schedules[0].Name != s.Name || len(s.Name) > 52 {
		t.Errorf("CronJob names %q, %q: want equal, at most 52 characters", s.Name, pl2.Schedules[0].Name)
	}
}

func TestForNamesTheWorkloadOfATypeThatDoesNotRoute(t *testing.T) {
	p := &project.Project{Name: "shop", Events: &project.Events{Bus: "nats://nats:4222"}}
	w := &project.Workload{Name: "thumbs", Triggers: []project.Trigger{{Event: "com.example..uploaded"}}}
	_, err := For(p, w)
	if err == nil || !strings.HasPrefix(err.Error(), "thumbs: ") || !strings.Contains(err.Error(), "empty part") {
		t.Errorf("For = %v, want an error naming thumbs and the empty part", err)
	}
}

func TestStreamAndDeliveryDefaults(t *testing.T) {
	p := &project.Project{Name: "shop", Events: &project.Events{Bus: "nats://nats:4222"}}
	if s := Stream(p); s != "shop" {
		t.Errorf("Stream without events.stream = %q, want the project's name", s)
	}
	p.Events.Stream = "orders"
	if s := Stream(p); s != "orders" {
		t.Errorf("Stream = %q, want events.stream", s)
	}
	if d := Delivery(&project.Workload{Name: "a"}); d != relay.DefaultDelivery() {
		t.Errorf("Delivery without delivery = %+v, want the defaults", d)
	}
	// Retries 0 is kept; a backoff that does not parse is the default.
	d := Delivery(&project.Workload{Name: "a", Delivery: &project.Delivery{Retries: retries(0), Backoff: "soon", Timeout: "2s"}})
	if d.Retries != 0 || d.Backoff != relay.DefaultBackoff || d.Timeout != 2*time.Second || d.Concurrency != relay.DefaultConcurrency {
		t.Errorf("Delivery = %+v, want 0 retries, the default backoff, 2s, the default concurrency", d)
	}
	one := 1
	if d := Delivery(&project.Workload{Name: "a", Delivery: &project.Delivery{Concurrency: &one}}); d.Concurrency != 1 {
		t.Errorf("Delivery with concurrency 1 = %+v", d)
	}
}
