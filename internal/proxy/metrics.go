package proxy

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skiffdev/skiff/internal/stats"
)

// The series the proxy exposes, named after OpenTelemetry's HTTP server
// semantic conventions (http.server.request.duration,
// http.server.active_requests) as Prometheus spells them.
const (
	DurationName   = "http_server_request_duration_seconds"
	ActiveName     = "http_server_active_requests"
	ColdStartsName = "skiff_cold_starts_total"
	ColdWaitName   = "skiff_cold_start_wait_seconds"
)

// ColdWaitBounds are the buckets of a cold start's wait, in seconds: from
// a pod that was quick to start to one that pulled a large image.
func ColdWaitBounds() []float64 {
	return []float64{0.25, 0.5, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 30, 60, 120}
}

// Metrics are what a proxy measured: cumulative series for Prometheus
// (Write) and the ring of the last stats.RingSpan for /stats (Window).
// The zero Metrics is ready to use; a nil *Metrics records nothing.
type Metrics struct {
	active atomic.Int64
	ring   stats.Ring

	mu       sync.Mutex
	series   map[seriesKey]*hist
	cold     hist
	coldSeen bool
}

type seriesKey struct {
	method string
	status int
}

// hist is a cumulative histogram: counts[i] observations in bucket i (not
// cumulative; Write adds them up as Prometheus' le buckets are).
type hist struct {
	counts []uint64
	sum    float64
}

func (h *hist) observe(bounds []float64, v float64) {
	if h.counts == nil {
		h.counts = make([]uint64, len(bounds)+1)
	}
	i, _ := slices.BinarySearch(bounds, v)
	h.counts[i]++
	h.sum += v
}

// NewMetrics returns empty Metrics.
func NewMetrics() *Metrics {
	return &Metrics{series: map[seriesKey]*hist{}}
}

var durationBounds = stats.Bounds()
var coldBounds = ColdWaitBounds()

// method is m when it is one of the nine HTTP methods, recorded by name;
// any other is _OTHER, as the semantic conventions say (a caller cannot
// grow the series).
func method(m string) string {
	switch m {
	case "CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE":
		return m
	}
	return "_OTHER"
}

func (m *Metrics) begin() {
	if m != nil {
		m.active.Add(1)
	}
}

// end records a request answered with status after d.
func (m *Metrics) end(meth string, status int, d time.Duration, now time.Time) {
	if m == nil {
		return
	}
	m.active.Add(-1)
	secs := d.Seconds()
	k := seriesKey{method(meth), status}
	m.mu.Lock()
	h := m.series[k]
	if h == nil {
		if m.series == nil {
			m.series = map[seriesKey]*hist{}
		}
		h = &hist{}
		m.series[k] = h
	}
	h.observe(durationBounds, secs)
	m.mu.Unlock()
	m.ring.Record(now, func(w *stats.Window) {
		w.Requests++
		if status >= 500 && status != StatusClientClosed {
			w.Errors++
		}
		observe(&w.Duration, durationBounds, secs)
	})
}

// coldStart records the pod's first answer, wait after it started.
func (m *Metrics) coldStart(wait time.Duration, now time.Time) {
	if m == nil {
		return
	}
	secs := wait.Seconds()
	m.mu.Lock()
	m.cold.observe(coldBounds, secs)
	m.coldSeen = true
	m.mu.Unlock()
	m.ring.Record(now, func(w *stats.Window) {
		w.ColdStarts++
		observe(&w.ColdStartWait, coldBounds, secs)
	})
}

func observe(h *stats.Histogram, bounds []float64, v float64) {
	if h.Counts == nil {
		h.Bounds, h.Counts = bounds, make([]int64, len(bounds)+1)
	}
	i, _ := slices.BinarySearch(bounds, v)
	h.Counts[i]++
	h.Sum += v
}

// Active is the number of requests in flight.
func (m *Metrics) Active() int64 { return m.active.Load() }

// Window is what the proxy served in the last d up to now (at most
// stats.RingSpan), with the requests in flight now.
func (m *Metrics) Window(now time.Time, d time.Duration) stats.Window {
	w := m.ring.Window(now, d)
	w.InFlight = m.active.Load()
	// An idle window still says its buckets: readers merge it as it is.
	if w.Duration.Counts == nil {
		w.Duration = stats.Histogram{Bounds: stats.Bounds(), Counts: make([]int64, len(durationBounds)+1)}
	}
	return w
}

// Write writes the series in Prometheus' text format (version 0.0.4).
func (m *Metrics) Write(out io.Writer) error {
	w := bufio.NewWriter(out)
	m.mu.Lock()
	keys := make([]seriesKey, 0, len(m.series))
	for k := range m.series {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b seriesKey) int {
		if a.method != b.method {
			if a.method < b.method {
				return -1
			}
			return 1
		}
		return a.status - b.status
	})
	fmt.Fprintf(w, "# HELP %s Duration of HTTP server requests, from the proxy receiving the request to the last byte of the answer.\n# TYPE %s histogram\n", DurationName, DurationName)
	for _, k := range keys {
		labels := `http_request_method="` + k.method + `",http_response_status_code="` + strconv.Itoa(k.status) + `"`
		writeHist(w, DurationName, labels, durationBounds, m.series[k])
	}
	fmt.Fprintf(w, "# HELP %s Pods' first requests after starting from zero.\n# TYPE %s counter\n%s %d\n", ColdStartsName, ColdStartsName, ColdStartsName, m.cold.count())
	fmt.Fprintf(w, "# HELP %s How long the first caller of a pod started from zero waited, from the pod's start to the answer's first byte.\n# TYPE %s histogram\n", ColdWaitName, ColdWaitName)
	if m.coldSeen {
		writeHist(w, ColdWaitName, "", coldBounds, &m.cold)
	}
	m.mu.Unlock()
	fmt.Fprintf(w, "# HELP %s Number of active HTTP server requests.\n# TYPE %s gauge\n%s %d\n", ActiveName, ActiveName, ActiveName, m.active.Load())
	return w.Flush()
}

func (h *hist) count() uint64 {
	var n uint64
	for _, c := range h.counts {
		n += c
	}
	return n
}

func writeHist(w io.Writer, name, labels string, bounds []float64, h *hist) {
	sep := ""
	if labels != "" {
		sep = ","
	}
	var cum uint64
	for i, b := range bounds {
		cum += h.counts[i]
		fmt.Fprintf(w, "%s_bucket{%s%sle=\"%s\"} %d\n", name, labels, sep, strconv.FormatFloat(b, 'g', -1, 64), cum)
	}
	cum += h.counts[len(bounds)]
	fmt.Fprintf(w, "%s_bucket{%s%sle=\"+Inf\"} %d\n", name, labels, sep, cum)
	if labels != "" {
		labels = "{" + labels + "}"
	}
	fmt.Fprintf(w, "%s_sum%s %s\n%s_count%s %d\n", name, labels, strconv.FormatFloat(h.sum, 'g', -1, 64), name, labels, cum)
}
