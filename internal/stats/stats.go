// Package stats holds how a workload served over a window of time: the
// figures skiff-relay's proxy keeps in each pod, that `skiff status -o
// wide`, `skiff top` and the dashboard read, merged over pods, and that a
// Prometheus query yields the same way.
//
// A Window is what one pod (or, merged, one workload) served between Start
// and End. Counts are events in the window, not totals since the pod
// started; InFlight and a trigger's Pending are the values at End.
package stats

import (
	"maps"
	"math"
	"slices"
	"time"
)

// Window is what was served between Start and End.
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Pods is how many pods' figures were merged into this one.
	Pods int `json:"pods"`
	// Requests answered (any status) and, of them, Errors: 5xx, the
	// proxy's own 502 when the app refused the connection and 504 when it
	// did not answer in time.
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	// InFlight is the requests being served at End.
	InFlight int64 `json:"inFlight"`
	// Duration is the requests' durations in seconds, from the request
	// reaching the proxy to the last byte of the answer.
	Duration Histogram `json:"duration"`
	// ColdStarts counts the pods that served their first request after
	// starting from zero; ColdStartWait is how long each first caller
	// waited, in seconds (docs/observe.md says from when).
	ColdStarts    int64     `json:"coldStarts"`
	ColdStartWait Histogram `json:"coldStartWait"`
	// Triggers are the event triggers' figures, by the trigger's consumer
	// name.
	Triggers map[string]Trigger `json:"triggers,omitempty"`
}

// Trigger is what one trigger's deliveries did in the window.
type Trigger struct {
	// Delivered events were answered 2xx by the function; Failed attempts
	// were not (each retried or dead-lettered); Retried and DeadLettered
	// count those outcomes.
	Delivered    int64 `json:"delivered"`
	Failed       int64 `json:"failed"`
	Retried      int64 `json:"retried"`
	DeadLettered int64 `json:"deadLettered"`
	// Latency is from the event being stored on the bus to the function's
	// answer, in seconds, for delivered events.
	Latency Histogram `json:"latency"`
	// Pending is the events stored and not yet delivered at End: the
	// trigger's lag.
	Pending int64 `json:"pending"`
}

// Histogram counts observations in buckets: Counts[i] observations were
// ≤ Bounds[i] (and > Bounds[i-1]); the last count, Counts[len(Bounds)],
// is those above every bound. Sum is the observations' total. The zero
// Histogram is empty.
type Histogram struct {
	Bounds []float64 `json:"bounds"`
	Counts []int64   `json:"counts"`
	Sum    float64   `json:"sum"`
}

