// Package pipeline turns a project's workloads into running releases: it
// builds their images (independent workloads at once), publishes them,
// derives each release's chart values, and renders or deploys the releases
// in dependency order. Every step is reported as an Event, so `skiff
// build`, `skiff deploy`, `skiff render`, `skiff config --apply`, the
// dashboard and `skiff dev` are views of one stream.
//
// The package knows no command line: its errors are typed or plain, and
// the CLI adds the flags that fix them.
package pipeline

import (
	"sync"
	"time"
)

// Kind is what happened.
type Kind string

// The kinds of events, in the order a workload goes through them.
const (
	// BuildStarted: the image of the workload is being built.
	BuildStarted Kind = "build-started"
	// Built: a new image was built.
	Built Kind = "built"
	// Reused: nothing the image is made of changed; the cached one is used.
	Reused Kind = "reused"
	// Published: the image is at its destination (Uploaded says whether
	// anything had to be written).
	Published Kind = "published"
	// DeployStarted: the release is being installed or upgraded.
	DeployStarted Kind = "deploy-started"
	// Deployed: the release is ready.
	Deployed Kind = "deployed"
	// Interrupted: the user interrupted a deploy; it is being rolled back.
	Interrupted Kind = "interrupted"
	// Failed: the workload's step failed (Error says why).
	Failed Kind = "failed"
	// RollbackStarted: the release is being rolled back (Revision: to
	// which; 0: the one before).
	RollbackStarted Kind = "rollback-started"
	// RolledBack: the rolled-back release is ready (Revision: the new one).
	RolledBack Kind = "rolled-back"
	// Deleted: something of the workload is gone from the cluster (Object:
	// release, consumers, secret/NAME).
	Deleted Kind = "deleted"
	// Notice: something the user should know (Message).
	Notice Kind = "notice"
)

// Event is one step of one workload.
type Event struct {
	Time     time.Time `json:"time"`
	Kind     Kind      `json:"event"`
	Workload string    `json:"workload"`
	// Duration is how long the step took (built, reused, published,
	// deployed, failed).
	Duration time.Duration `json:"-"`
	Seconds  float64       `json:"seconds,omitempty"`

	// Build steps.
	Lang      string   `json:"lang,omitempty"`
	Base      string   `json:"base,omitempty"`
	Platforms []string `json:"platforms,omitempty"`
	Reference string   `json:"reference,omitempty"`
	Digest    string   `json:"digest,omitempty"`
	// Destination is where images go: registry, local store, layout or
	// tarball.
	Destination string `json:"destination,omitempty"`
	Uploaded    bool   `json:"uploaded,omitempty"`

	// Deploy steps.
	Environment string `json:"environment,omitempty"`
	Namespace   string `json:"namespace,omitempty"`
	Release     string `json:"release,omitempty"`
	Image       string `json:"image,omitempty"`
	OwnChart    bool   `json:"ownChart,omitempty"`
	Revision    int    `json:"revision,omitempty"`
	Ready       string `json:"ready,omitempty"`

	// Object is what a delete removed.
	Object string `json:"object,omitempty"`
	// Message is a notice's text.
	Message string `json:"message,omitempty"`

	// Err is why the step failed.
	Err   error  `json:"-"`
	Error string `json:"error,omitempty"`
}

// emitter calls a sink with one event at a time, stamping each.
type emitter struct {
	mu   sync.Mutex
	sink func(Event)
	now  func() time.Time
}

func (e *emitter) emit(ev Event) {
	if e.sink == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.now != nil {
		ev.Time = e.now()
	} else {
		ev.Time = time.Now()
	}
	if ev.Duration > 0 {
		ev.Seconds = ev.Duration.Round(time.Millisecond).Seconds()
	}
	if ev.Err != nil {
		ev.Error = ev.Err.Error()
	}
	e.sink(ev)
}
