// Command propagate measures how long a configuration change takes to
// reach every pod of a deployed function: it runs `skiff config set
// GREETING=... --apply` CHANGES times and, after each, polls every ready
// pod (a port-forward each) until all of them greet with the new value.
// With liveConfig the pods stay the same (it checks their UIDs and restart
// counts); without it, deploy rolls new ones. testscripts/bench/liveconfig.sh
// deploys the functions and runs it.
//
//	go run ./testscripts/bench/propagate -n shop -release shop-hello -workload hello -dir ./shop -skiff ./skiff
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffdev/skiff/internal/kube"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "propagate:", err)
		os.Exit(1)
	}
}

func run() error {
	ns := flag.String("n", "", "namespace")
	release := flag.String("release", "", "the function's Helm release, <project>-<workload>")
	workload := flag.String("workload", "", "the function")
	dir := flag.String("dir", ".", "the project's folder")
	skiff := flag.String("skiff", "skiff", "the skiff binary")
	changes := flag.Int("changes", 10, "changes to measure")
	label := flag.String("label", "", "what to call the run in the output")
	flag.Parse()
	if *ns == "" || *release == "" || *workload == "" {
		return errors.New("-n, -release and -workload are required")
	}
	ctx := context.Background()
	kc, err := kube.New(kube.Options{})
	if err != nil {
		return err
	}
	selector := "app.kubernetes.io/instance=" + *release
	first, err := readyPods(ctx, kc, *ns, selector)
	if err != nil {
		return err
	}
	fws := forwards{}
	defer fws.close()
	var returned, visible, total []time.Duration
	for i := range *changes {
		value := fmt.Sprintf("Hi%d-%d", i, time.Now().UnixNano()%100000)
		start := time.Now()
		cmd := exec.CommandContext(ctx, *skiff, "config", "set", "GREETING="+value, "-w", *workload, "--apply")
		cmd.Dir = *dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("config set: %v\n%s", err, out)
		}
		back := time.Now()
		if err := fws.allAnswer(ctx, kc, *ns, selector, value, 2*time.Minute); err != nil {
			return fmt.Errorf("change %d: %w", i+1, err)
		}
		done := time.Now()
		returned, visible, total = append(returned, back.Sub(start)), append(visible, done.Sub(back)), append(total, done.Sub(start))
		fmt.Fprintf(os.Stderr, "change %d: config set returned after %s, every pod answered %s later\n", i+1, ms(back.Sub(start)), ms(done.Sub(back)))
	}
	last, err := readyPods(ctx, kc, *ns, selector)
	if err != nil {
		return err
	}
	fmt.Printf("| %s | %d | %s | %s | %s | %s | %s | %s |\n", *label, len(total),
		ms(pct(returned, 50)), ms(pct(visible, 50)), ms(pct(visible, 90)), ms(slices.Max(visible)), ms(pct(total, 50)), samePods(first, last))
	return nil
}

// readyPods lists the ready pods of selector, waiting until no other pod
// is left (a rollout has ended).
func readyPods(ctx context.Context, kc *kube.Client, ns, selector string) ([]corev1.Pod, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		list, err := kc.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return nil, err
		}
		var ready []corev1.Pod
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil && podReady(&p) {
				ready = append(ready, p)
			}
		}
		if len(ready) > 0 && len(ready) == len(list.Items) {
			return ready, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s in %s: %d pods, %d ready", selector, ns, len(list.Items), len(ready))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// forwards are port-forwards to pods, by UID, kept from one change to
// the next: a pod that stays keeps its forward.
type forwards map[types.UID]*kube.Forward

func (f forwards) close() {
	for _, fw := range f {
		fw.Close()
	}
}

// allAnswer polls the ready pods, each through its own port-forward, every
// 20 ms until every one greets with want.
func (f forwards) allAnswer(ctx context.Context, kc *kube.Client, ns, selector, want string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pods, err := readyPods(ctx, kc, ns, selector)
	if err != nil {
		return err
	}
	for _, p := range pods {
		fw, ok := f[p.UID]
		if !ok {
			if fw, err = kc.ForwardPort(context.Background(), ns, p.Name, podPort(&p)); err != nil {
				return err
			}
			f[p.UID] = fw
		}
		for {
			body, err := get(ctx, "http://"+fw.Addr+"/?name=Ada")
			if err == nil && strings.Contains(body, want+", Ada!") {
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("pod %s never answered %q (last: %q, %v)", p.Name, want, body, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

func get(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// samePods says whether last are first, none restarted.
func samePods(first, last []corev1.Pod) string {
	restarts := func(p corev1.Pod) int32 {
		var n int32
		for _, s := range p.Status.ContainerStatuses {
			n += s.RestartCount
		}
		return n
	}
	if len(first) != len(last) {
		return fmt.Sprintf("%d pods, then %d", len(first), len(last))
	}
	kept := 0
	for _, f := range first {
		for _, l := range last {
			if f.UID == l.UID && restarts(f) == restarts(l) {
				kept++
			}
		}
	}
	if kept == len(first) {
		return fmt.Sprintf("all %d kept, 0 restarts", kept)
	}
	return fmt.Sprintf("%d of %d replaced or restarted", len(first)-kept, len(first))
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }

// podPort is the port the pod's workload listens on (skiff add gives each
// workload of a project its own).
func podPort(p *corev1.Pod) int {
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			return int(cp.ContainerPort)
		}
	}
	return 8080
}