// Count is the number of observations.
func (h Histogram) Count() int64 {
	var n int64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// Mean is the observations' mean, 0 when there are none.
func (h Histogram) Mean() float64 {
	n := h.Count()
	if n == 0 {
		return 0
	}
	return h.Sum / float64(n)
}

// Quantile estimates the q-quantile (0 ≤ q ≤ 1) the way Prometheus'
// histogram_quantile does: linearly within the bucket it falls in, from 0
// for the first bucket; in the bucket above every bound it is the highest
// bound. NaN when the histogram is empty.
func (h Histogram) Quantile(q float64) float64 {
	n := h.Count()
	if n == 0 || len(h.Counts) != len(h.Bounds)+1 {
		return math.NaN()
	}
	q = min(max(q, 0), 1)
	rank := q * float64(n)
	var below int64
	for i, c := range h.Counts {
		if c > 0 && float64(below+c) >= rank {
			if i == len(h.Bounds) {
				return h.Bounds[len(h.Bounds)-1]
			}
			lo := 0.0
			if i > 0 {
				lo = h.Bounds[i-1]
			}
			return lo + (h.Bounds[i]-lo)*(rank-float64(below))/float64(c)
		}
		below += c
	}
	if len(h.Bounds) == 0 {
		return math.NaN()
	}
	return h.Bounds[len(h.Bounds)-1]
}

// Merge adds o's observations to h. Histograms with the same bounds add
// bucket by bucket; otherwise each of o's buckets is counted in the first
// of h's buckets whose bound is at least its own (an estimate that never
// makes a quantile smaller). An empty h takes o's bounds.
func (h *Histogram) Merge(o Histogram) {
	if len(o.Counts) == 0 {
		return
	}
	if len(h.Counts) == 0 {
		h.Bounds = slices.Clone(o.Bounds)
		h.Counts = make([]int64, len(o.Counts))
	}
	h.Sum += o.Sum
	if slices.Equal(h.Bounds, o.Bounds) {
		for i, c := range o.Counts {
			h.Counts[i] += c
		}
		return
	}
	for i, c := range o.Counts {
		j := len(h.Bounds)
		if i < len(o.Bounds) {
			j, _ = slices.BinarySearch(h.Bounds, o.Bounds[i])
		}
		h.Counts[j] += c
	}
}

// Sub is h minus an earlier reading of the same cumulative histogram:
// what was observed between the two. Readers that keep their own window
// (skiff top) subtract successive readings of Prometheus counters with it.
// A reset (a count went down: the pod restarted) gives h itself.
func (h Histogram) Sub(earlier Histogram) Histogram {
	if !slices.Equal(h.Bounds, earlier.Bounds) || len(h.Counts) != len(earlier.Counts) {
		return h
	}
	out := Histogram{Bounds: slices.Clone(h.Bounds), Counts: make([]int64, len(h.Counts)), Sum: h.Sum - earlier.Sum}
	for i := range h.Counts {
		if h.Counts[i] < earlier.Counts[i] {
			return h
		}
		out.Counts[i] = h.Counts[i] - earlier.Counts[i]
	}
	return out
}

// Merge adds o, another pod's figures for the same window, to w. The
// window becomes the union of both; InFlight and Pending add up (each pod
// has its own requests; a trigger's consumer is shared, so Pending takes
// the larger reading rather than the sum).
func (w *Window) Merge(o Window) {
	if w.Start.IsZero() || (!o.Start.IsZero() && o.Start.Before(w.Start)) {
		w.Start = o.Start
	}
	if o.End.After(w.End) {
		w.End = o.End
	}
	w.Pods += max(o.Pods, 1)
	w.Requests += o.Requests
	w.Errors += o.Errors
	w.InFlight += o.InFlight
	w.Duration.Merge(o.Duration)
	w.ColdStarts += o.ColdStarts
	w.ColdStartWait.Merge(o.ColdStartWait)
	for _, name := range slices.Sorted(maps.Keys(o.Triggers)) {
		if w.Triggers == nil {
			w.Triggers = map[string]Trigger{}
		}
		t, ot := w.Triggers[name], o.Triggers[name]
		t.Delivered += ot.Delivered
		t.Failed += ot.Failed
		t.Retried += ot.Retried
		t.DeadLettered += ot.DeadLettered
		t.Latency.Merge(ot.Latency)
		t.Pending = max(t.Pending, ot.Pending)
		w.Triggers[name] = t
	}
}

// Seconds is the window's length in seconds.
func (w Window) Seconds() float64 { return w.End.Sub(w.Start).Seconds() }

// Rate is requests per second over the window, 0 for an empty window.
func (w Window) Rate() float64 { return perSecond(w.Requests, w.Seconds()) }

// ErrorRatio is the share of requests that were errors, 0 to 1 (0 when
// there were none).
func (w Window) ErrorRatio() float64 {
	if w.Requests == 0 {
		return 0
	}
	return float64(w.Errors) / float64(w.Requests)
}

// Idle says nothing was served or delivered in the window.
func (w Window) Idle() bool {
	if w.Requests > 0 || w.InFlight > 0 {
		return false
	}
	for _, t := range w.Triggers {
		if t.Delivered+t.Failed > 0 || t.Pending > 0 {
			return false
		}
	}
	return true
}

// Rate is the trigger's delivered events per second over a window of
// seconds.
func (t Trigger) Rate(seconds float64) float64 { return perSecond(t.Delivered, seconds) }

func perSecond(n int64, seconds float64) float64 {
	if seconds <= 0 {
		return 0
	}
	return float64(n) / seconds
}

// Bounds returns the duration buckets skiff's proxy uses, in seconds:
// OpenTelemetry's defaults for http.server.request.duration with finer
// ones below 5 ms, where a proxy's own cost and fast handlers are.
func Bounds() []float64 {
	return []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}
}

// SortedTriggers returns w's trigger names in order.
func (w Window) SortedTriggers() []string { return slices.Sorted(maps.Keys(w.Triggers)) }
