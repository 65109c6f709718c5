// Package target is the one place that knows how a deployed workload runs
// on the cluster: which objects hold its pods, how to tell its state
// (including Idle, deliberately at zero pods), which pod to talk to, how to
// restart it and where other workloads reach it. Status, logs, invoke,
// secret, the dashboard and deploy's summary all ask a Target instead of
// assuming "a Deployment and a Service named after the workload".
//
// A workload deployed with skiff's base chart is a Deployment target; one
// with its own chart/ is a Chart target, whose objects are read from its
// release; one with `scale` is a Scaled target (KEDA, down to zero pods).
// A target also says how a release of it just applied is waited for, and
// what deleting it removes beside its release: no code outside this
// package switches on the kinds.
package target

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/skiffdev/skiff/internal/chart"
	"github.com/skiffdev/skiff/internal/deploy"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/kube"
	"github.com/skiffdev/skiff/internal/project"
)

// States of a workload.
const (
	StateReady       = engine.StateReady
	StateProgressing = engine.StateProgressing
	StateDegraded    = engine.StateDegraded
	StateFailed      = engine.StateFailed
	StateNotDeployed = engine.StateNotDeployed
	// StateIdle is a deployed workload deliberately at zero pods.
	StateIdle = engine.StateIdle
)

// Status is what runs of one workload.
type Status = engine.Status

// EventLag is a workload's backlog on the event bus: the events of its
// triggers waiting or in flight, and its dead letters.
type EventLag = engine.EventLag

// Target is how one workload runs.
type Target interface {
	// Workload is the workload's name.
	Workload() string
	// Release is its Helm release.
	Release() string
	// Selector is the label selector of its pods.
	Selector() string
	// Port is the container port requests go to.
	Port() int
	// Endpoint is the in-cluster URL other workloads reach it at.
	Endpoint() string
	// Status reads what runs of release rel (nil: not deployed).
	Status(ctx context.Context, rel *deploy.Record) (*Status, error)
	// ReadyPod returns one of its running, ready pods.
	ReadyPod(ctx context.Context) (*corev1.Pod, error)
	// Restart rolls its pods; it fails when nothing of it is deployed.
	Restart(ctx context.Context) error
	// Wait returns once release rel of it, just applied, serves: for a
	// Deployment, rolled out and every resource ready; for a scaled one,
	// also KEDA's objects accepted and, at zero pods, woken and answering.
	// ctx bounds it (its cause is the error then).
	Wait(ctx context.Context, rel *deploy.Record) error
	// Remains is what deleting it removes beside its release.
	Remains() Remains
}

// Remains is what a workload leaves on the cluster that no release holds,
// which deleting it removes too.
type Remains struct {
	// Secrets are the Secrets of its `skiff secret` values.
	Secrets []string
	// Consumers: its triggers' durable consumers on the event bus (each
	// keeps every later event of its type, unread, until removed).
	Consumers bool
	// Listener: the listener skiff added to its Gateway for its host
	// (gateway.addListeners), removed with Cluster.RemoveListener.
	Listener bool
}

// Cluster is where targets run.
type Cluster struct {
	Clientset kubernetes.Interface
	// Dynamic reads the serverless engines' objects (nil: not read).
	Dynamic   dynamic.Interface
	Namespace string
	// Project is the project (resolved for its environment).
	Project *project.Project
	// Root is the project's folder (to find a workload's own chart).
	Root string
	// Releases reads the workloads' releases (what an own chart holds) and
	// waits for their resources; nil: not read, and a wait watches the
	// Deployments alone.
	Releases Releases
	// Client port-forwards (to wake a scaled workload through its
	// interceptor); nil: no wake-up.
	Client *kube.Client
}

// For returns the target of a workload.
func (c *Cluster) For(w *project.Workload) Target {
	base := base{c: c, w: *w, release: chart.ReleaseName(c.Project, w)}
	if hasOwnChart(c.Root, w) {
		return &Chart{base: base}
	}
	if w.Scale != nil {
		return &Scaled{Deployment{base: base}}
	}
	return &Deployment{base: base}
}

// All returns the targets of ws.
func (c *Cluster) All(ws []project.Workload) []Target {
	out := make([]Target, len(ws))
	for i := range ws {
		out[i] = c.For(&ws[i])
	}
	return out
}

func hasOwnChart(root string, w *project.Workload) bool {
	if root == "" {
		return false
	}
	fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(w.Path), chart.OwnChartDir, "Chart.yaml"))
	return err == nil && !fi.IsDir()
}

// NotRunningError says nothing of a workload runs to act on.
type NotRunningError struct{ Msg string }

func (e *NotRunningError) Error() string { return e.Msg }

// Forwarded is a port-forward to a workload: to one of its ready pods, or,
// for a workload at zero pods, to the proxy in front of them, which routes
// on the Host header and holds the request while the workload wakes.
type Forwarded struct {
	*kube.Forward
	// Host is the Host header requests must carry ("": any).
	Host string
	// Via says where the forward leads, for messages.
	Via string
}

// Fronted is a target with a proxy in front of its pods.
type Fronted interface {
	// Front forwards a free loopback port to the proxy.
	Front(ctx context.Context, kc *kube.Client) (*Forwarded, error)
}

