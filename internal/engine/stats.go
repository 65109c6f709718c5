package engine

import (
	"math"
	"time"

	"github.com/skiffdev/skiff/internal/stats"
)

// DefaultWindow is how far back status -o wide and top look.
const DefaultWindow = 5 * time.Minute

// PodsKeep is how far back each pod's skiff-relay keeps its figures: the
// longest window read from the pods.
const PodsKeep = 15 * time.Minute

// Where the figures of Session.Stats come from.
const (
	// SourcePods: read from each ready pod's proxy (skiff-relay's
	// /stats), through the API server.
	SourcePods = "pods"
	// SourcePrometheus: PromQL over a Prometheus' HTTP API.
	SourcePrometheus = "prometheus"
)

// StatsOptions say which figures Session.Stats reads.
type StatsOptions struct {
	// Window is how far back (DefaultWindow when 0).
	Window time.Duration
	// Prometheus is the base URL of a Prometheus to query; "": the
	// project's metrics.prometheus, and without one the pods themselves.
	Prometheus string
}

// WorkloadStats is what one workload served over a window, as read.
type WorkloadStats struct {
	Workload string `json:"workload"`
	// Source is SourcePods or SourcePrometheus.
	Source string `json:"source"`
	// Window is the figures merged over the workload's pods. Read from
	// the pods, Window.Pods is how many answered: 0 when none runs.
	Window stats.Window `json:"window"`
	// Pods are the figures of each pod read (SourcePods only), by pod
	// name: what skiff top keeps of a pod that went away.
	Pods map[string]stats.Window `json:"-"`
	// Unread says, per pod, why its figures could not be read.
	Unread map[string]string `json:"unread,omitempty"`
}

// Serving is how a workload served over a window, in the figures status
// and top print (and -o json carries).
type Serving struct {
	// Window is the length of time the figures cover, as asked
	// (`--window`), e.g. "5m0s".
	Window string `json:"window"`
	// Source is SourcePods or SourcePrometheus.
	Source string `json:"source"`
	// Idle: nothing was served or delivered in the window (and, read from
	// the pods, no pod runs, so nothing could be: the figures of a
	// workload at zero pods are idle).
	Idle bool `json:"idle"`
	// Pods is how many pods' figures were merged.
	Pods     int   `json:"pods"`
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	InFlight int64 `json:"inFlight"`
	// RPS is requests per second over the window; ErrorPercent is the
	// share of 5xx and timeouts, 0 to 100.
	RPS          float64 `json:"rps"`
	ErrorPercent float64 `json:"errorPercent"`
	// P50 and P99 are the request duration quantiles in seconds
	// (estimated from the histogram's buckets); absent when nothing was
	// served.
	P50 *float64 `json:"p50Seconds,omitempty"`
	P99 *float64 `json:"p99Seconds,omitempty"`
	// ColdStarts counts wakes from zero; ColdStartWait is how long their
	// first callers waited on average, in seconds (absent without one).
	ColdStarts    int64    `json:"coldStarts"`
	ColdStartWait *float64 `json:"coldStartWaitSeconds,omitempty"`
	// Triggers are the figures of each trigger's deliveries.
	Triggers []TriggerServing `json:"triggers,omitempty"`
	// Unread names the pods whose figures could not be read, with why.
	Unread map[string]string `json:"unread,omitempty"`
}

// TriggerServing is how one trigger's events were delivered over a window.
type TriggerServing struct {
	Trigger      string  `json:"trigger"`
	Delivered    int64   `json:"delivered"`
	PerSecond    float64 `json:"perSecond"`
	Failed       int64   `json:"failed"`
	Retried      int64   `json:"retried"`
	DeadLettered int64   `json:"deadLettered"`
	// Pending is the trigger's lag at the end of the window.
	Pending int64 `json:"pending"`
	// P50 and P99 are the delivery latency quantiles in seconds, from the
	// event stored to the function's answer; absent without a delivery.
	P50 *float64 `json:"p50Seconds,omitempty"`
	P99 *float64 `json:"p99Seconds,omitempty"`
}

// Summarize is how st served over window, in the figures printed. Rates
// are over window, the length asked: a window a reader could only partly
// cover (a pod younger than it) counts as quiet for the rest.
func Summarize(st WorkloadStats, window time.Duration) *Serving {
	w := st.Window
	secs := window.Seconds()
	out := &Serving{
		Window: window.String(), Source: st.Source, Idle: w.Idle(), Pods: w.Pods,
		Requests: w.Requests, Errors: w.Errors, InFlight: w.InFlight,
		ColdStarts: w.ColdStarts, Unread: st.Unread,
	}
	if secs > 0 {
		out.RPS = round(float64(w.Requests)/secs, 3)
	}
	out.ErrorPercent = round(100*w.ErrorRatio(), 2)
	out.P50 = quantile(w.Duration, 0.5)
	out.P99 = quantile(w.Duration, 0.99)
	if w.ColdStartWait.Count() > 0 {
		m := round(w.ColdStartWait.Mean(), 6)
		out.ColdStartWait = &m
	}
	for _, name := range w.SortedTriggers() {
		t := w.Triggers[name]
		ts := TriggerServing{
			Trigger: name, Delivered: t.Delivered, Failed: t.Failed, Retried: t.Retried,
			DeadLettered: t.DeadLettered, Pending: t.Pending,
			P50: quantile(t.Latency, 0.5), P99: quantile(t.Latency, 0.99),
		}
		if secs > 0 {
			ts.PerSecond = round(float64(t.Delivered)/secs, 3)
		}
		out.Triggers = append(out.Triggers, ts)
	}
	return out
}

// quantile is h's q-quantile, nil when h is empty.
func quantile(h stats.Histogram, q float64) *float64 {
	v := h.Quantile(q)
	if math.IsNaN(v) {
		return nil
	}
	v = round(v, 6)
	return &v
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
