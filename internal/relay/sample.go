package relay

import (
	"sync"
	"time"
)

// TracesPerSecond bounds the traces a relay hop (its sink, its
// dispatcher) starts sampled in a second: the traces of events that came
// without one. An event whose trace is sampled gets a log line at each
// hop ("stored", "delivered", and the template's "request"), which
// `skiff logs --trace` follows; the others get none unless something
// failed. A line for every event is a cost of its own under load: the
// container runtime reads, stamps and stores each line (on the test
// cluster containerd and its shim took about 46% of a core during a burst
// of events, for three lines an event).
const TracesPerSecond = 20

// sampler decides whether a trace started here is sampled: a token bucket
// of perSecond tokens that fills at perSecond a second.
type sampler struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time // when tokens was last filled; zero: never
}

// sample reports whether a trace started at now is sampled, with at
// most perSecond a second (0: TracesPerSecond).
func (s *sampler) sample(now time.Time, perSecond int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	per := float64(perSecond)
	if per <= 0 {
		per = TracesPerSecond
	}
	switch {
	case s.last.IsZero():
		s.tokens, s.last = per, now
	case now.After(s.last):
		s.tokens = min(per, s.tokens+now.Sub(s.last).Seconds()*per)
		s.last = now
	}
	if s.tokens >= 1 {
		s.tokens--
		return true
	}
	return false
}
