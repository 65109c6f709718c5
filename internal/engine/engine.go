// Package engine is the domain as the command layer sees it: the
// interfaces of the session that owns a command's changes to a cluster,
// of the builder, of the event bus and of `skiff dev`'s runner on a
// cluster, and the values they take and return. It implements nothing and
// imports no cluster, bus, registry or Helm package: package pipeline
// implements them (Session.Engine, Builder, OpenBus; dev/cluster the
// DevRunner), main builds those (internal/factory) and hands them to the
// commands through cmdutil.Factory, and tests hand them fakes.
package engine

import (
	"context"
	"time"

	"github.com/skiffdev/skiff/internal/event"
	"github.com/skiffdev/skiff/internal/project"
)

// DefaultTimeout bounds how long skiff waits for a release to be ready (or
// gone).
const DefaultTimeout = 5 * time.Minute

// SessionConfig is what a session is built from.
type SessionConfig struct {
	// Project is resolved for the environment, with -n applied.
	Project *project.Project
	// Root is the folder of skiff.yaml.
	Root string
	// KubeContext is the kubeconfig context ("": the kubeconfig's current
	// one).
	KubeContext string
	// Events receives every step the session takes (nil: nowhere).
	Events func(event.Event)
	// HelmLog receives Helm's log (nil: nowhere).
	HelmLog func(format string, args ...any)
}

// Session is one command's hold on the project's cluster: it owns every
// change to it and reports each step as an event. Close it.
type Session interface {
	// Close ends the session's connections.
	Close()
	// Preflight checks, before anything is built or changed, the engines
	// the workloads need and the event bus.
	Preflight(ctx context.Context, ws []project.Workload) error
	// Plan says the image of each workload: the one given, else (with
	// reuse) the one its last good release runs; the others are returned
	// in build.
	Plan(ctx context.Context, ws []project.Workload, given map[string]string, reuse bool) (images map[string]string, build []project.Workload, err error)
	// EnsureNamespace creates the project's namespace when it is missing.
	EnsureNamespace(ctx context.Context) error
	// EnsurePullSecret keeps the Secret the pods of ws pull with, when
	// they need one, and returns its name ("": none).
	EnsurePullSecret(ctx context.Context, ws []project.Workload, o PullOptions) (string, error)
	// Deploy installs or upgrades the release of each workload of ws in
	// order, each with its image, and waits for each as its target says.
	Deploy(ctx context.Context, o DeployOptions, ws []project.Workload, images map[string]string) ([]Deployment, error)
	// Apply redeploys a workload with only its configuration replaced.
	Apply(ctx context.Context, workload string, config map[string]string, timeout time.Duration) (*Applied, error)
	// Rollback rolls a workload back to revision (0: the one before) and
	// waits for it; it returns the revision rolled back to.
	Rollback(ctx context.Context, workload string, revision int, timeout time.Duration) (int, error)
	// History lists a workload's revisions, oldest first.
	History(ctx context.Context, workload string) ([]Revision, error)
	// Delete removes the named workloads and what their targets own.
	Delete(ctx context.Context, o DeleteOptions, workloads ...string) error
	// Statuses reads what runs of each workload of ws.
	Statuses(ctx context.Context, ws []project.Workload) ([]*Status, error)
	// SetSecrets and UnsetSecrets change a workload's Secret of `skiff
	// secret` values and return its name; SecretKeys lists its keys.
	SetSecrets(ctx context.Context, workload string, values map[string][]byte) (string, error)
	UnsetSecrets(ctx context.Context, workload string, keys []string) (string, error)
	SecretKeys(ctx context.Context, workload string) ([]string, error)
	// Restart restarts a workload's pods; false when none runs.
	Restart(ctx context.Context, workload string) (bool, error)
	// Forward opens a port-forward to a workload. Close it.
	Forward(ctx context.Context, workload string) (*Forward, error)
	// Logs sends the log lines of the pods of ws to lines until the
	// streams end (or, following, the context does); it does not close
	// lines.
	Logs(ctx context.Context, ws []project.Workload, o LogOptions, lines chan<- LogLine) error
	// Stats reads how each workload of ws served over o.Window: from its
	// ready pods' proxies (skiff-relay's /stats, through the API server),
	// or, with a Prometheus configured, by PromQL. A workload at zero pods
	// has empty figures read from its pods.
	Stats(ctx context.Context, ws []project.Workload, o StatsOptions) ([]WorkloadStats, error)
}

