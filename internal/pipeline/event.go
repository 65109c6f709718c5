// Package pipeline turns a project's workloads into running releases: it
// builds their images (independent workloads at once), publishes them,
// derives each release's chart values, and renders or deploys the releases
// in dependency order. A Session owns every change to a cluster. Every
// step is reported as an Event (package event: the one event type), so
// `skiff build`, `skiff deploy`, `skiff render`, `skiff config --apply`,
// the dashboard and `skiff dev` are views of one stream.
//
// The package knows no command line: its errors are typed or plain, and
// the CLI adds the flags that fix them.
package pipeline

import (
	"sync"
	"time"

	"github.com/skiffdev/skiff/internal/event"
)

// Event is one step of one workload: the one event type (package event).
type Event = event.Event

// Kind is what happened.
type Kind = event.Kind

// The kinds of events the pipeline and the session report.
const (
	BuildStarted    = event.BuildStarted
	Built           = event.Built
	Reused          = event.Reused
	Published       = event.Published
	Signed          = event.Signed
	Verified        = event.Verified
	DeployStarted   = event.DeployStarted
	Deployed        = event.Deployed
	Interrupted     = event.Interrupted
	Failed          = event.Failed
	RollbackStarted = event.RollbackStarted
	RolledBack      = event.RolledBack
	Deleted         = event.Deleted
	Notice          = event.Notice
)

// emitter calls a sink with one event at a time, stamping each.
type emitter struct {
	once sync.Once
	em   *event.Emitter
}

func (e *emitter) emit(sink func(Event), now func() time.Time, ev Event) {
	e.once.Do(func() { e.em = &event.Emitter{Sink: sink, Now: now} })
	e.em.Emit(ev)
}
