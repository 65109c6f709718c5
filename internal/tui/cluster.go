package tui

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/skiffdev/skiff/internal/deploy"
	"github.com/skiffdev/skiff/internal/event"
	"github.com/skiffdev/skiff/internal/invoke"
	"github.com/skiffdev/skiff/internal/kube"
	"github.com/skiffdev/skiff/internal/logs"
	"github.com/skiffdev/skiff/internal/pipeline"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/target"
)

// ClusterConfig configures the real Backend.
type ClusterConfig struct {
	// Session owns every change to the cluster (rollback, delete) and
	// reads the statuses, as the command line's verbs do.
	Session   *pipeline.Session
	Namespace string
	// Workloads are the workloads shown.
	Workloads []project.Workload
	// Timeout bounds a rollback or a delete (waiting for ready / gone).
	Timeout time.Duration
	// Debounce is how long statuses wait for changes to settle before
	// being read again (default 300ms).
	Debounce time.Duration
	// Resync re-reads statuses this often even without a change, for
	// what no watch reports (default 1m).
	Resync time.Duration
	// LogTail is how many past lines each container's log starts with
	// (default 200).
	LogTail int64
	// Activity is what the Session's Events sink sends (NewActivity);
	// nil: the dashboard shows no activity.
	Activity <-chan event.Event
}

// Cluster is the Backend that talks to Kubernetes and Helm.
type Cluster struct {
	cfg     ClusterConfig
	http    *http.Client
	client  *kube.Client
	targets []target.Target

	mu       sync.Mutex
	forwards map[string]*target.Following
}

// NewCluster returns the real backend. Close it to stop its port-forwards.
func NewCluster(cfg ClusterConfig) *Cluster {
	if cfg.Debounce <= 0 {
		cfg.Debounce = 300 * time.Millisecond
	}
	if cfg.Resync <= 0 {
		cfg.Resync = time.Minute
	}
	if cfg.Session.Bus != nil && slices.ContainsFunc(cfg.Workloads, func(w project.Workload) bool { return len(w.Triggers) > 0 }) {
		// The bus tells no watch when a backlog changes.
		cfg.Resync = min(cfg.Resync, 5*time.Second)
	}
	if cfg.LogTail == 0 {
		cfg.LogTail = 200
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = deploy.DefaultTimeout
	}
	return &Cluster{cfg: cfg, http: &http.Client{Timeout: 10 * time.Second}, forwards: map[string]*target.Following{},
		client: cfg.Session.Kube, targets: cfg.Session.Targets.All(cfg.Workloads)}
}

// Close stops every port-forward.
func (c *Cluster) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for name, f := range c.forwards {
		errs = append(errs, f.Close())
		delete(c.forwards, name)
	}
	return errors.Join(errs...)
}

func (c *Cluster) workload(name string) (target.Target, error) {
	for _, t := range c.targets {
		if t.Workload() == name {
			return t, nil
		}
	}
	return nil, fmt.Errorf("the project has no workload %q", name)
}

