package cluster

import "github.com/skiffdev/skiff/internal/event"

// The loop's events, as package dev names them (the one event type).
type (
	Event   = event.Event
	Emitter = event.Emitter
)

// The kinds of the loop's events the runner sends.
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
)
