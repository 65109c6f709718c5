package dev

import "github.com/skiffdev/skiff/internal/event"

// Event is one step of the loop: the one event type (package event).
type Event = event.Event

// Emitter hands events to its Sink one at a time, stamped with the time.
// A nil Emitter or Sink drops them.
type Emitter = event.Emitter

// The kinds of the loop's events.
const (
	Watching      = event.Watching
	CycleStarted  = event.CycleStarted
	Ready         = event.Ready
	Unchanged     = event.Unchanged
	Failed        = event.Failed // Phase: event.PhaseCycle
	Exited        = event.Exited
	ManifestError = event.ManifestError
	Stopped       = event.Stopped
	Restored      = event.Restored
	Removed       = event.Removed
	Left          = event.Left
	Log           = event.Log
)
