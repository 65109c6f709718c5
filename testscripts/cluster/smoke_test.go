//go:build e2e

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// e2eEnv returns the cluster's client config and registry from the env
// that `go run . env` prints; the test is skipped without them.
func e2eEnv(t *testing.T) (*rest.Config, kubernetes.Interface, string) {
	t.Helper()
	kc, reg := os.Getenv("KUBECONFIG"), os.Getenv("SKIFF_TEST_REGISTRY")
	if kc == "" || reg == "" {
		t.Skip("KUBECONFIG and SKIFF_TEST_REGISTRY are not set; run `eval $(go run . env)` after `go run . up`")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, cs, reg
}

// pushTestImage builds ./cmd/<name> statically and pushes it as an image
// running as uid 65532.
func pushTestImage(t *testing.T, ctx context.Context, reg, name, tag string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./cmd/"+name)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", name, err, out)
	}
	ref := fmt.Sprintf("%s/skiff-e2e/%s:%s", reg, name, tag)
	if err := pushImage(ctx, binaryImage{Ref: ref, Binary: bin, User: "65532"}); err != nil {
		t.Fatal(err)
	}
	return ref
}

// restricted returns security contexts that PodSecurity `restricted` admits.
func restricted() (*corev1.PodSecurityContext, *corev1.SecurityContext) {
	uid := int64(65532)
	return &corev1.PodSecurityContext{
			RunAsNonRoot:   new(true),
			RunAsUser:      &uid,
			RunAsGroup:     &uid,
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		}, &corev1.SecurityContext{
			AllowPrivilegeEscalation: new(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			ReadOnlyRootFilesystem:   new(true),
		}
}

func TestSmoke(t *testing.T) {
	cfg, cs, reg := e2eEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	tag := fmt.Sprintf("t%d", time.Now().UnixNano())
	helloImg := pushTestImage(t, ctx, reg, "hello", tag)
	fetchImg := pushTestImage(t, ctx, reg, "fetch", tag)

	ns := "skiff-smoke-" + tag
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: ns,
		Labels: map[string]string{
			"pod-security.kubernetes.io/enforce":         "restricted",
			"pod-security.kubernetes.io/enforce-version": "latest",
		},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})

	// The namespace really enforces restricted: a root pod is refused.
	_, err = cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "rooty"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: helloImg}}},
	}, metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "restricted") {
		t.Fatalf("creating a non-compliant pod in a restricted namespace: got %v, want a PodSecurity refusal", err)
	}

	deployHello(t, ctx, cs, ns, helloImg)

	start := time.Now()
	var pod corev1.Pod
	err = wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "hello", metav1.GetOptions{})
		if err != nil || d.Status.ReadyReplicas < 1 {
			return false, nil
		}
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=hello"})
		if err != nil || len(pods.Items) == 0 {
			return false, nil
		}
		pod = pods.Items[0]
		return true, nil
	})
	if err != nil {
		t.Fatalf("deployment hello never became ready: %v\n%s", err, describePods(ctx, cs, ns))
	}
	t.Logf("deployment ready in %s (pod %s, IP %s)", time.Since(start).Round(time.Millisecond), pod.Name, pod.Status.PodIP)

	// Port-forward to the pod through the API server and the kubelet.
	body := portForwardGet(t, ctx, cfg, cs, ns, pod.Name)
	if !strings.Contains(body, "hello from "+pod.Name) {
		t.Fatalf("through port-forward: got %q, want a greeting from %s", body, pod.Name)
	}

	// From another pod, by the Service's DNS name (CoreDNS + kube-proxy).
	podSC, ctrSC := restricted()
	url := fmt.Sprintf("http://hello.%s.svc.cluster.local/", ns)
	_, err = cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "fetch"},
		Spec: corev1.PodSpec{
			RestartPolicy:   corev1.RestartPolicyNever,
			SecurityContext: podSC,
			Containers: []corev1.Container{{
				Name:            "fetch",
				Image:           fetchImg,
				Args:            []string{url},
				ImagePullPolicy: corev1.PullIfNotPresent,
				SecurityContext: ctrSC,
			}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var phase corev1.PodPhase
	err = wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, "fetch", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		phase = p.Status.Phase
		return phase == corev1.PodSucceeded || phase == corev1.PodFailed, nil
	})
	fetchLogs := podLogs(ctx, cs, ns, "fetch")
	if err != nil || phase != corev1.PodSucceeded {
		t.Fatalf("pod fetch did not reach %s: phase %s, %v\nits logs:\n%s\n%s", url, phase, err, fetchLogs, describePods(ctx, cs, ns))
	}
	if !strings.Contains(fetchLogs, "hello from "+pod.Name) {
		t.Fatalf("pod fetch logged %q, want a greeting from %s", fetchLogs, pod.Name)
	}
	t.Logf("reached %s from another pod", url)

	// The server's own logs, read through the API server and the kubelet.
	logs := podLogs(ctx, cs, ns, pod.Name)
	if !strings.Contains(logs, "hello listening on :8080") || !strings.Contains(logs, "request GET /") {
		t.Fatalf("pod %s logs lack the start and request lines:\n%s", pod.Name, logs)
	}

	// The cluster's Prometheus found the annotated pod and scrapes it on
	// its pod IP: its greetings (the readiness probe's and fetch's) show.
	prom := os.Getenv("SKIFF_TEST_PROMETHEUS")
	if prom == "" {
		t.Fatal("SKIFF_TEST_PROMETHEUS is not set: `go run . env` prints it once up started Prometheus")
	}
	query := fmt.Sprintf(`hello_requests_total{namespace=%q,pod=%q}`, ns, pod.Name)
	var got float64
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		v, ok, err := promScalar(ctx, prom, query)
		if err != nil || !ok {
			return false, nil
		}
		got = v
		return v >= 2, nil
	})
	if err != nil {
		t.Fatalf("Prometheus at %s: %s = %v, want ≥ 2 (%v); its targets: %s", prom, query, got, err, promTargets(ctx, prom))
	}
	t.Logf("Prometheus scraped %s: %s = %v", pod.Name, query, got)
}

