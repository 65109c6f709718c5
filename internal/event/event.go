// Package event is skiff's one event stream. Every step of a build, push,
// deploy, wait, sync, rollback or delete, in every mode (deploy, dev on
// the cluster and on this machine, the dashboard's actions), is an Event:
// the terminal's progress lines, `-o json` lines, the dashboard and dev's
// panel render the same values. Its JSON (Version 1, one object a line) is
// documented in docs/events-json.md.
package event

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"sync"
	"time"
)

// Version is the version of the JSON schema (the "v" of every line). A
// field may be added within a version; none is removed or changes meaning.
const Version = 1

// Kind is what happened.
type Kind string

// The kinds of events.
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
	// Signed: the pushed image is signed and its SBOM and provenance
	// attested (Uploaded says whether anything had to be written; Message
	// names the key and what was attested).
	Signed Kind = "signed"
	// Verified: the image of the workload verifies with the key of
	// verify: (Reference, Digest; Message: the signer, the provenance's
	// commit, the SBOM's package count).
	Verified Kind = "verified"
	// DeployStarted: the release is being installed or upgraded.
	DeployStarted Kind = "deploy-started"
	// Deployed: the release is ready.
	Deployed Kind = "deployed"
	// Interrupted: the user interrupted a deploy; it is being rolled back.
	Interrupted Kind = "interrupted"
	// Failed: the workload's step (Phase) failed (Error says why); in dev,
	// a cycle failed (and Output is what the failed step printed): what
	// ran before keeps running when it could.
	Failed Kind = "failed"
	// RollbackStarted: the release is being rolled back (Revision: to
	// which; 0: the one before).
	RollbackStarted Kind = "rollback-started"
	// RolledBack: the rolled-back release is ready (Revision: the new one).
	RolledBack Kind = "rolled-back"
	// Deleted: something of the workload is gone from the cluster (Object:
	// release, consumers, secret/NAME, pull-secret/NAME, listener/NAME).
	Deleted Kind = "deleted"
	// Notice: something the user should know (Message).
	Notice Kind = "notice"
	// Log: a line a workload printed (Pod, Container, Message).
	Log Kind = "log"

	// Watching: dev's loop is up; URL is where the workload answers.
	Watching Kind = "watching"
	// CycleStarted: dev rebuilds the workload.
	CycleStarted Kind = "cycle-started"
	// Ready: the new version answers its readiness path.
	Ready Kind = "ready"
	// Unchanged: the cycle found nothing new to run; what runs keeps
	// running.
	Unchanged Kind = "unchanged"
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

// Phases: what part of the path an event is about (JSON "phase").
const (
	PhaseBuild    = "build"
	PhasePush     = "push"
	PhaseSign     = "sign"
	PhaseVerify   = "verify"
	PhaseDeploy   = "deploy"
	PhaseWait     = "wait"
	PhaseSync     = "sync"
	PhaseRollback = "rollback"
	PhaseDelete   = "delete"
	PhaseCycle    = "cycle"
	PhaseRun      = "run"
	PhaseWatch    = "watch"
	PhaseManifest = "manifest"
	PhaseRestore  = "restore"
	PhaseLog      = "log"
	PhaseNotice   = "notice"
)

