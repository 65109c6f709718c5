// Command wake measures scaled workloads on the test cluster: how long
// the first request takes after a workload reached zero pods (and where
// the time goes), how long a burst of requests at zero pods waits, and
// what the KEDA HTTP add-on's interceptor adds to a request while a pod
// runs, against calling the pod directly. testscripts/bench/scale.sh
// deploys the workloads and runs it.
//
// Several workloads (-target, repeated) are woken in turns, in one run:
// round after round, each once, the order rotated every round, and
// every wake starts only once all of them have no pods, so that no
// other pod starts or stops while one wakes.
//
//	go run ./testscripts/bench/wake -target go=shop/shop-fn-go/fn-go -target go-direct=direct/direct-fn-go/fn-go -wakes 10
//	go run ./testscripts/bench/wake -n shop -release shop-hello -workload hello -wakes 10 -rate 50 -requests 1000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/internal/chart"
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

// targets is the repeated -target flag: LABEL=NAMESPACE/RELEASE/WORKLOAD.
type targets []*bench

func (t *targets) String() string { return fmt.Sprint(len(*t)) }

func (t *targets) Set(s string) error {
	label, rest, ok := strings.Cut(s, "=")
	parts := strings.Split(rest, "/")
	if !ok || label == "" || len(parts) != 3 || slices.Contains(parts, "") {
		return fmt.Errorf("%q is not LABEL=NAMESPACE/RELEASE/WORKLOAD", s)
	}
	*t = append(*t, &bench{label: label, ns: parts[0], workload: parts[2], selector: "app.kubernetes.io/instance=" + parts[1]})
	return nil
}

func run() error {
	var ts targets
	flag.Var(&ts, "target", "a scaled workload, LABEL=NAMESPACE/RELEASE/WORKLOAD (repeat to wake several in turns)")
	ns := flag.String("n", "", "namespace (one workload, without -target)")
	workload := flag.String("workload", "hello", "the scaled workload (without -target)")
	release := flag.String("release", "", "its Helm release, <project>-<workload> (without -target)")
	label := flag.String("label", "go", "what to call the workload in the output (without -target)")
	wakes := flag.Int("wakes", 10, "wake-ups to measure, per workload")
	burst := flag.Int("burst", 0, "then, per workload at zero pods, this many requests at once (0: none)")
	bursts := flag.Int("bursts", 1, "how many such bursts per workload")
	rate := flag.Int("rate", 50, "requests per second on the warm path")
	requests := flag.Int("requests", 0, "requests on each warm path, through the first workload (0: none)")
	path := flag.String("path", "/", "the path to GET")
	want := flag.String("want", "", "text the answer must hold")
	via := flag.String("via", "forward", "how requests reach the cluster: forward (a port-forward to an interceptor pod and to the pod, as skiff invoke does) or service (the interceptor's ClusterIP and the pod's IP, from a node of the cluster, as a caller in it would)")
	flag.Parse()
	if *via != "forward" && *via != "service" {
		return fmt.Errorf("-via %s: want forward or service", *via)
	}
	if len(ts) == 0 {
		if *ns == "" || *release == "" {
			return errors.New("-target, or -n and -release, are required")
		}
		ts.Set(*label + "=" + *ns + "/" + *release + "/" + *workload)
	}
	ctx := context.Background()
	kc, err := kube.New(kube.Options{})
	if err != nil {
		return err
	}
	var base string
	if *via == "service" {
		svc, err := kc.Clientset.CoreV1().Services(chart.InterceptorNamespace).Get(ctx, chart.InterceptorService, metav1.GetOptions{})
		if err != nil {
			return err
		}
		base = "http://" + net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(chart.InterceptorPort))
	} else {
		front, err := forwardInterceptor(ctx, kc, ts[0].workload, ts[0].ns)
		if err != nil {
			return err
		}
		defer front.Close()
		base = "http://" + front.Addr
	}
	for _, b := range ts {
		b.kc, b.path, b.want, b.host, b.via = kc, *path, *want, b.workload+"."+b.ns, *via
	}

	for round := range *wakes {
		for i := range ts {
			b := ts[(round+i)%len(ts)]
			if err := allZero(ctx, ts, 5*time.Minute); err != nil {
				return err
			}
			w, err := b.wake(ctx, base)
			if err != nil {
				return fmt.Errorf("%s: wake %d: %w", b.label, round+1, err)
			}
			fmt.Fprintf(os.Stderr, "%s wake %d: %s (scaled %s, pod %s, relay %s, started %s, ready %s, endpoint %s)\n", b.label, round+1,
				ms(w.answered), ms(w.scaled), ms(w.created), ms(w.relay), ms(w.started), ms(w.ready), ms(w.endpoint))
			b.wakes = append(b.wakes, w)
		}
	}
	if *wakes > 0 {
		fmt.Println("| scenario | n | p50 | p90 | max |")
		fmt.Println("|---|---|---|---|---|")
		for _, b := range ts {
			fmt.Printf("| wake from zero, %s: first 200 after 0 pods | %d | %s | %s | %s |\n", b.label, len(b.wakes),
				ms(b.pct(50, answered)), ms(b.pct(90, answered)), ms(b.pct(100, answered)))
		}
		fmt.Println()
		fmt.Println("| median of a wake, from the request | " + strings.Join(labels(ts), " | ") + " |")
		fmt.Println("|---" + strings.Repeat("|---", len(ts)) + "|")
		for _, s := range steps {
			row := "| " + s.name
			for _, b := range ts {
				if d := b.pct(50, s.at); d > 0 {
					row += " | " + ms(d)
				} else {
					row += " | –" // not seen: no such step (no relay), or before the watch saw it
				}
			}
			fmt.Println(row + " |")
		}
		fmt.Println()
	}

	if *burst > 0 {
		fmt.Println("| requests at once at zero pods | n | p50 | p90 | max |")
		fmt.Println("|---|---|---|---|---|")
	}
	for range *bursts {
		for _, b := range ts {
			if *burst == 0 {
				break
			}
			if err := allZero(ctx, ts, 5*time.Minute); err != nil {
				return err
			}
			d, w, err := b.burst(ctx, base, *burst)
			if err != nil {
				return fmt.Errorf("%s: %d at once: %w", b.label, *burst, err)
			}
			fmt.Fprintf(os.Stderr, "%s %d at once: last %s (scaled %s, pod %s, relay %s, started %s, ready %s, endpoint %s)\n", b.label, *burst,
				ms(w.answered), ms(w.scaled), ms(w.created), ms(w.relay), ms(w.started), ms(w.ready), ms(w.endpoint))
			fmt.Printf("| %d at once, %s | %d | %s | %s | %s |\n", *burst, b.label, len(d), ms(pct(d, 50)), ms(pct(d, 90)), ms(slices.Max(d)))
		}
	}
	if *requests == 0 {
		return nil
	}
	return ts[0].warm(ctx, base, *rate, *requests)
}

