package stats

import (
	"testing"
	"time"
)

func TestRingWindow(t *testing.T) {
	var r Ring
	t0 := time.Unix(1_800_000_000, 0) // a slot boundary
	req := func(at time.Time, secs float64, failed bool) {
		r.Record(at, func(w *Window) {
			w.Requests++
			if failed {
				w.Errors++
			}
			if w.Duration.Counts == nil {
				w.Duration = Histogram{Bounds: Bounds(), Counts: make([]int64, len(Bounds())+1)}
			}
			w.Duration.Counts[0]++
			w.Duration.Sum += secs
		})
	}
	req(t0, 0.1, false)
	req(t0.Add(3*time.Second), 0.1, true)
	req(t0.Add(65*time.Second), 0.1, false)
	req(t0.Add(5*time.Minute), 0.1, false)
	now := t0.Add(5*time.Minute + 2*time.Second)

	w := r.Window(now, time.Minute)
	if w.Requests != 1 || w.Errors != 0 || !w.Start.Equal(t0.Add(4*time.Minute)) || !w.End.Equal(now) || w.Pods != 1 {
		t.Errorf("last minute: %+v", w)
	}
	w = r.Window(now, 5*time.Minute)
	// From t0+2s rounded down: every request.
	if w.Requests != 4 || w.Errors != 1 || w.Duration.Count() != 4 {
		t.Errorf("last 5 minutes: %+v", w)
	}
	// 15 minutes on, t0's slot is reused: its old figures are gone.
	later := t0.Add(RingSpan)
	req(later, 0.2, false)
	w = r.Window(later, RingSpan)
	if w.Requests != 3 || w.Errors != 0 {
		t.Errorf("after a lap: %+v", w)
	}
	// The window never reaches beyond the ring.
	if w := r.Window(later, time.Hour); !w.Start.Equal(later.Add(-RingSpan)) {
		t.Errorf("an hour is capped at %v: start %v", RingSpan, w.Start)
	}
	// What Window returns is a copy.
	w = r.Window(later, time.Minute)
	w.Duration.Counts[0] = 99
	if r.Window(later, time.Minute).Duration.Counts[0] != 1 {
		t.Error("the window shares the ring's storage")
	}
}