// phaseStatus is each kind's phase and status (JSON "phase", "status").
var phaseStatus = map[Kind][2]string{
	BuildStarted:    {PhaseBuild, "started"},
	Built:           {PhaseBuild, "succeeded"},
	Reused:          {PhaseBuild, "reused"},
	Published:       {PhasePush, "succeeded"},
	Signed:          {PhaseSign, "succeeded"},
	Verified:        {PhaseVerify, "succeeded"},
	DeployStarted:   {PhaseDeploy, "started"},
	Deployed:        {PhaseDeploy, "succeeded"},
	Interrupted:     {PhaseDeploy, "interrupted"},
	Failed:          {PhaseDeploy, "failed"},
	RollbackStarted: {PhaseRollback, "started"},
	RolledBack:      {PhaseRollback, "succeeded"},
	Deleted:         {PhaseDelete, "succeeded"},
	Notice:          {PhaseNotice, "info"},
	Log:             {PhaseLog, "line"},
	Watching:        {PhaseWatch, "started"},
	CycleStarted:    {PhaseCycle, "started"},
	Ready:           {PhaseCycle, "succeeded"},
	Unchanged:       {PhaseCycle, "unchanged"},
	Exited:          {PhaseRun, "exited"},
	ManifestError:   {PhaseManifest, "failed"},
	Stopped:         {PhaseRun, "stopped"},
	Restored:        {PhaseRestore, "succeeded"},
	Removed:         {PhaseRestore, "removed"},
	Left:            {PhaseRestore, "left"},
}

// Event is one step of one workload (or of the run, Workload "").
type Event struct {
	Time time.Time
	Kind Kind
	// Phase overrides the kind's phase (a Failed build is PhaseBuild).
	Phase string
	// Run identifies the command's run (one deploy, one dev session).
	Run      string
	Workload string
	// Duration is how long the step took.
	Duration time.Duration
	// Err is why the step failed; Error its text (set either).
	Err   error
	Error string

	// Build and push.
	Lang        string
	Base        string
	Platforms   []string
	Reference   string
	Digest      string
	Destination string // registry, local, oci, tar
	Uploaded    bool

	// Deploy, wait, rollback, delete.
	Environment string
	Namespace   string
	Release     string
	Image       string
	OwnChart    bool
	Revision    int
	Ready       string
	Object      string

	// dev.
	URL string
	// Steps is where a cycle's time went (build, push, deploy, sync).
	Steps map[string]time.Duration
	// Output is what the failed step printed (a compiler's errors).
	Output string

	// Logs and notices.
	Pod       string
	Container string
	Message   string
}

// PhaseStatus is ev's phase and status as its JSON says them.
func (ev Event) PhaseStatus() (phase, status string) {
	ps := phaseStatus[ev.Kind]
	phase, status = ps[0], ps[1]
	switch {
	case ev.Phase != "":
		phase = ev.Phase
	case ev.Kind == Failed && ev.Release == "":
		phase = PhaseBuild // no release yet: the build (or the chart) failed
	}
	if status == "" {
		status = string(ev.Kind)
	}
	return phase, status
}

// ErrorText is why the step failed, "" when it did not.
func (ev Event) ErrorText() string {
	if ev.Error == "" && ev.Err != nil {
		return ev.Err.Error()
	}
	return ev.Error
}

// line is the JSON of an event: docs/events-json.md.
type line struct {
	V        int             `json:"v"`
	Time     time.Time       `json:"time"`
	Run      string          `json:"run,omitempty"`
	Event    Kind            `json:"event"`
	Workload string          `json:"workload,omitempty"`
	Phase    string          `json:"phase"`
	Status   string          `json:"status"`
	Seconds  float64         `json:"seconds,omitempty"`
	Error    string          `json:"error,omitempty"`
	Detail   json.RawMessage `json:"detail,omitempty"`
}

type detail struct {
	Lang        string             `json:"lang,omitempty"`
	Base        string             `json:"base,omitempty"`
	Platforms   []string           `json:"platforms,omitempty"`
	Reference   string             `json:"reference,omitempty"`
	Digest      string             `json:"digest,omitempty"`
	Destination string             `json:"destination,omitempty"`
	Uploaded    bool               `json:"uploaded,omitempty"`
	Environment string             `json:"environment,omitempty"`
	Namespace   string             `json:"namespace,omitempty"`
	Release     string             `json:"release,omitempty"`
	Image       string             `json:"image,omitempty"`
	OwnChart    bool               `json:"ownChart,omitempty"`
	Revision    int                `json:"revision,omitempty"`
	Ready       string             `json:"ready,omitempty"`
	Object      string             `json:"object,omitempty"`
	URL         string             `json:"url,omitempty"`
	Steps       map[string]float64 `json:"steps,omitempty"`
	Output      string             `json:"output,omitempty"`
	Pod         string             `json:"pod,omitempty"`
	Container   string             `json:"container,omitempty"`
	Message     string             `json:"message,omitempty"`
}

