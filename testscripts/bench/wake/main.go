// Command wake measures a scaled workload on the test cluster: how long
// the first request takes after it reached zero pods (and where the time
// goes), and what the KEDA HTTP add-on's interceptor adds to a request
// while it runs, against calling its pod directly. testscripts/bench/scale.sh
// deploys the workload and runs it.
//
//	go run ./testscripts/bench/wake -n shop -workload hello -wakes 10 -rate 50 -requests 1000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/internal/kube"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/target"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "wake:", err)
		os.Exit(1)
	}
}

func run() error {
	ns := flag.String("n", "", "namespace")
	workload := flag.String("workload", "hello", "the scaled workload")
	release := flag.String("release", "", "its Helm release, <project>-<workload>")
	wakes := flag.Int("wakes", 10, "wake-ups to measure")
	rate := flag.Int("rate", 50, "requests per second on the warm path")
	requests := flag.Int("requests", 1000, "requests on each warm path")
	path := flag.String("path", "/", "the path to GET")
	want := flag.String("want", "", "text the answer must hold")
	label := flag.String("label", "go", "what to call the workload in the output")
	flag.Parse()
	if *ns == "" || *release == "" {
		return errors.New("-n and -release are required")
	}
	ctx := context.Background()
	kc, err := kube.New(kube.Options{})
	if err != nil {
		return err
	}
	b := &bench{kc: kc, ns: *ns, workload: *workload, selector: "app.kubernetes.io/instance=" + *release,
		path: *path, want: *want, host: *workload + "." + *ns}
	front, err := b.forwardInterceptor(ctx)
	if err != nil {
		return err
	}
	defer front.Close()

	var total, decide, created, started, ready []time.Duration
	for i := range *wakes {
		if err := b.waitZero(ctx, 5*time.Minute); err != nil {
			return err
		}
		w, err := b.wake(ctx, "http://"+front.Addr)
		if err != nil {
			return fmt.Errorf("wake %d: %w", i+1, err)
		}
		fmt.Fprintf(os.Stderr, "wake %d: %s (scaled %s, pod %s, started %s, ready %s)\n", i+1,
			ms(w.answered), ms(w.scaled), ms(w.created), ms(w.started), ms(w.ready))
		total, decide, created, started, ready = append(total, w.answered), append(decide, w.scaled),
			append(created, w.created), append(started, w.started), append(ready, w.ready)
	}
	fmt.Printf("| wake from zero, %s: first 200 after 0 pods | %d | %s | %s | %s |\n", *label, len(total), ms(pct(total, 50)), ms(pct(total, 90)), ms(slices.Max(total)))
	fmt.Printf("\nmedian of a wake-up, %s, from the request: KEDA scaled the Deployment %s, pod created %s, container started %s, pod ready %s, answer %s\n\n",
		*label, ms(pct(decide, 50)), ms(pct(created, 50)), ms(pct(started, 50)), ms(pct(ready, 50)), ms(pct(total, 50)))

	if *requests == 0 {
		return nil
	}
	// The warm path: keep it awake (requests straight to the pod are not
	// counted), then the same fixed rate through the interceptor and
	// straight to the pod, in alternating blocks.
	if _, err := get(ctx, "http://"+front.Addr+b.path, b.host, b.want); err != nil {
		return err
	}
	awake, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-awake.Done():
				return
			case <-tick.C:
				get(awake, "http://"+front.Addr+b.path, b.host, b.want)
			}
		}
	}()
	pod, err := b.readyPod(ctx)
	if err != nil {
		return err
	}
	direct, err := kc.ForwardPort(ctx, *ns, pod.Name, podPort(pod))
	if err != nil {
		return err
	}
	defer direct.Close()
	var via, straight []time.Duration
	block := max(*requests/10, 1)
	for len(via) < *requests {
		d, err := paced(ctx, "http://"+front.Addr+b.path, b.host, b.want, *rate, block)
		if err != nil {
			return err
		}
		via = append(via, d...)
		d, err = paced(ctx, "http://"+direct.Addr+b.path, "", b.want, *rate, block)
		if err != nil {
			return err
		}
		straight = append(straight, d...)
	}
	fmt.Printf("| warm, %s, %d req/s | through the interceptor | %d | %s | %s |\n", *label, *rate, len(via), msf(pct(via, 50)), msf(pct(via, 99)))
	fmt.Printf("| warm, %s, %d req/s | straight to the pod | %d | %s | %s |\n", *label, *rate, len(straight), msf(pct(straight, 50)), msf(pct(straight, 99)))
	fmt.Printf("| warm, %s | added by the interceptor | | %s | %s |\n", *label, msf(pct(via, 50)-pct(straight, 50)), msf(pct(via, 99)-pct(straight, 99)))
	return nil
}

