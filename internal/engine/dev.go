package engine

import (
	"context"
	"io"
	"time"

	"github.com/skiffdev/skiff/internal/event"
	"github.com/skiffdev/skiff/internal/project"
)

// DevConfig is what `skiff dev`'s runner on the cluster is opened with
// (cmdutil.Factory.DevCluster), on a session that has passed its
// preflight: opening it checks the build, makes the namespace and the
// pull Secret, in that order, and reads the releases to restore.
type DevConfig struct {
	// Project is the project as loaded at start; Root its folder.
	Project *project.Project
	Root    string
	// Workloads are the workloads run: their releases are read at open
	// (to restore them) and each gets a forward.
	Workloads []project.Workload
	// Build says how each cycle builds and pushes its image.
	Build BuildConfig
	// Pull says how the registry is reached for the pull Secret.
	Pull PullOptions
	// Timeout bounds the wait for a new version (rollout or sync).
	Timeout time.Duration
	// SyncImage is skiff-relay's image: new app files go into running
	// pods when only they changed ("": every new version rolls out).
	SyncImage string
	// Events receives the loop's events.
	Events *event.Emitter
}

// DevRunner runs `skiff dev`'s cycles on the cluster: it is a dev.Runner,
// and forwards the workloads and puts the cluster back as it found it.
type DevRunner interface {
	// Cycle rebuilds one workload and replaces what runs of it, keeping
	// what ran when that fails.
	Cycle(ctx context.Context, workload string)
	// SetProject replaces the project (skiff.yaml changed).
	SetProject(p *project.Project)
	// URL is where the workload answers on this machine.
	URL(workload string) string
	// Stop ends what Cycle started that must not outlive the loop.
	Stop()
	// Forward forwards a stable loopback port (the workload's port plus
	// 10000, or the next free one) to the newest ready pod of each
	// workload, through rollouts, until ctx ends or stop is called.
	Forward(ctx context.Context) (stop func(), err error)
	// Restore puts each release back as it was at open (keep: leaves
	// them), until ctx ends; it returns how many it could not.
	Restore(ctx context.Context, keep bool, timeout time.Duration) (left int)
}

// DevBusConfig is what `skiff dev --local`'s event bus is started with
// (cmdutil.Factory.DevLocalBus), for a project that uses events.
type DevBusConfig struct {
	// Root is the project's folder: the bus's store is in its .skiff/bus.
	Root    string
	Project *project.Project
	// Workloads are those dev runs: only their triggers are delivered to.
	Workloads []string
	// Logs receives the relay's lines, "relay | ..." (LogEvents, when set,
	// receives them as Log events of "relay" instead).
	Logs      io.Writer
	LogEvents *event.Emitter
	// KeepWarm: as dev --local's (a scale.min 0 workload's deliveries then
	// wait for its readiness path, as the sidecar's do; otherwise they wake
	// it).
	KeepWarm bool
}

// DevBusInfo says where `skiff dev --local`'s bus is.
type DevBusInfo struct {
	// URL is the bus's (nats://127.0.0.1:<port>).
	URL string
	// Stream is the project's stream.
	Stream string
	// Sink is where workloads send events: their K_SINK.
	Sink string
}

// DevBus is the event half of `skiff dev --local`: the bus, its sink and
// the relay's deliveries to the triggered workloads, in this process. Only
// one runs per project. Close it.
type DevBus interface {
	// Info says where the bus, its stream and the sink are.
	Info() DevBusInfo
	// Env is what every workload's environment gets: K_SINK.
	Env() []string
	// SetProject makes the consumers and deliveries those of p (skiff.yaml
	// changed); a changed events.stream is an error.
	SetProject(ctx context.Context, p *project.Project) error
	// StopDelivery stops every delivery (before the workloads stop); the
	// sink keeps serving.
	StopDelivery()
	// Close stops the deliveries, the sink and the bus, and leaves nothing
	// of them (no port, no process, no lock). A second Close does nothing.
	Close()
}
