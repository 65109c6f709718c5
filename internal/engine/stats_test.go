package engine

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/stats"
)

func TestSummarize(t *testing.T) {
	h := stats.Histogram{Bounds: []float64{0.01, 0.1, 1}, Counts: []int64{50, 40, 10, 0}, Sum: 5}
	st := WorkloadStats{Workload: "orders", Source: SourcePods, Window: stats.Window{
		Pods: 2, Requests: 100, Errors: 4, InFlight: 1, Duration: h,
		ColdStarts: 2, ColdStartWait: stats.Histogram{Bounds: []float64{1, 2}, Counts: []int64{1, 1, 0}, Sum: 2.5},
		Triggers: map[string]stats.Trigger{"b": {Delivered: 30, Retried: 1, Failed: 1, Pending: 5, Latency: h}, "a": {}},
	}}
	s := Summarize(st, 50*time.Second)
	if s.RPS != 2 || s.ErrorPercent != 4 || s.Pods != 2 || s.Idle || s.Window != "50s" {
		t.Errorf("rps %g, errors %g%%, pods %d, idle %v, window %s", s.RPS, s.ErrorPercent, s.Pods, s.Idle, s.Window)
	}
	if s.P50 == nil || *s.P50 != 0.01 || s.P99 == nil || *s.P99 != 0.91 {
		t.Errorf("p50 %v p99 %v, want 0.01 and 0.91", deref(s.P50), deref(s.P99))
	}
	if s.ColdStartWait == nil || *s.ColdStartWait != 1.25 {
		t.Errorf("cold start wait %v, want the mean 1.25", s.ColdStartWait)
	}
	if len(s.Triggers) != 2 || s.Triggers[0].Trigger != "a" || s.Triggers[1].PerSecond != 0.6 || s.Triggers[1].Pending != 5 {
		t.Errorf("triggers %+v", s.Triggers)
	}
	if s.Triggers[0].P50 != nil {
		t.Error("a trigger with no delivery has a latency")
	}
}

// A workload at zero pods is idle, and its figures encode: no NaN where
// nothing was served.
func TestSummarizeIdle(t *testing.T) {
	s := Summarize(WorkloadStats{Workload: "thumbs", Source: SourcePods}, 5*time.Minute)
	if !s.Idle || s.P50 != nil || s.P99 != nil || s.ColdStartWait != nil || s.RPS != 0 {
		t.Errorf("%+v", s)
	}
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"idle":true`) || strings.Contains(string(data), "p99") {
		t.Errorf("%s", data)
	}
}

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}