func seconds(d time.Duration) float64 { return d.Round(time.Millisecond).Seconds() }

// MarshalJSON writes the event as docs/events-json.md says.
func (ev Event) MarshalJSON() ([]byte, error) {
	phase, status := ev.PhaseStatus()
	l := line{V: Version, Time: ev.Time, Run: ev.Run, Event: ev.Kind, Workload: ev.Workload, Phase: phase, Status: status,
		Seconds: seconds(ev.Duration), Error: ev.ErrorText()}
	d := detail{Lang: ev.Lang, Base: ev.Base, Platforms: ev.Platforms, Reference: ev.Reference, Digest: ev.Digest,
		Destination: ev.Destination, Uploaded: ev.Uploaded, Environment: ev.Environment, Namespace: ev.Namespace,
		Release: ev.Release, Image: ev.Image, OwnChart: ev.OwnChart, Revision: ev.Revision, Ready: ev.Ready,
		Object: ev.Object, URL: ev.URL, Output: ev.Output, Pod: ev.Pod, Container: ev.Container, Message: ev.Message}
	if len(ev.Steps) > 0 {
		d.Steps = map[string]float64{}
		for k, v := range ev.Steps {
			d.Steps[k] = seconds(v)
		}
	}
	raw, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	if string(raw) != "{}" {
		l.Detail = raw
	}
	return json.Marshal(l)
}

// UnmarshalJSON reads an event MarshalJSON wrote (Err is left nil: Error
// holds its text).
func (ev *Event) UnmarshalJSON(data []byte) error {
	var l line
	if err := json.Unmarshal(data, &l); err != nil {
		return err
	}
	var d detail
	if len(l.Detail) > 0 {
		if err := json.Unmarshal(l.Detail, &d); err != nil {
			return err
		}
	}
	*ev = Event{Time: l.Time, Kind: l.Event, Run: l.Run, Workload: l.Workload, Error: l.Error,
		Duration: time.Duration(l.Seconds * float64(time.Second)),
		Lang:     d.Lang, Base: d.Base, Platforms: d.Platforms, Reference: d.Reference, Digest: d.Digest,
		Destination: d.Destination, Uploaded: d.Uploaded, Environment: d.Environment, Namespace: d.Namespace,
		Release: d.Release, Image: d.Image, OwnChart: d.OwnChart, Revision: d.Revision, Ready: d.Ready,
		Object: d.Object, URL: d.URL, Output: d.Output, Pod: d.Pod, Container: d.Container, Message: d.Message}
	if phase, _ := (Event{Kind: ev.Kind, Release: ev.Release}).PhaseStatus(); phase != l.Phase {
		ev.Phase = l.Phase
	}
	if len(d.Steps) > 0 {
		ev.Steps = map[string]time.Duration{}
		for k, v := range d.Steps {
			ev.Steps[k] = time.Duration(v * float64(time.Second))
		}
	}
	return nil
}

// NewRun returns a new run id: a few random hex digits that tell one
// command's events from another's in a shared log.
func NewRun() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Emitter hands events to Sink one at a time, stamped with the time (and
// Run, when set). A nil Emitter or Sink drops them.
type Emitter struct {
	Sink func(Event)
	// Run stamps every event that has none.
	Run string
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	mu  sync.Mutex
}

// Emit sends ev.
func (e *Emitter) Emit(ev Event) {
	if e == nil || e.Sink == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.Now != nil {
		ev.Time = e.Now()
	} else {
		ev.Time = time.Now()
	}
	if ev.Run == "" {
		ev.Run = e.Run
	}
	e.Sink(ev)
}
