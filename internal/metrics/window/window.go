// Package window keeps, in memory, what successive reads of the workloads'
// figures saw: Memory keeps a window of each pod's last figures, so what a
// pod served outlives it while the reader runs (skiff top across a scale
// to zero); Series keeps a point per read for the dashboard's charts. It
// reaches nothing: the command layer and the dashboard use it on what
// engine.Session.Stats read.
package window

import (
	"maps"
	"slices"
	"time"

	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/stats"
)

// Memory merges successive reads of the pods' figures over Window: a pod
// that is gone (or did not answer) counts with the last figures read of
// it until they are a whole Window old. Figures read from a Prometheus,
// which keeps them itself, pass through.
type Memory struct {
	Window time.Duration
	pods   map[string]map[string]seen // workload → pod → its last figures
}

type seen struct {
	w  stats.Window
	at time.Time
}

// Add takes a read made at now and returns it with each workload's
// figures merged over the pods seen in the window.
func (m *Memory) Add(now time.Time, read []engine.WorkloadStats) []engine.WorkloadStats {
	if m.pods == nil {
		m.pods = map[string]map[string]seen{}
	}
	out := make([]engine.WorkloadStats, len(read))
	for i, r := range read {
		out[i] = r
		if r.Source != engine.SourcePods {
			continue
		}
		kept := m.pods[r.Workload]
		if kept == nil {
			kept = map[string]seen{}
			m.pods[r.Workload] = kept
		}
		for pod, w := range r.Pods {
			kept[pod] = seen{w, now}
		}
		merged := map[string]stats.Window{}
		for pod, s := range kept {
			if now.Sub(s.at) >= m.Window {
				delete(kept, pod)
				continue
			}
			merged[pod] = s.w
		}
		out[i].Pods = merged
		out[i].Window = merge(merged)
		if len(merged) == 0 {
			out[i].Window.Start, out[i].Window.End = r.Window.Start, r.Window.End
		}
	}
	return out
}

// merge merges pods' figures in the order of their names.
func merge(pods map[string]stats.Window) stats.Window {
	var w stats.Window
	for _, name := range slices.Sorted(maps.Keys(pods)) {
		w.Merge(pods[name])
	}
	return w
}