// promScalar runs an instant PromQL query and returns its first sample;
// ok is false when the result is empty.
func promScalar(ctx context.Context, base, query string) (float64, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/query?query="+url.QueryEscape(query), nil)
	if err != nil {
		return 0, false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, false, err
	}
	if out.Status != "success" {
		return 0, false, fmt.Errorf("query %s: %s", query, out.Error)
	}
	if len(out.Data.Result) == 0 {
		return 0, false, nil
	}
	s, _ := out.Data.Result[0].Value[1].(string)
	var v float64
	_, err = fmt.Sscan(s, &v)
	return v, err == nil, err
}

// promTargets is Prometheus' view of its targets, for a failure.
func promTargets(ctx context.Context, base string) string {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/targets", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return string(b)
}

func podLogs(ctx context.Context, cs kubernetes.Interface, ns, name string) string {
	data, err := cs.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		return fmt.Sprintf("(reading logs of %s: %v)", name, err)
	}
	return string(data)
}

// describePods summarises the namespace's pods and events for a failure.
func describePods(ctx context.Context, cs kubernetes.Interface, ns string) string {
	var b strings.Builder
	pods, _ := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if pods != nil {
		for _, p := range pods.Items {
			fmt.Fprintf(&b, "pod %s: phase %s\n", p.Name, p.Status.Phase)
			for _, st := range p.Status.ContainerStatuses {
				fmt.Fprintf(&b, "  container %s ready=%v state=%+v\n", st.Name, st.Ready, st.State)
			}
		}
	}
	events, _ := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if events != nil {
		for _, e := range events.Items {
			fmt.Fprintf(&b, "event %s %s: %s %s\n", e.InvolvedObject.Name, e.Type, e.Reason, e.Message)
		}
	}
	return b.String()
}

// portForwardGet forwards a free local port to the pod's 8080 over SPDY and
// GETs / through it.
func portForwardGet(t *testing.T, ctx context.Context, cfg *rest.Config, cs kubernetes.Interface, ns, pod string) string {
	t.Helper()
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	url := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("portforward").URL()
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, url)
	stop, ready := make(chan struct{}), make(chan struct{})
	var out, errOut bytes.Buffer
	pf, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:8080"}, stop, ready, &out, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- pf.ForwardPorts() }()
	defer func() {
		close(stop)
		<-done
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("port-forward to %s/%s: %v (%s)", ns, pod, err, errOut.String())
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	ports, err := pf.GetPorts()
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", ports[0].Local))
	if err != nil {
		t.Fatalf("GET through port-forward: %v (%s)", err, errOut.String())
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("port-forward %d -> %s/%s:8080 answered %q", ports[0].Local, ns, pod, strings.TrimSpace(string(data)))
	return string(data)
}

// TestSmokeBus checks the events' bus: nats-server answers its monitoring
// endpoint through the API server's service proxy with JetStream on, on
// a file store.
func TestSmokeBus(t *testing.T) {
	_, cs, _ := e2eEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	body, err := cs.CoreV1().Services(natsNamespace).ProxyGet("http", "nats", "8222", "/jsz", nil).DoRaw(ctx)
	if err != nil {
		t.Fatalf("the bus's monitoring endpoint: %v", err)
	}
	var jsz struct {
		Config struct {
			StoreDir string `json:"store_dir"`
		} `json:"config"`
		Disabled bool `json:"disabled"`
	}
	if err := json.Unmarshal(body, &jsz); err != nil {
		t.Fatalf("/jsz answered %q: %v", body, err)
	}
	if jsz.Disabled || jsz.Config.StoreDir == "" {
		t.Errorf("JetStream is not on a file store: %s", body)
	}
}
