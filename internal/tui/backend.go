// Package tui is skiff's terminal dashboard (`skiff dash`): a bubbletea
// program showing the workloads of a project, the live logs, events and
// release history of the selected one, and actions on it.
//
// The model never does I/O itself: every side effect is a tea.Cmd that
// calls the Backend and returns a message. Model holds what is the
// screen's (selection, pane, filter, overlays, the message line) and a
// child per workload (workload.go: its status, logs, events, history,
// port-forward, running action), to which it routes the messages about
// that workload. The real Backend (package tui/cluster) acts through
// the session (rollback, delete, statuses: as the verbs do) and watches
// the cluster; main builds it and the command hands it to New (Cluster,
// ClusterConfig); tests use a fake. The package names only engine's
// values and the events of package event, and imports nothing that
// reaches a cluster.
package tui

import (
	"context"
	"time"

	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/event"
	"github.com/skiffdev/skiff/internal/project"
)

// Backend is everything the dashboard asks of the outside world.
//
// Statuses and Logs are subscriptions: they return a channel the backend
// writes to until ctx ends, then closes. Every other method is one call.
type Backend interface {
	// Statuses sends the status of every workload, in the order of
	// Options.Workloads, each time something about them changes.
	Statuses(ctx context.Context) (<-chan StatusUpdate, error)
	// Logs follows the log lines of every pod of a workload.
	Logs(ctx context.Context, workload string) (<-chan engine.LogLine, error)
	// Events returns the recent Kubernetes events of the workload's
	// Deployment, ReplicaSets and pods, oldest first.
	Events(ctx context.Context, workload string) ([]Event, error)
	// History returns the release history of the workload, oldest first.
	History(ctx context.Context, workload string) ([]engine.Revision, error)
	// Rollback rolls the workload back to revision and returns the new
	// revision number Helm recorded.
	Rollback(ctx context.Context, workload string, revision int) (int, error)
	// Restart restarts the pods of the workload.
	Restart(ctx context.Context, workload string) error
	// Delete uninstalls the workload's release.
	Delete(ctx context.Context, workload string) error
	// StartPortForward forwards a local port to the workload's port and
	// returns the local address.
	StartPortForward(ctx context.Context, workload string) (addr string, err error)
	// StopPortForward stops the workload's port-forward.
	StopPortForward(ctx context.Context, workload string) error
	// Invoke sends GET / to the workload (through its port-forward, or a
	// temporary one) and returns the response.
	Invoke(ctx context.Context, workload string) (*Response, error)
	// Activity is a subscription to what the actions report as they run
	// (Rollback, Delete: the session's events, the ones the command
	// line's progress and -o json print).
	Activity(ctx context.Context) (<-chan event.Event, error)
	// Serving is a subscription to how the workloads serve: a sample of
	// every workload's figures over a short window, each SampleEvery.
	Serving(ctx context.Context) (<-chan ServingUpdate, error)
}

// SampleEvery is how often the dashboard samples how the workloads serve.
const SampleEvery = 10 * time.Second

// ServingUpdate is one sample of the Serving subscription: what each
// workload served over Window up to At, or the error that kept it from
// being read.
type ServingUpdate struct {
	At     time.Time
	Window time.Duration
	Stats  []engine.WorkloadStats
	Err    error
}

// ClusterConfig is what the backend on the project's cluster is opened
// with (cmdutil.Factory.Dashboard).
type ClusterConfig struct {
	// Namespace is the project's.
	Namespace string
	// Workloads are the workloads shown.
	Workloads []project.Workload
	// Timeout bounds a rollback or a delete (waiting for ready / gone).
	Timeout time.Duration
	// Activity is what the session's Events sink sends (NewActivity);
	// nil: the dashboard shows no activity.
	Activity <-chan event.Event
}

// Cluster is the Backend on the project's cluster (package tui/cluster),
// with what the dashboard's header and rows name. Close it to stop its
// port-forwards.
type Cluster interface {
	Backend
	// Context is the kubeconfig context of the cluster.
	Context() string
	// Release is the name of a workload's release.
	Release(workload string) string
	Close() error
}

// StatusUpdate is one message of the Statuses subscription: either the
// statuses of every workload or the error that kept them from being read.
type StatusUpdate struct {
	Statuses []engine.Status
	Err      error
}

// Event is a Kubernetes event about a workload.
type Event struct {
	Time    time.Time
	Type    string // Normal or Warning
	Reason  string
	Object  string // kind/name, e.g. pod/orders-7d9f-abcde
	Message string
	Count   int32
}

// Response is what Invoke got back.
type Response struct {
	URL      string
	Status   string // e.g. "200 OK"
	Code     int
	Body     string
	Duration time.Duration
}

// Workload is a workload the dashboard shows before its first status.
type Workload struct {
	Name string
	Kind string
}
