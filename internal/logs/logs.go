// Package logs follows the logs of every pod of a set of workloads: it
// watches their pods, opens one stream per container (up to a cap), drops
// streams of deleted pods, picks up new pods during a rollout, and reconnects
// a dropped stream without repeating lines. Every line goes to one channel,
// whose reader is the only writer of the output.
package logs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/skiffdev/skiff/internal/engine"
)

// Line is one log line of one container.
type Line = engine.LogLine

// Target is a workload and the label selector of its pods.
type Target struct {
	Workload string
	Selector string
}

// Options say what to stream.
type Options struct {
	Namespace string
	Targets   []Target
	// Container, when set, streams only containers of that name.
	Container string
	// Since, when positive, starts that long ago.
	Since time.Duration
	// Tail, when not negative, starts with that many last lines per container.
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

// opener opens a log stream; tests replace it.
type opener func(ctx context.Context, ns, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error)

// Streamer streams logs from a cluster.
type Streamer struct {
	Clientset kubernetes.Interface
	open      opener
	// Retry is the pause before reconnecting a dropped stream (default 1s).
	Retry time.Duration
}

// New returns a Streamer for cs.
func New(cs kubernetes.Interface) *Streamer {
	return &Streamer{Clientset: cs, open: func(ctx context.Context, ns, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
		return cs.CoreV1().Pods(ns).GetLogs(pod, opts).Stream(ctx)
	}}
}

// Stream sends log lines to out until ctx ends (with Follow) or every
// stream has ended. It does not close out.
func (s *Streamer) Stream(ctx context.Context, opts Options, out chan<- Line) error {
	if opts.MaxStreams <= 0 {
		opts.MaxStreams = 32
	}
	if opts.Notice == nil {
		opts.Notice = func(string) {}
	}
	r := &run{s: s, opts: opts, out: out, tails: map[string]context.CancelFunc{}}
	if opts.Since > 0 {
		r.since = time.Now().Add(-opts.Since)
	}
	if !opts.Follow {
		return r.once(ctx)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(opts.Targets))
	for _, t := range opts.Targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.watch(ctx, t); err != nil && ctx.Err() == nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	r.wg.Wait()
	close(errs)
	return errors.Join(collect(errs)...)
}

func collect(errs <-chan error) []error {
	var out []error
	for e := range errs {
		out = append(out, e)
	}
	return out
}

type run struct {
	s    *Streamer
	opts Options
	out  chan<- Line

	// since is --since as an absolute time, computed once, so a reopened
	// stream starts where the first one did.
	since time.Time

	mu      sync.Mutex
	tails   map[string]context.CancelFunc // pod/container -> cancel
	skipped map[string]bool
	wg      sync.WaitGroup
}

// once streams what is there now, without following.
func (r *run) once(ctx context.Context) error {
	for _, t := range r.opts.Targets {
		pods, err := r.s.Clientset.CoreV1().Pods(r.opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: t.Selector})
		if err != nil {
			return fmt.Errorf("listing the pods of %s: %w", t.Workload, err)
		}
		for i := range pods.Items {
			r.startPod(ctx, t.Workload, &pods.Items[i])
		}
	}
	r.wg.Wait()
	return nil
}

// watch follows the pods of one target, starting and stopping tails.
func (r *run) watch(ctx context.Context, t Target) error {
	pods := r.s.Clientset.CoreV1().Pods(r.opts.Namespace)
	listed := false
	for ctx.Err() == nil {
		list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: t.Selector})
		if err != nil {
			if !listed {
				return fmt.Errorf("listing the pods of %s: %w", t.Workload, err)
			}
			// The watch expired and the re-list failed: keep trying, the
			// streams already open go on meanwhile.
			if ctx.Err() == nil {
				r.opts.Notice(fmt.Sprintf("listing the pods of %s: %v; retrying", t.Workload, err))
			}
			sleep(ctx, r.s.retry())
			continue
		}
		listed = true
		for i := range list.Items {
			r.startPod(ctx, t.Workload, &list.Items[i])
		}
		w, err := pods.Watch(ctx, metav1.ListOptions{LabelSelector: t.Selector, ResourceVersion: list.ResourceVersion})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.opts.Notice(fmt.Sprintf("watching the pods of %s: %v; retrying", t.Workload, err))
			sleep(ctx, r.s.retry())
			continue
		}
		r.follow(ctx, t.Workload, w)
		w.Stop()
	}
	return nil
}