func labels(ts targets) []string {
	var out []string
	for _, b := range ts {
		out = append(out, b.label)
	}
	return out
}

// bench is one scaled workload and what its wakes measured.
type bench struct {
	kc                            *kube.Client
	label, ns, workload, selector string
	path, want, host, via         string
	wakes                         []*wakeup
}

// forwardInterceptor forwards a loopback port to a ready interceptor pod,
// as skiff invoke does for a workload at zero pods.
func forwardInterceptor(ctx context.Context, kc *kube.Client, workload, ns string) (*kube.Forward, error) {
	tc := &target.Cluster{Clientset: kc.Clientset, Namespace: ns, Project: &project.Project{}}
	s, ok := tc.For(&project.Workload{Name: workload, Scale: &project.Scale{}}).(*target.Scaled)
	if !ok {
		return nil, errors.New("not a scaled target")
	}
	fw, err := s.Front(ctx, kc)
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

// atZero reports whether the workload has no pods at all.
func (b *bench) atZero(ctx context.Context) (bool, error) {
	d, err := b.kc.Clientset.AppsV1().Deployments(b.ns).Get(ctx, b.workload, metav1.GetOptions{})
	if err != nil {
		return false, err
	}
	pods, err := b.kc.Clientset.CoreV1().Pods(b.ns).List(ctx, metav1.ListOptions{LabelSelector: b.selector})
	if err != nil {
		return false, err
	}
	return d.Spec.Replicas != nil && *d.Spec.Replicas == 0 && len(pods.Items) == 0, nil
}

// allZero waits until every workload has no pods.
func allZero(ctx context.Context, ts targets, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		zero := true
		for _, b := range ts {
			ok, err := b.atZero(ctx)
			if err != nil {
				return err
			}
			zero = zero && ok
		}
		if zero {
			return nil
		}
		time.Sleep(200 * time.Millisecond) // polling the cluster, not synchronising the benchmark's own goroutines
	}
	return fmt.Errorf("the workloads did not all reach zero pods in %s", timeout)
}

// wakeup is when each step of a wake-up was seen, from the request's start.
type wakeup struct{ scaled, created, relay, started, ready, endpoint, answered time.Duration }

func answered(w *wakeup) time.Duration { return w.answered }

// steps are the rows of the table of medians, in the order a wake takes them.
var steps = []struct {
	name string
	at   func(*wakeup) time.Duration
}{
	{"KEDA scaled the Deployment to 1", func(w *wakeup) time.Duration { return w.scaled }},
	{"the pod exists", func(w *wakeup) time.Duration { return w.created }},
	{"skiff-relay runs (with the proxy)", func(w *wakeup) time.Duration { return w.relay }},
	{"the workload's container runs", func(w *wakeup) time.Duration { return w.started }},
	{"the pod is ready", func(w *wakeup) time.Duration { return w.ready }},
	{"its endpoint is ready (EndpointSlice)", func(w *wakeup) time.Duration { return w.endpoint }},
	{"the answer arrives", answered},
}

