// Package cluster is the dashboard's Backend on the project's cluster
// (tui.Backend): it acts through the pipeline.Session (rollback, delete,
// statuses: as the command line's verbs do) and watches the cluster with
// client-go. package factory builds it and hands it to `skiff dash`
// through cmdutil.Factory, so that the command layer and package tui
// import neither.
package cluster

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

	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/event"
	"github.com/skiffdev/skiff/internal/invoke"
	"github.com/skiffdev/skiff/internal/kube"
	"github.com/skiffdev/skiff/internal/logs"
	"github.com/skiffdev/skiff/internal/pipeline"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/target"
	"github.com/skiffdev/skiff/internal/tui"
)

// Config configures the Backend beyond what the dashboard says
// (tui.ClusterConfig); tests shorten its periods.
type Config struct {
	tui.ClusterConfig
	// Session owns every change to the cluster (rollback, delete) and
	// reads the statuses, as the command line's verbs do.
	Session *pipeline.Session
	// Debounce is how long statuses wait for changes to settle before
	// being read again (default 300ms).
	Debounce time.Duration
	// Resync re-reads statuses this often even without a change, for
	// what no watch reports (default 1m).
	Resync time.Duration
	// LogTail is how many past lines each container's log starts with
	// (default 200).
	LogTail int64
	// SampleEvery is how often Serving samples (default
	// tui.SampleEvery).
	SampleEvery time.Duration
}

// Cluster is the Backend that talks to Kubernetes and Helm.
type Cluster struct {
	cfg     Config
	http    *http.Client
	client  *kube.Client
	targets []target.Target

	mu       sync.Mutex
	forwards map[string]*target.Following
}

var _ tui.Cluster = (*Cluster)(nil)

// New returns the real backend. Close it to stop its port-forwards.
func New(cfg Config) *Cluster {
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
	if cfg.SampleEvery <= 0 {
		cfg.SampleEvery = tui.SampleEvery
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = engine.DefaultTimeout
	}
	return &Cluster{cfg: cfg, http: &http.Client{Timeout: 10 * time.Second}, forwards: map[string]*target.Following{},
		client: cfg.Session.Kube, targets: cfg.Session.Targets.All(cfg.Workloads)}
}

// Context is the kubeconfig context of the session's cluster.
func (c *Cluster) Context() string { return c.client.ContextName }

// Release is the name of the workload's release ("" for a workload the
// project does not have).
func (c *Cluster) Release(workload string) string {
	w, err := c.workload(workload)
	if err != nil {
		return ""
	}
	return w.Release()
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
func (c *Cluster) Statuses(ctx context.Context) (<-chan tui.StatusUpdate, error) {
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

	out := make(chan tui.StatusUpdate, 1)
	go func() {
		defer close(out)
		defer byInstance.Shutdown()
		defer helmRecords.Shutdown()
		send := func(u tui.StatusUpdate) bool {
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
				if !send(tui.StatusUpdate{Err: fmt.Errorf("watching namespace %s: %w; retrying", c.cfg.Namespace, err)}) {
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

func (c *Cluster) readStatuses(ctx context.Context) tui.StatusUpdate {
	sts, err := c.cfg.Session.Statuses(ctx, c.cfg.Workloads)
	if err != nil {
		return tui.StatusUpdate{Err: fmt.Errorf("reading the statuses: %w", err)}
	}
	var u tui.StatusUpdate
	for _, st := range sts {
		u.Statuses = append(u.Statuses, *st)
	}
	return u
}

// Logs follows the logs of the workload's pods, picking up new ones.
func (c *Cluster) Logs(ctx context.Context, name string) (<-chan engine.LogLine, error) {
	w, err := c.workload(name)
	if err != nil {
		return nil, err
	}
	out := make(chan engine.LogLine, 4096)
	notice := func(s string) {
		select {
		case out <- engine.LogLine{Time: time.Now(), Workload: name, Pod: "skiff", Message: s}:
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
func (c *Cluster) Events(ctx context.Context, name string) ([]tui.Event, error) {
	list, err := c.client.Clientset.CoreV1().Events(c.cfg.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing the events of namespace %s: %w", c.cfg.Namespace, err)
	}
	var out []tui.Event
	for i := range list.Items {
		ev := &list.Items[i]
		if !ownedBy(ev.InvolvedObject, name) {
			continue
		}
		out = append(out, tui.Event{Time: eventTime(ev), Type: ev.Type, Reason: ev.Reason,
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
func (c *Cluster) History(ctx context.Context, name string) ([]engine.Revision, error) {
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

// Serving samples how the workloads serve each SampleEvery, over that
// window (read from the pods' skiff-relay), or over a minute when read
// from a Prometheus (whose scrapes are further apart), until ctx ends.
func (c *Cluster) Serving(ctx context.Context) (<-chan tui.ServingUpdate, error) {
	every := c.cfg.SampleEvery
	window := every
	if c.cfg.Session.Project.Metrics.PrometheusURL() != "" {
		window = max(every, time.Minute)
	}
	out := make(chan tui.ServingUpdate, 1)
	go func() {
		defer close(out)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			read, err := c.cfg.Session.Stats(ctx, c.cfg.Workloads, engine.StatsOptions{Window: window})
			u := tui.ServingUpdate{At: time.Now(), Window: window, Stats: read, Err: err}
			if ctx.Err() != nil {
				return
			}
			select {
			case out <- u:
			case <-ctx.Done():
				return
			}
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
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
func (c *Cluster) Invoke(ctx context.Context, name string) (*tui.Response, error) {
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
	return &tui.Response{URL: base + "/", Status: resp.Status, Code: resp.StatusCode, Body: string(resp.Body), Duration: resp.Duration}, nil
}
