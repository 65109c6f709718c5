package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/stats"
)

// AdminPort is the name of the container port of skiff-relay's admin
// server, which serves GET /stats (and /metrics) in every pod.
const AdminPort = "relay-admin"

// Slot is how finely each pod's skiff-relay keeps its figures: a window
// shorter than it is read as one slot.
const Slot = 10 * time.Second

// DefaultConcurrency caps the pods read at once.
const DefaultConcurrency = 8

// Pods reads each ready pod's figures from its skiff-relay (GET
// /stats?window=) through the API server's pod proxy (pods/proxy), and
// merges them per workload. Pods that are not running and ready are not
// read; a workload with none has empty figures (Window.Pods 0).
type Pods struct {
	Client    kubernetes.Interface
	Namespace string
	// Concurrency caps the pods read at once (DefaultConcurrency when 0).
	Concurrency int
	// Timeout bounds the read of one pod (5s when 0).
	Timeout time.Duration
}

var _ Reader = (*Pods)(nil)

// Read reads the pods of each target. It fails only when the pods cannot
// be listed; a pod that does not answer is named in Unread.
func (p *Pods) Read(ctx context.Context, ts []Target, window time.Duration) ([]engine.WorkloadStats, error) {
	type job struct {
		i    int
		pod  string
		port int32
	}
	out := make([]engine.WorkloadStats, len(ts))
	var jobs []job
	for i, t := range ts {
		out[i] = engine.WorkloadStats{Workload: t.Workload, Source: engine.SourcePods, Pods: map[string]stats.Window{}}
		pods, err := p.Client.CoreV1().Pods(p.Namespace).List(ctx, metav1.ListOptions{LabelSelector: t.Selector})
		if err != nil {
			return nil, fmt.Errorf("listing the pods of %s: %w", t.Workload, err)
		}
		for _, pod := range pods.Items {
			if !serving(&pod) {
				continue
			}
			port, ok := adminPort(&pod)
			if !ok {
				unread(&out[i], pod.Name, "it has no "+AdminPort+" port (no skiff-relay in front of it: metrics.proxy is off, or it was deployed before skiff measured)")
				continue
			}
			jobs = append(jobs, job{i, pod.Name, port})
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	n := p.Concurrency
	if n <= 0 {
		n = DefaultConcurrency
	}
	sem := make(chan struct{}, n)
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			w, err := p.readPod(ctx, j.pod, j.port, window)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				unread(&out[j.i], j.pod, err.Error())
				return
			}
			out[j.i].Pods[j.pod] = w
		}()
	}
	wg.Wait()
	for i := range out {
		out[i].Window = MergePods(out[i].Pods)
	}
	return out, ctx.Err()
}

// MergePods merges the figures of pods, in the order of their names.
func MergePods(pods map[string]stats.Window) stats.Window {
	names := make([]string, 0, len(pods))
	for n := range pods {
		names = append(names, n)
	}
	sort.Strings(names)
	var w stats.Window
	for _, n := range names {
		w.Merge(pods[n])
	}
	return w
}

func (p *Pods) readPod(ctx context.Context, pod string, port int32, window time.Duration) (stats.Window, error) {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, err := p.Client.CoreV1().Pods(p.Namespace).
		ProxyGet("http", pod, strconv.Itoa(int(port)), "stats", map[string]string{"window": formatWindow(max(window, Slot))}).
		DoRaw(ctx)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return stats.Window{}, fmt.Errorf("its skiff-relay did not answer in %s", timeout)
		}
		return stats.Window{}, fmt.Errorf("reading its skiff-relay's /stats: %w", err)
	}
	var w stats.Window
	if err := json.Unmarshal(body, &w); err != nil {
		return stats.Window{}, fmt.Errorf("its skiff-relay's /stats is not the figures skiff reads (%v): %.80q", err, body)
	}
	return w, nil
}

// serving says the pod runs and is ready.
func serving(pod *corev1.Pod) bool {
	if pod.Status.Phase != corev1.PodRunning || pod.DeletionTimestamp != nil {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// adminPort is the pod's relay-admin port: skiff-relay runs as a native
// sidecar (an init container that keeps running) or a container.
func adminPort(pod *corev1.Pod) (int32, bool) {
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			for _, port := range c.Ports {
				if port.Name == AdminPort {
					return port.ContainerPort, true
				}
			}
		}
	}
	return 0, false
}

func unread(st *engine.WorkloadStats, pod, why string) {
	if st.Unread == nil {
		st.Unread = map[string]string{}
	}
	st.Unread[pod] = strings.TrimSpace(why)
}