// Statuses watches (through informers) the Deployments, pods and Helm
// release records of the project's workloads and sends every status again
// each time one of them changes, once changes have settled for
// cfg.Debounce.
func (c *Cluster) Statuses(ctx context.Context) (<-chan StatusUpdate, error) {
	cs := c.client.Clientset
	releases := make([]string, len(c.targets))
	for i, t := range c.targets {
		releases[i] = t.Release()
	}
	changed := make(chan struct{}, 1)
	poke := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	watchErrs := make(chan error, 1)
	onWatchError := func(_ *cache.Reflector, err error) {
		select {
		case watchErrs <- err:
		default:
		}
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke() },
		UpdateFunc: func(any, any) { poke() },
		DeleteFunc: func(any) { poke() },
	}
	byInstance := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(c.cfg.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = "app.kubernetes.io/instance in (" + strings.Join(releases, ",") + ")"
		}))
	// Helm keeps each revision of a release in a Secret labelled owner=helm.
	helmRecords := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(c.cfg.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = "owner=helm" }))
	for _, inf := range []cache.SharedIndexInformer{
		byInstance.Apps().V1().Deployments().Informer(),
		byInstance.Core().V1().Pods().Informer(),
		helmRecords.Core().V1().Secrets().Informer(),
	} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			return nil, fmt.Errorf("watching the workloads: %w", err)
		}
		if err := inf.SetWatchErrorHandler(onWatchError); err != nil {
			return nil, fmt.Errorf("watching the workloads: %w", err)
		}
	}
	byInstance.Start(ctx.Done())
	helmRecords.Start(ctx.Done())

	out := make(chan StatusUpdate, 1)
	go func() {
		defer close(out)
		defer byInstance.Shutdown()
		defer helmRecords.Shutdown()
		send := func(u StatusUpdate) bool {
			select {
			case out <- u:
				return true
			case <-ctx.Done():
				return false
			}
		}
		resync := time.NewTicker(c.cfg.Resync)
		defer resync.Stop()
		poke()
		for {
			select {
			case <-ctx.Done():
				return
			case err := <-watchErrs:
				if !send(StatusUpdate{Err: fmt.Errorf("watching namespace %s: %w; retrying", c.cfg.Namespace, err)}) {
					return
				}
				continue
			case <-changed:
			case <-resync.C:
			}
			// Let a burst of changes (a rollout) settle into one read.
			select {
			case <-ctx.Done():
				return
			case <-time.After(c.cfg.Debounce):
			}
			select {
			case <-changed:
			default:
			}
			if !send(c.readStatuses(ctx)) {
				return
			}
		}
	}()
	return out, nil
}

func (c *Cluster) readStatuses(ctx context.Context) StatusUpdate {
	sts, err := c.cfg.Session.Statuses(ctx, c.cfg.Workloads)
	if err != nil {
		return StatusUpdate{Err: fmt.Errorf("reading the statuses: %w", err)}
	}
	var u StatusUpdate
	for _, st := range sts {
		u.Statuses = append(u.Statuses, *st)
	}
	return u
}

// Logs follows the logs of the workload's pods, picking up new ones.
func (c *Cluster) Logs(ctx context.Context, name string) (<-chan logs.Line, error) {
	w, err := c.workload(name)
	if err != nil {
		return nil, err
	}
	out := make(chan logs.Line, 4096)
	notice := func(s string) {
		select {
		case out <- logs.Line{Time: time.Now(), Workload: name, Pod: "skiff", Message: s}:
		case <-ctx.Done():
		}
	}
	go func() {
		defer close(out)
		err := logs.New(c.client.Clientset).Stream(ctx, logs.Options{
			Namespace: c.cfg.Namespace,
			Targets:   []logs.Target{{Workload: name, Selector: w.Selector()}},
			Follow:    true,
			Tail:      c.cfg.LogTail,
			Notice:    notice,
		}, out)
		if err != nil && ctx.Err() == nil {
			notice("the log stream ended: " + err.Error() + "; restart skiff dash to follow again")
		}
	}()
	return out, nil
}

// maxEvents bounds the events shown per workload.
const maxEvents = 50