func (b *bench) pct(p int, at func(*wakeup) time.Duration) time.Duration {
	var d []time.Duration
	for _, w := range b.wakes {
		d = append(d, at(w))
	}
	return pct(d, p)
}

// wake sends one request to the sleeping workload, watching its
// Deployment, pods and EndpointSlices meanwhile.
func (b *bench) wake(ctx context.Context, base string) (*wakeup, error) {
	return b.watch(ctx, func(ctx context.Context) error {
		_, err := get(ctx, base+b.path, b.host, b.want)
		return err
	})
}

// watch runs send, the requests of a wake, watching the workload's
// Deployment, pods and EndpointSlices meanwhile; answered is when send
// returned.
func (b *bench) watch(ctx context.Context, send func(context.Context) error) (*wakeup, error) {
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
	eps, err := b.kc.Clientset.DiscoveryV1().EndpointSlices(b.ns).Watch(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + b.workload + "-pods"})
	if err != nil {
		return nil, err
	}
	defer eps.Stop()
	w := &wakeup{}
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		err := send(ctx)
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
		case ev := <-eps.ResultChan():
			if s, ok := ev.Object.(*discoveryv1.EndpointSlice); ok && w.endpoint == 0 {
				for _, e := range s.Endpoints {
					if e.Conditions.Ready != nil && *e.Conditions.Ready {
						w.endpoint = time.Since(start)
					}
				}
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
			for _, cs := range p.Status.InitContainerStatuses {
				if cs.Name == "skiff-relay" && cs.State.Running != nil && w.relay == 0 {
					w.relay = now
				}
			}
			for _, cs := range p.Status.ContainerStatuses {
				if cs.State.Running == nil {
					continue
				}
				if cs.Name == "skiff-relay" && w.relay == 0 {
					w.relay = now
				}
				if cs.Name == b.workload && w.started == 0 {
					w.started = now
				}
			}
			if ready(p) && w.ready == 0 {
				w.ready = now
			}
		}
	}
}

// burst sends n requests at once to the sleeping workload and returns
// how long each waited for its answer, and when the wake's steps were
// seen (answered: the last answer).
func (b *bench) burst(ctx context.Context, base string, n int) ([]time.Duration, *wakeup, error) {
	out := make([]time.Duration, n)
	w, err := b.watch(ctx, func(ctx context.Context) error {
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { out[i], errs[i] = get(ctx, base+b.path, b.host, b.want) })
		}
		wg.Wait()
		return errors.Join(errs...)
	})
	return out, w, err
}

// warm measures the warm path: keep the workload awake (requests straight
// to the pod are not counted), then the same fixed rate through the
// interceptor and straight to the pod, in alternating blocks.
func (b *bench) warm(ctx context.Context, base string, rate, requests int) error {
	if _, err := get(ctx, base+b.path, b.host, b.want); err != nil {
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
				get(awake, base+b.path, b.host, b.want)
			}
		}
	}()
	pod, err := b.readyPod(ctx)
	if err != nil {
		return err
	}
	addr := net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(podPort(pod, b.workload)))
	if b.via == "forward" {
		direct, err := b.kc.ForwardPort(ctx, b.ns, pod.Name, podPort(pod, b.workload))
		if err != nil {
			return err
		}
		defer direct.Close()
		addr = direct.Addr
	}
	var via, straight []time.Duration
	block := max(requests/10, 1)
	for len(via) < requests {
		d, err := paced(ctx, base+b.path, b.host, b.want, rate, block)
		if err != nil {
			return err
		}
		via = append(via, d...)
		d, err = paced(ctx, "http://"+addr+b.path, "", b.want, rate, block)
		if err != nil {
			return err
		}
		straight = append(straight, d...)
	}
	fmt.Println("| warm path | via | n | p50 | p99 |")
	fmt.Println("|---|---|---|---|---|")
	fmt.Printf("| warm, %s, %d req/s | through the interceptor | %d | %s | %s |\n", b.label, rate, len(via), msf(pct(via, 50)), msf(pct(via, 99)))
	fmt.Printf("| warm, %s, %d req/s | straight to the pod | %d | %s | %s |\n", b.label, rate, len(straight), msf(pct(straight, 50)), msf(pct(straight, 99)))
	fmt.Printf("| warm, %s | added by the interceptor | | %s | %s |\n", b.label, msf(pct(via, 50)-pct(straight, 50)), msf(pct(via, 99)-pct(straight, 99)))
	return nil
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

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 3 * time.Minute}

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

// podPort is the workload container's port (not the proxy's).
func podPort(p *corev1.Pod, workload string) int {
	for _, c := range p.Spec.Containers {
		if c.Name != workload {
			continue
		}
		for _, cp := range c.Ports {
			return int(cp.ContainerPort)
		}
	}
	return 8080
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(min(i, len(s))-1, 0)]
}

func ms(d time.Duration) string  { return fmt.Sprintf("%d ms", d.Milliseconds()) }
func msf(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
