package relay

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skiffdev/skiff/internal/stats"
)

// Counter is one thing the relay counts.
type Counter int

const (
	Published     Counter = iota // events the sink stored
	PublishFailed                // events the sink could not store
	Delivered                    // events the function answered 2xx
	Failed                       // delivery attempts the function did not answer 2xx in time
	Retried                      // failed deliveries to be retried
	DeadLettered                 // events moved to the dead letters
	Skipped                      // events of another source than the trigger's, acked
	Replied                      // reply events of the function stored
	nCounters
)

var counters = [nCounters]struct {
	name, help string
	trigger    bool // counted per trigger
}{
	{"skiff_relay_published_total", "Events the sink stored in JetStream.", false},
	{"skiff_relay_publish_failed_total", "Events the sink could not store.", false},
	{"skiff_relay_delivered_total", "Events the function answered 2xx, by trigger.", true},
	{"skiff_relay_delivery_failed_total", "Delivery attempts the function did not answer 2xx in time, by trigger.", true},
	{"skiff_relay_retried_total", "Failed deliveries that will be retried, by trigger.", true},
	{"skiff_relay_dead_lettered_total", "Events moved to the dead-letter subject, by trigger.", true},
	{"skiff_relay_skipped_total", "Events acked without delivery (another source than the trigger's), by trigger.", true},
	{"skiff_relay_replied_total", "Reply events of the function stored in JetStream, by trigger.", true},
}

// The per-trigger series besides the counters.
const (
	LatencyName = "skiff_relay_delivery_duration_seconds"
	PendingName = "skiff_relay_consumer_pending"
)

// LatencyBounds are the buckets of a delivery's latency, in seconds: the
// proxy's request buckets, and longer ones for events that waited on
// retries or a consumer's lag.
func LatencyBounds() []float64 {
	return append(stats.Bounds(), 30, 60, 120, 300, 600)
}

var latencyBounds = LatencyBounds()

// Metrics count what the relay did, in total and per trigger (by its
// consumer's name): Write gives them in Prometheus' text format, Window
// the triggers' figures of a recent window. The zero Metrics is ready to
// use; a nil *Metrics counts nothing.
type Metrics struct {
	c    [nCounters]atomic.Int64
	ring stats.Ring

	mu       sync.Mutex
	triggers map[string]*triggerMetrics
}

// triggerMetrics are one trigger's cumulative figures.
type triggerMetrics struct {
	c       [nCounters]int64
	latency []uint64 // per bucket of latencyBounds, and above them
	sum     float64
	pending int64
}

func (m *Metrics) add(c Counter, n int64) {
	if m != nil {
		m.c[c].Add(n)
	}
}

// count counts one c of trigger.
func (m *Metrics) count(c Counter, trigger string) {
	m.observe(c, trigger, 0, time.Now())
}

// observe counts one c of trigger; a delivered event took latency from
// being stored to the function's answer.
func (m *Metrics) observe(c Counter, trigger string, latency time.Duration, now time.Time) {
	if m == nil {
		return
	}
	m.c[c].Add(1)
	secs := latency.Seconds()
	m.mu.Lock()
	t := m.trigger(trigger)
	t.c[c]++
	if c == Delivered {
		i, _ := slices.BinarySearch(latencyBounds, secs)
		t.latency[i]++
		t.sum += secs
	}
	m.mu.Unlock()
	m.ring.Record(now, func(w *stats.Window) {
		if w.Triggers == nil {
			w.Triggers = map[string]stats.Trigger{}
		}
		st := w.Triggers[trigger]
		switch c {
		case Delivered:
			st.Delivered++
			if st.Latency.Counts == nil {
				st.Latency = stats.Histogram{Bounds: latencyBounds, Counts: make([]int64, len(latencyBounds)+1)}
			}
			i, _ := slices.BinarySearch(latencyBounds, secs)
			st.Latency.Counts[i]++
			st.Latency.Sum += secs
		case Failed:
			st.Failed++
		case Retried:
			st.Retried++
		case DeadLettered:
			st.DeadLettered++
		}
		w.Triggers[trigger] = st
	})
}

// trigger returns name's figures; m.mu is held.
func (m *Metrics) trigger(name string) *triggerMetrics {
	if m.triggers == nil {
		m.triggers = map[string]*triggerMetrics{}
	}
	t := m.triggers[name]
	if t == nil {
		t = &triggerMetrics{latency: make([]uint64, len(latencyBounds)+1)}
		m.triggers[name] = t
	}
	return t
}

// SetPending records the events of trigger's consumer not yet delivered.
func (m *Metrics) SetPending(trigger string, n int64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.trigger(trigger).pending = n
	m.mu.Unlock()
}

// Get returns the count of c, over every trigger.
func (m *Metrics) Get(c Counter) int64 { return m.c[c].Load() }

// Window is the triggers' figures of the last d up to now (at most
// stats.RingSpan), their Pending the last reading; nil without triggers.
func (m *Metrics) Window(now time.Time, d time.Duration) map[string]stats.Trigger {
	if m == nil {
		return nil
	}
	out := m.ring.Window(now, d).Triggers
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, t := range m.triggers {
		if out == nil {
			out = map[string]stats.Trigger{}
		}
		st := out[name]
		st.Pending = t.pending
		out[name] = st
	}
	return out
}

// Write writes the metrics in Prometheus' text format (version 0.0.4).
func (m *Metrics) Write(out io.Writer) error {
	w := bufio.NewWriter(out)
	m.mu.Lock()
	defer m.mu.Unlock()
	names := slices.Sorted(maps.Keys(m.triggers))
	for i, c := range counters {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", c.name, c.help, c.name)
		if !c.trigger {
			fmt.Fprintf(w, "%s %d\n", c.name, m.c[i].Load())
			continue
		}
		for _, name := range names {
			fmt.Fprintf(w, "%s{trigger=%q} %d\n", c.name, name, m.triggers[name].c[i])
		}
	}
	fmt.Fprintf(w, "# HELP %s From an event being stored to the function's 2xx answer, by trigger.\n# TYPE %s histogram\n", LatencyName, LatencyName)
	for _, name := range names {
		t := m.triggers[name]
		var cum uint64
		for i, b := range latencyBounds {
			cum += t.latency[i]
			fmt.Fprintf(w, "%s_bucket{trigger=%q,le=\"%s\"} %d\n", LatencyName, name, strconv.FormatFloat(b, 'g', -1, 64), cum)
		}
		cum += t.latency[len(latencyBounds)]
		fmt.Fprintf(w, "%s_bucket{trigger=%q,le=\"+Inf\"} %d\n%s_sum{trigger=%q} %s\n%s_count{trigger=%q} %d\n", LatencyName, name, cum,
			LatencyName, name, strconv.FormatFloat(t.sum, 'g', -1, 64), LatencyName, name, cum)
	}
	fmt.Fprintf(w, "# HELP %s Events of the trigger's consumer not yet delivered (its lag), as last read.\n# TYPE %s gauge\n", PendingName, PendingName)
	for _, name := range names {
		fmt.Fprintf(w, "%s{trigger=%q} %d\n", PendingName, name, m.triggers[name].pending)
	}
	return w.Flush()
}

func (m *Metrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	m.Write(w)
}
