package event

import (
	"errors"
	"testing"
	"time"
)

func TestStateFoldsEachWorkload(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	events := []Event{
		{Time: at(0), Kind: BuildStarted, Workload: "orders"},
		{Time: at(1), Kind: Reused, Workload: "orders"},
		{Time: at(1), Kind: Notice, Workload: "orders", Message: "namespace shop created"},
		{Time: at(2), Kind: BuildStarted, Workload: "payments"},
		{Time: at(3), Kind: DeployStarted, Workload: "orders", Image: "reg/orders@sha256:1"},
		{Time: at(9), Kind: Failed, Phase: PhaseWait, Workload: "orders", Duration: 6 * time.Second, Err: errors.New("CrashLoopBackOff")},
		{Time: at(9), Kind: Log, Workload: "payments", Message: "listening"},
		{Time: at(10), Kind: Built, Workload: "payments", Duration: 8 * time.Second},
		{Time: at(11), Kind: RollbackStarted, Workload: "orders"},
	}
	s := Fold(events...)
	if got := s.Names(); len(got) != 2 || got[0] != "orders" || got[1] != "payments" {
		t.Fatalf("names = %v", got)
	}
	o, ok := s.Workload("orders")
	if !ok {
		t.Fatal("no orders")
	}
	// Still rolling back: the failure stays until a step succeeds.
	if o.Kind != RollbackStarted || o.Phase != PhaseRollback || o.Status != "started" || !o.Since.Equal(at(11)) {
		t.Errorf("orders = %+v", o)
	}
	if o.Error != "CrashLoopBackOff" || o.Took != 6*time.Second || o.Image != "reg/orders@sha256:1" {
		t.Errorf("orders = %+v", o)
	}
	if o.Steps[PhaseBuild] != "reused" || o.Steps[PhaseWait] != "failed" {
		t.Errorf("orders steps = %v", o.Steps)
	}
	s.Apply(Event{Time: at(20), Kind: RolledBack, Workload: "orders", Revision: 3, Duration: 9 * time.Second})
	o, _ = s.Workload("orders")
	if o.Error != "" || o.Revision != 3 || o.Status != "succeeded" || o.Took != 9*time.Second {
		t.Errorf("orders after the rollback = %+v", o)
	}
	p, _ := s.Workload("payments")
	if p.Kind != Built || p.Took != 8*time.Second || p.Error != "" {
		t.Errorf("payments = %+v (a log line changes no state)", p)
	}
	if _, ok := s.Workload("front"); ok {
		t.Error("a workload with no events has a state")
	}
}

// A renderer that starts late, given the events so far, sees what one
// that saw them all as they came sees; what it reads is its own copy.
func TestLateRendererSeesTheSameState(t *testing.T) {
	events := []Event{
		{Kind: Watching, Workload: "web", URL: "http://127.0.0.1:18080"},
		{Kind: CycleStarted, Workload: "web"},
		{Kind: Failed, Phase: PhaseCycle, Workload: "web", Error: "compile error"},
		{Kind: CycleStarted, Workload: "web"},
	}
	live := &State{}
	for _, ev := range events {
		live.Apply(ev)
	}
	late := Fold(events...)
	a, b := live.Workloads(), late.Workloads()
	if len(a) != 1 || len(b) != 1 || a[0].URL != b[0].URL || a[0].Error != b[0].Error || a[0].Kind != b[0].Kind {
		t.Fatalf("live %+v, late %+v", a, b)
	}
	if b[0].URL != "http://127.0.0.1:18080" || b[0].Error != "compile error" || b[0].Kind != CycleStarted {
		t.Errorf("late = %+v", b[0])
	}
	b[0].Steps[PhaseCycle] = "changed by the reader"
	if w, _ := late.Workload("web"); w.Steps[PhaseCycle] != "started" {
		t.Errorf("a reader changed the fold: %v", w.Steps)
	}
}
