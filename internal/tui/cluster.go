package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/skiffdev/skiff/internal/deploy"
	"github.com/skiffdev/skiff/internal/kube"
	"github.com/skiffdev/skiff/internal/logs"
)

// ClusterWorkload is a workload of the project as the cluster backend
// finds it: its Deployment and Service are named after it, its pods carry
// app.kubernetes.io/instance=Release.
type ClusterWorkload struct {
	Name     string
	Kind     string
	Release  string
	Port     int
	Endpoint string // in-cluster URL
}

// ClusterConfig configures the real Backend.
type ClusterConfig struct {
	Client    *kube.Client
	Deployer  *deploy.Deployer
	Namespace string
	Workloads []ClusterWorkload
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
}

// Cluster is the Backend that talks to Kubernetes and Helm.
type Cluster struct {
	cfg  ClusterConfig
	http *http.Client

	mu       sync.Mutex
	forwards map[string]*kube.Forward
}

// NewCluster returns the real backend. Close it to stop its port-forwards.
func NewCluster(cfg ClusterConfig) *Cluster {
	if cfg.Debounce <= 0 {
		cfg.Debounce = 300 * time.Millisecond
	}
	if cfg.Resync <= 0 {
		cfg.Resync = time.Minute
	}
	if cfg.LogTail == 0 {
		cfg.LogTail = 200
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Minute
	}
	return &Cluster{cfg: cfg, http: &http.Client{Timeout: 10 * time.Second}, forwards: map[string]*kube.Forward{}}
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

func (c *Cluster) workload(name string) (ClusterWorkload, error) {
	for _, w := range c.cfg.Workloads {
		if w.Name == name {
			return w, nil
		}
	}
	return ClusterWorkload{}, fmt.Errorf("the project has no workload %q", name)
}

func selector(w ClusterWorkload) string { return "app.kubernetes.io/instance=" + w.Release }

// Statuses watches (through informers) the Deployments, pods and Helm
// release records of the project's workloads and sends every status again
// each time one of them changes, once changes have settled for
// cfg.Debounce.
func (c *Cluster) Statuses(ctx context.Context) (<-chan StatusUpdate, error) {
	cs := c.cfg.Client.Clientset
	releases := make([]string, len(c.cfg.Workloads))
	for i, w := range c.cfg.Workloads {
		releases[i] = w.Release
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
	var u StatusUpdate
	for _, w := range c.cfg.Workloads {
		st, err := c.cfg.Deployer.StatusOf(ctx, c.cfg.Client.Clientset, w.Release, c.cfg.Namespace, w.Name, w.Kind, w.Endpoint)
		if err != nil {
			return StatusUpdate{Err: fmt.Errorf("reading the status of %s: %w", w.Name, err)}
		}
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
		err := logs.New(c.cfg.Client.Clientset).Stream(ctx, logs.Options{
			Namespace: c.cfg.Namespace,
			Targets:   []logs.Target{{Workload: name, Selector: selector(w)}},
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
	list, err := c.cfg.Client.Clientset.CoreV1().Events(c.cfg.Namespace).List(ctx, metav1.ListOptions{})
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
func (c *Cluster) History(_ context.Context, name string) ([]deploy.Revision, error) {
	w, err := c.workload(name)
	if err != nil {
		return nil, err
	}
	return c.cfg.Deployer.History(w.Release, c.cfg.Namespace)
}

// Rollback rolls the release back and waits until it is ready.
func (c *Cluster) Rollback(_ context.Context, name string, revision int) (int, error) {
	w, err := c.workload(name)
	if err != nil {
		return 0, err
	}
	return c.cfg.Deployer.Rollback(w.Release, c.cfg.Namespace, revision, c.cfg.Timeout)
}

// Restart rolls the pods of the workload's Deployment.
func (c *Cluster) Restart(ctx context.Context, name string) error {
	ok, err := c.cfg.Client.RestartDeployment(ctx, c.cfg.Namespace, name)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("there is no Deployment %s in namespace %s to restart; run `skiff deploy %s` first", name, c.cfg.Namespace, name)
	}
	return nil
}

// Delete uninstalls the workload's release and stops its port-forward.
func (c *Cluster) Delete(ctx context.Context, name string) error {
	w, err := c.workload(name)
	if err != nil {
		return err
	}
	_ = c.StopPortForward(ctx, name)
	return c.cfg.Deployer.Uninstall(w.Release, c.cfg.Namespace, c.cfg.Timeout)
}

// StartPortForward forwards a free loopback port to the workload's port on
// one of its ready pods.
func (c *Cluster) StartPortForward(ctx context.Context, name string) (string, error) {
	c.mu.Lock()
	if f := c.forwards[name]; f != nil {
		c.mu.Unlock()
		return f.Addr, nil
	}
	c.mu.Unlock()
	f, err := c.forward(ctx, name)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.forwards[name]; old != nil { // started twice at once
		_ = f.Close()
		return old.Addr, nil
	}
	c.forwards[name] = f
	return f.Addr, nil
}

func (c *Cluster) forward(ctx context.Context, name string) (*kube.Forward, error) {
	w, err := c.workload(name)
	if err != nil {
		return nil, err
	}
	pod, err := c.cfg.Client.ReadyPod(ctx, c.cfg.Namespace, selector(w))
	if err != nil {
		return nil, err
	}
	return c.cfg.Client.ForwardPort(ctx, c.cfg.Namespace, pod.Name, w.Port)
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

// maxBody bounds the response body Invoke keeps.
const maxBody = 64 << 10

// Invoke sends GET / through the workload's port-forward, or through a
// temporary one.
func (c *Cluster) Invoke(ctx context.Context, name string) (*Response, error) {
	c.mu.Lock()
	f := c.forwards[name]
	c.mu.Unlock()
	if f == nil {
		tmp, err := c.forward(ctx, name)
		if err != nil {
			return nil, err
		}
		defer tmp.Close()
		f = tmp
	}
	url := "http://" + f.Addr + "/"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET / on %s (through %s): %w", name, f.Addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("reading the response of %s: %w", name, err)
	}
	return &Response{URL: url, Status: resp.Status, Code: resp.StatusCode, Body: string(body), Duration: time.Since(start)}, nil
}
