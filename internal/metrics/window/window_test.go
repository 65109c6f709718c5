package window

import (
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/stats"
)

func read(pods map[string]int64) []engine.WorkloadStats {
	r := engine.WorkloadStats{Workload: "thumbs", Source: engine.SourcePods, Pods: map[string]stats.Window{}}
	for pod, n := range pods {
		r.Pods[pod] = stats.Window{Pods: 1, Requests: n}
		r.Window.Merge(r.Pods[pod])
	}
	return []engine.WorkloadStats{r}
}

// What a pod served outlives it for a window: a scale to zero while top
// runs leaves the figures of the window so far.
func TestMemoryKeepsAGonePodForAWindow(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC)
	m := &Memory{Window: time.Minute}
	got := m.Add(t0, read(map[string]int64{"a": 10, "b": 5}))
	if got[0].Window.Requests != 15 || got[0].Window.Pods != 2 {
		t.Fatalf("first read: %+v", got[0].Window)
	}
	// b goes; a served more.
	got = m.Add(t0.Add(10*time.Second), read(map[string]int64{"a": 12}))
	if got[0].Window.Requests != 17 || got[0].Window.Pods != 2 {
		t.Errorf("b kept with its last figures: %+v", got[0].Window)
	}
	// Scaled to zero: nothing read, all kept.
	got = m.Add(t0.Add(30*time.Second), read(nil))
	if got[0].Window.Requests != 17 || got[0].Window.Idle() {
		t.Errorf("at zero pods, the window so far: %+v", got[0].Window)
	}
	// b's last figures are a window old at t0+60s, a's at t0+70s.
	got = m.Add(t0.Add(65*time.Second), read(nil))
	if got[0].Window.Requests != 12 {
		t.Errorf("b dropped, a kept: %+v", got[0].Window)
	}
	got = m.Add(t0.Add(71*time.Second), read(nil))
	if !got[0].Window.Idle() || got[0].Window.Pods != 0 {
		t.Errorf("all a window old: %+v", got[0].Window)
	}
}

func TestMemoryPassesPrometheusThrough(t *testing.T) {
	m := &Memory{Window: time.Minute}
	in := []engine.WorkloadStats{{Workload: "x", Source: engine.SourcePrometheus, Window: stats.Window{Requests: 3}}}
	m.Add(time.Now(), []engine.WorkloadStats{{Workload: "x", Source: engine.SourcePrometheus, Window: stats.Window{Requests: 100}}})
	if got := m.Add(time.Now(), in); got[0].Window.Requests != 3 {
		t.Errorf("%+v", got[0])
	}
}