// Events lists the recent events of the workload's Deployment, Service,
// ReplicaSets and pods.
func (c *Cluster) Events(ctx context.Context, name string) ([]Event, error) {
	list, err := c.client.Clientset.CoreV1().Events(c.cfg.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing the events of namespace %s: %w", c.cfg.Namespace, err)
	}
	var out []Event
	for i := range list.Items {
		ev := &list.Items[i]
		if !ownedBy(ev.InvolvedObject, name) {
			continue
		}
		out = append(out, Event{Time: eventTime(ev), Type: ev.Type, Reason: ev.Reason,
			Object:  strings.ToLower(ev.InvolvedObject.Kind) + "/" + ev.InvolvedObject.Name,
			Message: strings.TrimSpace(ev.Message), Count: ev.Count})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	if len(out) > maxEvents {
		out = out[len(out)-maxEvents:]
	}
	return out, nil
}

// ownedBy reports whether an event is about the workload: its Deployment,
// Service or HPA (named after it), a ReplicaSet (name-HASH) or a pod
// (name-HASH-ID).
func ownedBy(o corev1.ObjectReference, workload string) bool {
	if o.Name == workload {
		return true
	}
	rest, ok := strings.CutPrefix(o.Name, workload+"-")
	if !ok {
		return false
	}
	switch o.Kind {
	case "ReplicaSet":
		return !strings.Contains(rest, "-")
	case "Pod":
		return strings.Count(rest, "-") == 1
	}
	return false
}

func eventTime(ev *corev1.Event) time.Time {
	switch {
	case !ev.LastTimestamp.IsZero():
		return ev.LastTimestamp.Time
	case !ev.EventTime.IsZero():
		return ev.EventTime.Time
	case !ev.FirstTimestamp.IsZero():
		return ev.FirstTimestamp.Time
	}
	return ev.CreationTimestamp.Time
}

// History returns the release history of the workload.
func (c *Cluster) History(ctx context.Context, name string) ([]deploy.Revision, error) {
	return c.cfg.Session.History(ctx, name)
}

// Rollback rolls the release back and waits until it is ready, as
// `skiff rollback` does.
func (c *Cluster) Rollback(ctx context.Context, name string, revision int) (int, error) {
	return c.cfg.Session.Rollback(ctx, name, revision, c.cfg.Timeout)
}

// Activity returns the session's events (cfg.Activity). The channel is
// the session's: it is not closed when ctx ends.
func (c *Cluster) Activity(context.Context) (<-chan event.Event, error) {
	return c.cfg.Activity, nil
}

// Restart rolls the pods of the workload.
func (c *Cluster) Restart(ctx context.Context, name string) error {
	w, err := c.workload(name)
	if err != nil {
		return err
	}
	return w.Restart(ctx)
}

// Delete stops the workload's port-forward and removes what `skiff
// delete` removes: its release, its triggers' consumers, its Secret.
func (c *Cluster) Delete(ctx context.Context, name string) error {
	_ = c.StopPortForward(ctx, name)
	return c.cfg.Session.Delete(ctx, pipeline.DeleteOptions{Timeout: c.cfg.Timeout}, name)
}

// StartPortForward forwards a free loopback port to the workload's port on
// its newest ready pod, following it through rollouts.
func (c *Cluster) StartPortForward(ctx context.Context, name string) (string, error) {
	c.mu.Lock()
	if f := c.forwards[name]; f != nil {
		c.mu.Unlock()
		return f.Addr, nil
	}
	c.mu.Unlock()
	w, err := c.workload(name)
	if err != nil {
		return "", err
	}
	if _, err := w.ReadyPod(ctx); err != nil {
		return "", err // say now why nothing answers
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	// Not ctx: the forward lives until StopPortForward or Close.
	f := target.Follow(context.WithoutCancel(ctx), c.client, c.cfg.Namespace, w, ln)
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.forwards[name]; old != nil { // started twice at once
		_ = f.Close()
		return old.Addr, nil
	}
	c.forwards[name] = f
	return f.Addr, nil
}

// StopPortForward stops the workload's port-forward, if any.
func (c *Cluster) StopPortForward(_ context.Context, name string) error {
	c.mu.Lock()
	f := c.forwards[name]
	delete(c.forwards, name)
	c.mu.Unlock()
	if f == nil {
		return nil
	}
	if err := f.Close(); err != nil && !strings.Contains(err.Error(), "closed") {
		return fmt.Errorf("stopping the port-forward to %s: %w", name, err)
	}
	return nil
}

// Invoke sends GET / through the workload's port-forward, or through a
// temporary one, as `skiff invoke` does.
func (c *Cluster) Invoke(ctx context.Context, name string) (*Response, error) {
	w, err := c.workload(name)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	var addr, host string
	if f := c.forwards[name]; f != nil {
		addr = f.Addr
	}
	c.mu.Unlock()
	if addr == "" {
		tmp, err := target.Forward(ctx, c.client, c.cfg.Namespace, w)
		if err != nil {
			return nil, err
		}
		defer tmp.Close()
		addr, host = tmp.Addr, tmp.Host
	}
	base := "http://" + addr
	resp, err := invoke.Do(ctx, c.http, base, invoke.Request{Method: http.MethodGet, Path: "/", Host: host})
	if err != nil {
		return nil, fmt.Errorf("GET / on %s (through %s): %w", name, addr, err)
	}
	return &Response{URL: base + "/", Status: resp.Status, Code: resp.StatusCode, Body: string(resp.Body), Duration: resp.Duration}, nil
}