// PullOptions say how the registry is reached for the pull Secret.
type PullOptions struct {
	// Insecure lists hosts that may be reached over plain HTTP.
	Insecure []string
	// UserAgent is skiff's, for the registry.
	UserAgent string
}

// DeployOptions say how Deploy deploys.
type DeployOptions struct {
	// Overrides are the user's chart values (-f, --set).
	Overrides map[string]any
	// PullSecret is the Secret the pods pull with ("": none).
	PullSecret string
	// Timeout bounds the wait for each release.
	Timeout time.Duration
}

// DeleteOptions say what Delete keeps.
type DeleteOptions struct {
	// KeepSecrets keeps the Secrets of `skiff secret` values.
	KeepSecrets bool
	// All: every workload of the project is deleted (delete --all): one
	// with no release is not an error, and the project's pull Secret goes
	// too.
	All bool
	// Timeout bounds the wait until each release's objects are gone.
	Timeout time.Duration
}

// LogOptions say which log lines Logs sends.
type LogOptions struct {
	// Container, when set, streams only containers of that name.
	Container string
	// Since, when positive, starts that long ago.
	Since time.Duration
	// Tail, when not negative, starts with that many last lines per
	// container.
	Tail int64
	// Follow keeps streaming until the context ends.
	Follow bool
	// Previous streams the previous (crashed) instance of each container.
	Previous bool
	// MaxStreams caps the concurrent streams (default 32).
	MaxStreams int
	// Notice receives messages about streams (skipped pods, reconnects);
	// may be nil.
	Notice func(string)
}

// Deployment is one deployed release.
type Deployment struct {
	Workload    string `json:"workload"`
	Environment string `json:"environment,omitempty"`
	Release     string `json:"release"`
	Namespace   string `json:"namespace"`
	Revision    int    `json:"revision"`
	Image       string `json:"image"`
	Ready       string `json:"ready"`
	Endpoint    string `json:"endpoint"`
	// URL is the public URL of an exposed workload.
	URL string `json:"url,omitempty"`
}

// Applied is what Apply deployed.
type Applied struct {
	Deployment
	// Live: the release delivers configuration to running pods without a
	// restart (liveConfig, as deployed).
	Live bool
}

// Revision is one entry of a release's history.
type Revision struct {
	Revision    int       `json:"revision"`
	Updated     time.Time `json:"updated"`
	Status      string    `json:"status"`
	Chart       string    `json:"chart"`
	Image       string    `json:"image,omitempty"`
	Description string    `json:"description"`
}

// Forward is a port-forward to a workload: to one of its ready pods, or,
// for a workload at zero pods, to the proxy in front of them.
type Forward struct {
	// Addr is the local address (host:port) forwarded.
	Addr string
	// Host is the Host header requests must carry ("": any).
	Host string
	// Via says where the forward leads, for messages.
	Via string
	// Close ends the forward.
	Close func() error
}

// LogLine is one line of a container's log.
type LogLine struct {
	Time      time.Time `json:"time"`
	Workload  string    `json:"workload"`
	Pod       string    `json:"pod"`
	Container string    `json:"container"`
	Message   string    `json:"message"`
}

// NotDeployedError says a workload has no release to act on.
type NotDeployedError struct{ Workload string }

func (e *NotDeployedError) Error() string { return e.Workload + " is not deployed" }

// NoDeployedImageError says a workload has no deployed image to reuse.
type NoDeployedImageError struct{ Workload string }

func (e *NoDeployedImageError) Error() string {
	return e.Workload + " has no deployed image to reuse; deploy it once with a build first"
}

// MissingRelayImageError says a project with events has no skiff-relay
// image to run.
type MissingRelayImageError struct{}

func (e *MissingRelayImageError) Error() string {
	return "skiff.yaml has events, and this build of skiff pins no skiff-relay image (a release does); " +
		"set events.relayImage to one you pushed (docs/events.md says how to build it)"
}
