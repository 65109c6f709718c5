package relay

import (
	"fmt"
	"net/http"
	"sync/atomic"
)

// Counter is one thing the relay counts.
type Counter int

const (
	Published     Counter = iota // events the sink stored
	PublishFailed                // events the sink could not store
	Delivered                    // events the function answered 2xx
	Retried                      // failed deliveries to be retried
	DeadLettered                 // events moved to the dead letters
	Skipped                      // events of another source than the trigger's, acked
	Replied                      // reply events of the function stored
	nCounters
)

var counters = [nCounters]struct{ name, help string }{
	{"skiff_relay_published_total", "Events the sink stored in JetStream."},
	{"skiff_relay_publish_failed_total", "Events the sink could not store."},
	{"skiff_relay_delivered_total", "Events the function answered 2xx."},
	{"skiff_relay_retried_total", "Failed deliveries that will be retried."},
	{"skiff_relay_dead_lettered_total", "Events moved to the dead-letter subject."},
	{"skiff_relay_skipped_total", "Events acked without delivery: another source than the trigger's."},
	{"skiff_relay_replied_total", "Reply events of the function stored in JetStream."},
}

// Metrics count what the relay did; ServeHTTP writes them in Prometheus'
// text format. A nil *Metrics counts nothing.
type Metrics struct {
	c [nCounters]atomic.Int64
}

func (m *Metrics) add(c Counter, n int64) {
	if m != nil {
		m.c[c].Add(n)
	}
}

// Get returns the count of c.
func (m *Metrics) Get(c Counter) int64 { return m.c[c].Load() }

func (m *Metrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	for i, c := range counters {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", c.name, c.help, c.name, c.name, m.c[i].Load())
	}
}
