package engine

import (
	"context"
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
