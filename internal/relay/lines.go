package relay

import (
	"sync"
	"time"
)

// DeliveredLinesPerSecond bounds the "delivered" lines a Dispatcher logs
// in a second. Under load a line for every event is a cost of its own:
// the container runtime reads, stamps and stores each line (on the test
// cluster, containerd and its shim took about 30% of the CPU a burst of
// events used, for the relay's line and the handler's two per event). The
// deliveries past the bound are counted in one line instead. An event
// delivered after a retry, and every failure, is logged anyway.
const DeliveredLinesPerSecond = 20

// lineBudget allows perSecond lines in each second of the clock and counts
// those it did not allow. The zero lineBudget allows
// DeliveredLinesPerSecond.
type lineBudget struct {
	perSecond int

	mu      sync.Mutex
	second  int64 // the Unix second of used
	used    int
	skipped int       // not allowed since the last report
	since   time.Time // the first of them
}

// take reports whether a line may be logged at now.
func (b *lineBudget) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	per := b.perSecond
	if per <= 0 {
		per = DeliveredLinesPerSecond
	}
	if s := now.Unix(); s != b.second {
		b.second, b.used = s, 0
	}
	if b.used < per {
		b.used++
		return true
	}
	if b.skipped == 0 {
		b.since = now
	}
	b.skipped++
	return false
}

// report returns how many lines were not allowed since the last report,
// and since when.
func (b *lineBudget) report() (int, time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, since := b.skipped, b.since
	b.skipped = 0
	return n, since
}