type bench struct {
	kc                           *kube.Client
	ns, workload, selector, path string
	want, host                   string
}

// forwardInterceptor forwards a loopback port to a ready interceptor pod,
// as skiff invoke does for a workload at zero pods.
func (b *bench) forwardInterceptor(ctx context.Context) (*kube.Forward, error) {
	tc := &target.Cluster{Clientset: b.kc.Clientset, Namespace: b.ns, Project: &project.Project{}}
	s, ok := tc.For(&project.Workload{Name: b.workload, Scale: &project.Scale{}}).(*target.Scaled)
	if !ok {
		return nil, errors.New("not a scaled target")
	}
	fw, err := s.Front(ctx, b.kc)
	if err != nil {
		return nil, err
	}
	return fw.Forward, nil
}

func (b *bench) readyPod(ctx context.Context) (*corev1.Pod, error) {
	pods, err := b.kc.Clientset.CoreV1().Pods(b.ns).List(ctx, metav1.ListOptions{LabelSelector: b.selector})
	if err != nil {
		return nil, err
	}
	for i := range pods.Items {
		if ready(&pods.Items[i]) {
			return &pods.Items[i], nil
		}
	}
	return nil, errors.New("no ready pod of " + b.workload)
}

// waitZero waits until the workload has no pods at all.
func (b *bench) waitZero(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		d, err := b.kc.Clientset.AppsV1().Deployments(b.ns).Get(ctx, b.workload, metav1.GetOptions{})
		if err != nil {
			return err
		}
		pods, err := b.kc.Clientset.CoreV1().Pods(b.ns).List(ctx, metav1.ListOptions{LabelSelector: b.selector})
		if err != nil {
			return err
		}
		if d.Spec.Replicas != nil && *d.Spec.Replicas == 0 && len(pods.Items) == 0 {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s did not reach zero pods in %s", b.workload, timeout)
}

// wakeup is when each step of a wake-up was seen, from the request's start.
type wakeup struct{ scaled, created, started, ready, answered time.Duration }

// wake sends one request to the sleeping workload, watching its
// Deployment and pods meanwhile.
func (b *bench) wake(ctx context.Context, base string) (*wakeup, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	deps, err := b.kc.Clientset.AppsV1().Deployments(b.ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + b.workload})
	if err != nil {
		return nil, err
	}
	defer deps.Stop()
	pods, err := b.kc.Clientset.CoreV1().Pods(b.ns).Watch(ctx, metav1.ListOptions{LabelSelector: b.selector})
	if err != nil {
		return nil, err
	}
	defer pods.Stop()
	w := &wakeup{}
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := get(ctx, base+b.path, b.host, b.want)
		w.answered = time.Since(start)
		done <- err
	}()
	for {
		select {
		case err := <-done:
			return w, err
		case ev := <-deps.ResultChan():
			if d, ok := ev.Object.(*appsv1.Deployment); ok && w.scaled == 0 && d.Spec.Replicas != nil && *d.Spec.Replicas > 0 {
				w.scaled = time.Since(start)
			}
		case ev := <-pods.ResultChan():
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			now := time.Since(start)
			if w.created == 0 {
				w.created = now
			}
			for _, cs := range p.Status.ContainerStatuses {
				if cs.State.Running != nil && w.started == 0 {
					w.started = now
				}
			}
			if ready(p) && w.ready == 0 {
				w.ready = now
			}
		}
	}
}

// paced sends n GETs at rate per second, one at a time, and returns each
// one's latency.
func paced(ctx context.Context, url, host, want string, rate, n int) ([]time.Duration, error) {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	out := make([]time.Duration, 0, n)
	for range n {
		<-tick.C
		d, err := get(ctx, url, host, want)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 3 * time.Minute}

func get(ctx context.Context, url, host, want string) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	if host != "" {
		req.Host = host
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
		return 0, fmt.Errorf("GET %s: %s %q", url, resp.Status, body)
	}
	return d, nil
}

func ready(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func podPort(p *corev1.Pod) int {
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			return int(cp.ContainerPort)
		}
	}
	return 8080
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(min(i, len(s))-1, 0)]
}

func ms(d time.Duration) string  { return fmt.Sprintf("%d ms", d.Milliseconds()) }
func msf(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