// Forward forwards a free loopback port to t's port on one of its ready
// pods; a Fronted target with none is forwarded to its proxy instead.
func Forward(ctx context.Context, kc *kube.Client, namespace string, t Target) (*Forwarded, error) {
	pod, err := t.ReadyPod(ctx)
	if err != nil {
		if fr, ok := t.(Fronted); ok {
			return fr.Front(ctx, kc)
		}
		return nil, err
	}
	fw, err := kc.ForwardPort(ctx, namespace, pod.Name, t.Port())
	if err != nil {
		return nil, err
	}
	return &Forwarded{Forward: fw, Via: "pod " + pod.Name}, nil
}

// Releases reads Helm releases and waits for what they hold;
// *deploy.Deployer is the real one.
type Releases interface {
	Get(ctx context.Context, name, namespace string) (*deploy.Record, error)
	// WaitReady waits until every resource of rel is ready, as Helm's
	// readiness checks see it.
	WaitReady(ctx context.Context, rel *deploy.Record) error
}

// Read reads the status of t: its release from r, what runs from the
// cluster.
func Read(ctx context.Context, r Releases, t Target, namespace string) (*Status, error) {
	rel, err := r.Get(ctx, t.Release(), namespace)
	var nf *deploy.NotFoundError
	if errors.As(err, &nf) {
		rel, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	return t.Status(ctx, rel)
}

// base is what every target shares: a workload of a project, its release.
type base struct {
	c       *Cluster
	w       project.Workload
	release string
}

func (b *base) Workload() string { return b.w.Name }
func (b *base) Release() string  { return b.release }
func (b *base) Port() int        { return b.w.Port }

// Selector: every chart skiff deploys labels its pods with the release
// (Helm's convention, app.kubernetes.io/instance).
func (b *base) Selector() string { return chart.Selector(b.release) }

func (b *base) Endpoint() string { return chart.ServiceURL(&b.w, b.c.Namespace) }

// Remains: the Secret of its values, its triggers' consumers, and the
// Secret cert-manager wrote its certificate into (tls auto; cert-manager
// leaves it behind when its Certificate goes with the release).
func (b *base) Remains() Remains {
	r := Remains{Secrets: []string{chart.SecretName(b.w.Name)}, Consumers: len(b.w.Triggers) > 0}
	if x := b.c.Project.Exposure(&b.w); x != nil && !hasOwnChart(b.c.Root, &b.w) {
		if x.TLS.Mode == project.TLSAuto {
			r.Secrets = append(r.Secrets, project.CertificateSecret(b.w.Name))
		}
		r.Listener = x.AddedListener(b.w.Name, b.c.Namespace) != ""
	}
	return r
}

// waitResources waits for every resource of rel as Helm's checks see them,
// when the releases can be read.
func (b *base) waitResources(ctx context.Context, rel *deploy.Record) error {
	if b.c.Releases == nil {
		return nil
	}
	return b.c.Releases.WaitReady(ctx, rel)
}

// newStatus fills in what the release says.
func (b *base) newStatus(rel *deploy.Record) *Status {
	st := &Status{Workload: b.w.Name, Kind: b.w.Kind, Release: b.release, Namespace: b.c.Namespace,
		Environment: b.c.Project.Env, State: StateNotDeployed}
	if rel == nil {
		return st
	}
	st.Revision, st.Status, st.Image = rel.Version, rel.Info.Status.String(), deploy.ImageOf(rel)
	st.Updated = rel.Info.LastDeployed.Time
	st.Endpoint = b.Endpoint()
	return st
}

// ReadyPod returns a running, ready pod of the target.
func (b *base) ReadyPod(ctx context.Context) (*corev1.Pod, error) {
	pods, err := b.c.Clientset.CoreV1().Pods(b.c.Namespace).List(ctx, metav1.ListOptions{LabelSelector: b.Selector()})
	if err != nil {
		return nil, err
	}
	for i := range pods.Items {
		if p := &pods.Items[i]; kube.PodReady(p) {
			return p, nil
		}
	}
	if len(pods.Items) == 0 {
		return nil, fmt.Errorf("%s has no pods in namespace %s; `skiff status %s` shows why", b.w.Name, b.c.Namespace, b.w.Name)
	}
	return nil, fmt.Errorf("no pod of %s is ready in namespace %s; `skiff status %s` shows why", b.w.Name, b.c.Namespace, b.w.Name)
}

// restarts counts the container restarts of the target's pods.
func (b *base) restarts(ctx context.Context, selector string) (int32, error) {
	pods, err := b.c.Clientset.CoreV1().Pods(b.c.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return 0, err
	}
	var n int32
	for _, p := range pods.Items {
		for _, c := range p.Status.ContainerStatuses {
			n += c.RestartCount
		}
	}
	return n, nil
}

// summarize sets st.State from the release and the pod counts.
func (b *base) summarize(ctx context.Context, st *Status, rel *deploy.Record, rolledOut bool, selector string) {
	switch {
	case rel.Info.Status == deploy.StatusFailed:
		st.State = StateFailed
	case rel.Info.Status.IsPending():
		st.State = StateProgressing
	case st.Desired == 0 && st.Ready == 0 && rolledOut:
		st.State = StateIdle
	case st.Ready == st.Desired && rolledOut:
		st.State = StateReady
	default:
		st.Problems, _ = kube.Diagnose(ctx, b.c.Clientset, b.c.Namespace, selector, 5)
		st.State = StateProgressing
		for _, p := range st.Problems {
			if p.Fatal() {
				st.State = StateDegraded
			}
		}
	}
}
