package dev

import (
	"sync"
	"time"
)

// Kind is what happened in the loop.
type Kind string

// The kinds of events.
const (
	// Watching: the loop is up; URL is where the workload answers.
	Watching Kind = "watching"
	// CycleStarted: the workload is being rebuilt.
	CycleStarted Kind = "cycle-started"
	// Ready: the new version answers its readiness path.
	Ready Kind = "ready"
	// Unchanged: the cycle found nothing new to run (same image, same
	// settings); what runs keeps running.
	Unchanged Kind = "unchanged"
	// Failed: the cycle failed (Error, and Output of the failed step); what
	// ran before keeps running when it could.
	Failed Kind = "failed"
	// Exited: the workload's process ended by itself.
	Exited Kind = "exited"
	// ManifestError: skiff.yaml does not load; the loop keeps what it has.
	ManifestError Kind = "manifest-error"
	// Stopped: the loop stopped the workload.
	Stopped Kind = "stopped"
	// Restored: on the way out, a release that existed before the loop
	// started is back at the revision it had (Revision).
	Restored Kind = "restored"
	// Removed: on the way out, a release the loop installed is uninstalled.
	Removed Kind = "removed"
	// Left: on the way out, a release is left as the loop made it (--keep,
	// a second interrupt, or a failed restore: Error says which).
	Left Kind = "left"
)

// Event is one step of the loop.
type Event struct {
	Time     time.Time     `json:"time"`
	Kind     Kind          `json:"event"`
	Workload string        `json:"workload,omitempty"`
	URL      string        `json:"url,omitempty"`
	Release  string        `json:"release,omitempty"`
	Revision int           `json:"revision,omitempty"`
	Duration time.Duration `json:"-"`
	Seconds  float64       `json:"seconds,omitempty"`
	// Steps is where a cycle's time went, in seconds (build, push, deploy).
	Steps map[string]float64 `json:"steps,omitempty"`
	Error string             `json:"error,omitempty"`
	// Output is what the failed step printed (a compiler's errors).
	Output string `json:"output,omitempty"`
}

// Emitter hands events to Sink one at a time, stamped with the time. A
// nil Emitter or Sink drops them.
type Emitter struct {
	Sink func(Event)
	mu   sync.Mutex
}

// Emit sends ev.
func (e *Emitter) Emit(ev Event) {
	if e == nil || e.Sink == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	ev.Time = time.Now()
	if ev.Duration > 0 {
		ev.Seconds = ev.Duration.Round(time.Millisecond).Seconds()
	}
	e.Sink(ev)
}