// follow handles pod events until the watch ends or ctx does.
func (r *run) follow(ctx context.Context, workload string, w watch.Interface) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.ResultChan():
			if !ok {
				return
			}
			pod, isPod := ev.Object.(*corev1.Pod)
			if !isPod {
				continue
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				if pod.DeletionTimestamp == nil {
					r.startPod(ctx, workload, pod)
				}
			case watch.Deleted:
				r.stopPod(pod.Name)
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (s *Streamer) retry() time.Duration {
	if s.Retry > 0 {
		return s.Retry
	}
	return time.Second
}

// containers are the containers of pod that serve while it runs: its
// containers and its sidecars (init containers that restart always, such
// as skiff-relay), with whether each has started.
func containers(pod *corev1.Pod) ([]corev1.Container, map[string]bool) {
	started := map[string]bool{}
	for _, sts := range [][]corev1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses} {
		for _, st := range sts {
			started[st.Name] = st.State.Running != nil || st.State.Terminated != nil || st.LastTerminationState.Terminated != nil
		}
	}
	cs := append([]corev1.Container(nil), pod.Spec.Containers...)
	for _, c := range pod.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			cs = append(cs, c)
		}
	}
	return cs, started
}

// startPod starts a tail for each container (and sidecar) of pod that has
// started and has no tail yet.
func (r *run) startPod(ctx context.Context, workload string, pod *corev1.Pod) {
	cs, started := containers(pod)
	for _, c := range cs {
		if r.opts.Container != "" && c.Name != r.opts.Container {
			continue
		}
		if !started[c.Name] {
			continue
		}
		key := pod.Name + "/" + c.Name
		r.mu.Lock()
		if _, running := r.tails[key]; running {
			r.mu.Unlock()
			continue
		}
		if len(r.tails) >= r.opts.MaxStreams {
			if r.skipped == nil {
				r.skipped = map[string]bool{}
			}
			if !r.skipped[key] {
				r.skipped[key] = true
				r.opts.Notice(fmt.Sprintf("not following %s: at most %d streams at once", key, r.opts.MaxStreams))
			}
			r.mu.Unlock()
			continue
		}
		tctx, cancel := context.WithCancel(ctx)
		r.tails[key] = cancel
		r.mu.Unlock()
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer func() {
				r.mu.Lock()
				delete(r.tails, key)
				r.mu.Unlock()
				cancel()
			}()
			r.tail(tctx, workload, pod.Name, c.Name)
		}()
	}
}

func (r *run) stopPod(pod string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for key, cancel := range r.tails {
		if strings.HasPrefix(key, pod+"/") {
			cancel()
		}
	}
}

// tail streams one container, reconnecting after a drop (with Follow)
// from the last timestamp seen, skipping the lines already sent.
func (r *run) tail(ctx context.Context, workload, pod, container string) {
	var last time.Time
	seenAtLast := 0 // lines already sent with timestamp == last
	first := true
	for ctx.Err() == nil {
		opts := &corev1.PodLogOptions{Container: container, Follow: r.opts.Follow, Timestamps: true, Previous: r.opts.Previous}
		if last.IsZero() {
			// Nothing received yet (the first open, or a retry before any
			// line): start as the user asked.
			if r.opts.Tail >= 0 {
				n := r.opts.Tail
				opts.TailLines = &n
			}
			if !r.since.IsZero() {
				opts.SinceTime = &metav1.Time{Time: r.since}
			}
		} else {
			opts.SinceTime = &metav1.Time{Time: last}
		}
		rc, err := r.s.open(ctx, r.opts.Namespace, pod, opts)
		if err != nil {
			if ctx.Err() != nil || !r.opts.Follow {
				return
			}
			if first {
				r.opts.Notice(fmt.Sprintf("%s/%s: %v", pod, container, err))
			}
			first = false
			sleep(ctx, r.s.retry())
			continue
		}
		skip := seenAtLast
		resumed := !first
		first = false
		sc := bufio.NewScanner(rc)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			ts, msg := split(sc.Text())
			if resumed && !ts.IsZero() {
				// SinceTime has second precision: drop what was sent.
				if ts.Before(last) {
					continue
				}
				if ts.Equal(last) && skip > 0 {
					skip--
					continue
				}
			}
			if !ts.IsZero() {
				if ts.Equal(last) {
					seenAtLast++
				} else {
					last, seenAtLast = ts, 1
				}
			}
			select {
			case r.out <- Line{Time: ts, Workload: workload, Pod: pod, Container: container, Message: msg}:
			case <-ctx.Done():
				rc.Close()
				return
			}
		}
		rc.Close()
		if !r.opts.Follow || ctx.Err() != nil {
			return
		}
		if done, _ := r.containerDone(ctx, pod, container); done {
			return
		}
		sleep(ctx, r.s.retry())
	}
}

// containerDone reports whether a container will write no more: its pod
// is gone or finished.
func (r *run) containerDone(ctx context.Context, pod, container string) (bool, error) {
	p, err := r.s.Clientset.CoreV1().Pods(r.opts.Namespace).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		return true, err
	}
	if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return true, nil
	}
	return false, nil
}

// split separates the RFC 3339 timestamp the kubelet puts before each line.
func split(s string) (time.Time, string) {
	i := strings.IndexByte(s, ' ')
	if i < 0 {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, ""
		}
		return time.Time{}, s
	}
	t, err := time.Parse(time.RFC3339Nano, s[:i])
	if err != nil {
		return time.Time{}, s
	}
	return t, s[i+1:]
}
