package stats

import (
	"sync"
	"time"
)

// A Ring keeps the last RingSpan of figures in Slot-long slots, so that a
// window of any length up to RingSpan can be read to within one slot.
const (
	Slot     = 10 * time.Second
	RingSpan = 15 * time.Minute
	nSlots   = int(RingSpan / Slot)
)

// Ring is the figures of the last RingSpan, in slots of Slot, each slot a
// Window: skiff-relay keeps one per pod and serves it on /stats. It is
// safe for concurrent use; the zero Ring is empty.
type Ring struct {
	mu    sync.Mutex
	slots [nSlots]Window
}

// Record lets add change the slot of now (cleared first when it held an
// older slot's figures). add runs under the ring's lock: keep it short.
func (r *Ring) Record(now time.Time, add func(*Window)) {
	start := now.Truncate(Slot)
	i := int(start.Unix()/int64(Slot/time.Second)) % nSlots
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &r.slots[i]
	if !s.Start.Equal(start) {
		clear(s.Duration.Counts) // kept: a request is recorded without allocating
		clear(s.ColdStartWait.Counts)
		*s = Window{Start: start, End: start.Add(Slot), Pods: 1,
			Duration:      Histogram{Bounds: s.Duration.Bounds, Counts: s.Duration.Counts},
			ColdStartWait: Histogram{Bounds: s.ColdStartWait.Bounds, Counts: s.ColdStartWait.Counts}}
	}
	add(s)
}

// Window merges the slots of the last d (at most RingSpan) up to now:
// every slot that began at or after now-d, rounded down to a slot. The
// result's Start is that rounded time, also when the ring holds nothing
// so old (a pod younger than d), so a rate is over the window asked for;
// End is now. InFlight and the triggers' Pending are the caller's to set.
func (r *Ring) Window(now time.Time, d time.Duration) Window {
	d = min(max(d, Slot), RingSpan)
	from := now.Add(-d).Truncate(Slot)
	w := Window{Start: from, End: now}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.slots {
		if s.Start.IsZero() || s.Start.Before(from) || s.Start.After(now) {
			continue
		}
		s.Start, s.End = from, now
		w.Merge(s) // copies the histograms: nothing of the slots escapes
	}
	w.Pods = 1
	return w
}
