//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiffdev/skiff/internal/kube"
	"github.com/skiffdev/skiff/internal/project"
)

// cluster is the test cluster of testscripts/cluster, found through the
// environment `ci.sh env` prints.
type cluster struct {
	kc       *kube.Client
	registry string
	env      []string // for skiff: KUBECONFIG, cache and config folders
	skiff    string
	ns       string
}

func needCluster(t *testing.T) *cluster {
	t.Helper()
	kubeconfig, registry := os.Getenv("KUBECONFIG"), os.Getenv("SKIFF_TEST_REGISTRY")
	if kubeconfig == "" || registry == "" {
		t.Skip("no test cluster: run `testscripts/cluster/ci.sh up` and export what `ci.sh env` prints")
	}
	kc, err := kube.New(kube.Options{Kubeconfig: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	if err := kc.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	c := &cluster{
		kc:       kc,
		registry: registry,
		skiff:    buildSkiff(t, work),
		env: []string{"KUBECONFIG=" + kubeconfig, "SKIFF_CACHE_DIR=" + filepath.Join(work, "cache"),
			"SKIFF_CONFIG_DIR=" + filepath.Join(work, "config"), "NO_COLOR=1",
			// The bus runs with accounts: skiff connects as the test user
			// and mints the workloads' users with the account's key.
			"SKIFF_NATS_CREDS=" + os.Getenv("SKIFF_TEST_NATS_CREDS"), "SKIFF_NATS_SIGNING_KEY=" + os.Getenv("SKIFF_TEST_NATS_SIGNING_KEY")},
	}
	// Every deploy runs skiff-relay's proxy in front of its workloads, as
	// a release of skiff (which pins a relay image) does.
	c.env = append(c.env, "SKIFF_RELAY_IMAGE="+c.relayImage(t))
	return c
}

// restrictedNamespace creates a namespace that enforces the Pod Security
// Standards "restricted" profile and removes it after the test.
func (c *cluster) restrictedNamespace(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 3)
	rand.Read(b)
	ns := prefix + "-" + hex.EncodeToString(b)
	_, err := c.kc.Clientset.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
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
		if t.Failed() {
			c.dumpNamespace(t, ns)
		}
		c.kc.Clientset.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	return ns
}

func (c *cluster) dumpNamespace(t *testing.T, ns string) {
	ctx := context.Background()
	pods, _ := c.kc.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	for _, p := range pods.Items {
		t.Logf("pod %s: phase %s", p.Name, p.Status.Phase)
		for _, s := range p.Status.ContainerStatuses {
			t.Logf("  container %s ready=%v restarts=%d state=%+v", s.Name, s.Ready, s.RestartCount, s.State)
		}
	}
	events, _ := c.kc.Clientset.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	for _, e := range events.Items {
		t.Logf("event %s %s: %s %s", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
	}
}

// skiffIn runs skiff in dir and returns stdout, stderr and the exit code.
func (c *cluster) skiffIn(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	return run(t, dir, c.env, c.skiff, args...)
}

func (c *cluster) mustSkiff(t *testing.T, dir string, args ...string) string {
	t.Helper()
	return mustRun(t, dir, c.env, c.skiff, args...)
}

// call sends GET path to a ready pod of release through a port-forward and
// returns the body.
func (c *cluster) call(t *testing.T, ns, release, path string, port int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var lastErr error
	for ctx.Err() == nil {
		pod, err := readyPod(ctx, c.kc.Clientset, ns, "app.kubernetes.io/instance="+release)
		if err == nil {
			var fw *kube.Forward
			fw, err = c.kc.ForwardPort(ctx, ns, pod.Name, port)
			if err == nil {
				var body string
				body, err = httpGet("http://" + fw.Addr + path)
				fw.Close()
				if err == nil {
					return body
				}
			}
		}
		lastErr = err
		time.Sleep(time.Second)
	}
	t.Fatalf("calling %s%s in %s: %v", release, path, ns, lastErr)
	return ""
}

func httpGet(u string) (string, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	return string(b), err
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// workloadPort is the port skiff.yaml in root gives a workload: `skiff add`
// gives each new workload a port of its own (8081 for the second, ...).
func workloadPort(t *testing.T, root, name string) int {
	t.Helper()
	p, err := project.Load(filepath.Join(root, "skiff.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	w, ok := p.Workload(name)
	if !ok {
		t.Fatalf("skiff.yaml in %s has no workload %s", root, name)
	}
	return w.Port
}

func replaceInFile(t *testing.T, file, old, new string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not contain %q", file, old)
	}
	if err := os.WriteFile(file, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

type statusLine struct {
	Workload string `json:"workload"`
	State    string `json:"state"`
	Revision int    `json:"revision"`
	Ready    int    `json:"ready"`
	Desired  int    `json:"desired"`
	Image    string `json:"image"`
}

func (c *cluster) status(t *testing.T, dir string) map[string]statusLine {
	t.Helper()
	out, errOut, code := c.skiffIn(t, dir, "status", "-o", "json")
	var lines []statusLine
	if err := json.Unmarshal([]byte(out), &lines); err != nil {
		t.Fatalf("skiff status -o json (exit %d): %v\n%s\n%s", code, err, out, errOut)
	}
	m := map[string]statusLine{}
	for _, l := range lines {
		m[l.Workload] = l
	}
	return m
}

// frontSource is a Go function that calls the workload it depends on
// through the injected HELLO_URL, and shows one env var on /env?k=NAME.
const frontSource = `package main

import (
	"io"
	"log/slog"
	"net/http"
	"os"
)

func newHandler(_ func() string, _ *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /env", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, os.Getenv(r.URL.Query().Get("k")))
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		resp, err := http.Get(os.Getenv("HELLO_URL") + "/?name=front")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		io.Copy(w, resp.Body)
	})
	return mux
}
`

// TestDeployLifecycle is the story of issue 5 on the real cluster: init,
// deploy into a restricted namespace, call it, change the code, deploy,
// roll back, deploy a crash (rolled back automatically), two workloads
// talking through the injected URL, config with --apply, a secret that
// reaches the pod and no disk, and delete leaving nothing behind.
func TestDeployLifecycle(t *testing.T) {
	c := needCluster(t)
	ns := c.restrictedNamespace(t, "e2e-deploy")
	ctx := context.Background()

	root := filepath.Join(t.TempDir(), "shop")
	c.mustSkiff(t, "", "init", root, "--kind", "function", "--lang", "go", "--name", "hello",
		"--registry", c.registry+"/e2e-"+ns, "-n", ns, "--non-interactive")

	// 1. deploy: pods run under "restricted" and answer.
	start := time.Now()
	out := c.mustSkiff(t, root, "deploy", "--timeout", "3m")
	t.Logf("first deploy took %s:\n%s", time.Since(start), out)
	if !strings.Contains(out, "@sha256:") {
		t.Errorf("deploy summary shows no digest:\n%s", out)
	}
	st := c.status(t, root)["hello"]
	if st.State != "Ready" || st.Revision != 1 || st.Ready != 1 || !strings.Contains(st.Image, "@sha256:") {
		t.Fatalf("status after deploy: %+v", st)
	}
	if body := c.call(t, ns, "shop-hello", "/?name=Ada", 8080); !strings.Contains(body, "Hello, Ada!") {
		t.Fatalf("revision 1 answered %q", body)
	}

	// invoke goes through its own port-forward; a non-2xx answer exits 1.
	if out := c.mustSkiff(t, root, "invoke", "hello", "--path", "/?name=Bo"); !strings.Contains(out, "Bo!") {
		t.Errorf("invoke printed %q", out)
	}
	if _, errOut, code := c.skiffIn(t, root, "invoke", "hello", "-X", "DELETE", "--path", "/"); code != 1 || !strings.Contains(errOut, "405") {
		t.Errorf("invoke of a 405: exit %d, %s", code, errOut)
	}
	// logs prints what the pod wrote, as JSON lines with the pod's name.
	firstPod := ""
	for _, line := range strings.Split(strings.TrimSpace(c.mustSkiff(t, root, "logs", "hello", "-o", "json")), "\n") {
		var l struct{ Pod, Workload, Message string }
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("logs -o json printed %q: %v", line, err)
		}
		if strings.Contains(l.Message, "listening") && l.Workload == "hello" {
			firstPod = l.Pod
		}
	}
	if firstPod == "" {
		t.Fatal("skiff logs did not show the pod's start-up line")
	}
	// Follow the logs across the next rollout: the new pod's lines arrive.
	follow := exec.Command(c.skiff, "logs", "hello", "-f", "-o", "json")
	follow.Dir, follow.Env = root, append(os.Environ(), c.env...)
	followOut := &lockedBuffer{}
	follow.Stdout = followOut
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	defer follow.Process.Kill()

	// 2. edit the code, deploy: revision 2 answers the new text.
	main := filepath.Join(root, "hello", "main.go")
	replaceInFile(t, main, `Greeting: "Hello"`, `Greeting: "Howdy"`)
	c.mustSkiff(t, root, "deploy", "hello", "--timeout", "3m")
	if body := c.call(t, ns, "shop-hello", "/?name=Ada", 8080); !strings.Contains(body, "Howdy, Ada!") {
		t.Fatalf("revision 2 answered %q", body)
	}
	waitFor(t, 30*time.Second, "the new pod's logs in `skiff logs -f`", func() bool {
		for _, line := range strings.Split(followOut.String(), "\n") {
			var l struct{ Pod, Message string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Pod != firstPod && strings.Contains(l.Message, "listening") {
				return true
			}
		}
		return false
	})
	follow.Process.Kill()
	follow.Wait()

	// 3. rollback: revision 1's text again.
	c.mustSkiff(t, root, "rollback", "hello", "1", "--timeout", "3m")
	if body := c.call(t, ns, "shop-hello", "/?name=Ada", 8080); !strings.Contains(body, "Hello, Ada!") {
		t.Fatalf("after rollback the answer is %q", body)
	}
	hist := c.mustSkiff(t, root, "history", "hello", "-o", "json")
	if strings.Count(hist, `"revision"`) != 3 {
		t.Errorf("history after deploy, deploy, rollback:\n%s", hist)
	}

	// 4. an image that crashes: deploy fails within its timeout, rolls back,
	// exits non-zero, and the old revision still answers.
	replaceInFile(t, main, "func main() {", "func main() {\n\tpanic(\"e2e: crash on start\")")
	start = time.Now()
	_, errOut, code := c.skiffIn(t, root, "deploy", "hello", "--timeout", "3m")
	took := time.Since(start)
	t.Logf("crashing deploy failed after %s:\n%s", took, errOut)
	if code == 0 {
		t.Fatal("deploying a crashing image succeeded")
	}
	for _, want := range []string{"did not become ready", "CrashLoopBackOff", "e2e: crash on start", "rolled back to revision"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("the failed deploy does not say %q", want)
		}
	}
	if took > 3*time.Minute+30*time.Second {
		t.Errorf("the failed deploy took %s, more than its timeout", took)
	}
	if body := c.call(t, ns, "shop-hello", "/?name=Ada", 8080); !strings.Contains(body, "Hello, Ada!") {
		t.Fatalf("after the failed deploy the answer is %q", body)
	}
	replaceInFile(t, main, "\n\tpanic(\"e2e: crash on start\")", "")
	replaceInFile(t, main, `Greeting: "Howdy"`, `Greeting: "Hello"`)

	// 5. two workloads: front calls hello through HELLO_URL.
	c.mustSkiff(t, root, "add", "front", "--kind", "function", "--lang", "go", "--depends-on", "hello")
	if err := os.WriteFile(filepath.Join(root, "front", "handler.go"), []byte(frontSource), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(root, "front", "handler_test.go"))
	c.mustSkiff(t, root, "deploy", "--timeout", "3m")
	frontPort := workloadPort(t, root, "front")
	if frontPort == workloadPort(t, root, "hello") {
		t.Fatalf("add gave front hello's port %d", frontPort)
	}
	if body := c.call(t, ns, "shop-front", "/", frontPort); !strings.Contains(body, "Hello, front!") {
		t.Fatalf("front answered %q", body)
	}

	// 6. config set --apply changes the answer (through the ConfigMap).
	// The rollout is complete once the new pod is ready; the old one
	// drains meanwhile, and a caller may get its answer for a moment,
	// never a failed one.
	c.mustSkiff(t, root, "config", "set", "GREETING=Bonjour", "-w", "hello", "--apply", "--timeout", "3m")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		body := c.call(t, ns, "shop-front", "/", frontPort)
		if strings.Contains(body, "Bonjour, front!") {
			break
		}
		if !strings.Contains(body, "Hello, front!") {
			t.Fatalf("after config set the answer is %q: want the new greeting, or the old one while its pod drains", body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("20 s after config set the answer is still %q", body)
		}
	}

	// 7. a secret reaches the pod and is nowhere on disk.
	b := make([]byte, 8)
	rand.Read(b)
	value := "s3cr3t-" + hex.EncodeToString(b)
	cmd := exec.Command(c.skiff, "secret", "set", "API_TOKEN", "-w", "front")
	cmd.Dir, cmd.Env, cmd.Stdin = root, append(os.Environ(), c.env...), strings.NewReader(value+"\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("secret set: %v\n%s", err, out)
	}
	c.mustSkiff(t, root, "status", "--wait", "--timeout", "2m")
	deadline := time.Now().Add(time.Minute)
	for {
		body := c.call(t, ns, "shop-front", "/env?k=API_TOKEN", frontPort)
		if body == value {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pod sees API_TOKEN=%q", body)
		}
		time.Sleep(2 * time.Second)
	}
	if keys := c.mustSkiff(t, root, "secret", "list", "-w", "front"); !strings.Contains(keys, "API_TOKEN") || strings.Contains(keys, value) {
		t.Errorf("secret list printed %q", keys)
	}
	for _, dir := range append([]string{root}, strings.TrimPrefix(c.env[1], "SKIFF_CACHE_DIR="), strings.TrimPrefix(c.env[2], "SKIFF_CONFIG_DIR=")) {
		if out, _ := exec.Command("grep", "-rl", value, dir).Output(); len(out) > 0 {
			t.Errorf("the secret value was written to disk: %s", out)
		}
	}
	rendered := c.mustSkiff(t, root, "render", "front")
	if strings.Contains(rendered, value) {
		t.Error("the secret value is in the rendered chart")
	}

	// 8. delete leaves nothing behind.
	c.mustSkiff(t, root, "delete", "--all")
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/part-of=shop"}
	deadline = time.Now().Add(2 * time.Minute)
	for {
		listed := func(what string, err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("after delete: listing the %s of namespace %s: %v", what, ns, err)
			}
		}
		pods, err := c.kc.Clientset.CoreV1().Pods(ns).List(ctx, sel)
		listed("pods", err)
		deps, err := c.kc.Clientset.AppsV1().Deployments(ns).List(ctx, sel)
		listed("deployments", err)
		svcs, err := c.kc.Clientset.CoreV1().Services(ns).List(ctx, sel)
		listed("services", err)
		cms, err := c.kc.Clientset.CoreV1().ConfigMaps(ns).List(ctx, sel)
		listed("configmaps", err)
		rels, err := c.kc.Clientset.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
		listed("Helm release records", err)
		secrets, err := c.kc.Clientset.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=skiff"})
		listed("skiff secrets", err)
		left := len(pods.Items) + len(deps.Items) + len(svcs.Items) + len(cms.Items) + len(rels.Items) + len(secrets.Items)
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after delete: %d pods, %d deployments, %d services, %d configmaps, %d release records, %d secrets left",
				len(pods.Items), len(deps.Items), len(svcs.Items), len(cms.Items), len(rels.Items), len(secrets.Items))
		}
		time.Sleep(2 * time.Second)
	}
	if _, _, code := c.skiffIn(t, root, "status"); code == 0 {
		t.Error("status exits 0 with nothing deployed")
	}
}

// TestDeployNode and TestDeployPython tell the story for the interpreted
// languages on base images made from the host's node and python3: deploy,
// call, change the code, deploy, roll back, change the config with
// --apply, delete.
func TestDeployNode(t *testing.T) {
	testInterpreted(t, "node", "index.js", `DEFAULT_GREETING = "Hello"`, `DEFAULT_GREETING = "Howdy"`,
		func(b bases) string { return b.Node })
}

func TestDeployPython(t *testing.T) {
	testInterpreted(t, "python", "main.py", `DEFAULT_GREETING = "Hello"`, `DEFAULT_GREETING = "Howdy"`,
		func(b bases) string { return b.Python })
}

func testInterpreted(t *testing.T, lang, file, old, new string, base func(bases) string) {
	c := needCluster(t)
	ns := c.restrictedNamespace(t, "e2e-"+lang)
	b := pushBases(t, c.registry)
	root := filepath.Join(t.TempDir(), "web")
	c.mustSkiff(t, "", "init", root, "--kind", "function", "--lang", lang, "--name", "greeter",
		"--registry", c.registry+"/e2e-"+ns, "-n", ns, "--non-interactive")
	manifest := filepath.Join(root, "skiff.yaml")
	data, _ := os.ReadFile(manifest)
	data = []byte(strings.Replace(string(data), "workloads:", "build:\n  base:\n    "+lang+": "+base(b)+"\nworkloads:", 1))
	if err := os.WriteFile(manifest, data, 0o644); err != nil {
		t.Fatal(err)
	}
	answer := func(want string) {
		t.Helper()
		if body := c.call(t, ns, "web-greeter", "/?name=Ada", 8080); !strings.Contains(body, want+", Ada!") {
			t.Fatalf("%s function answered %q, want %q", lang, body, want)
		}
	}
	c.mustSkiff(t, root, "deploy", "--timeout", "3m")
	answer("Hello")
	replaceInFile(t, filepath.Join(root, "greeter", file), old, new)
	c.mustSkiff(t, root, "deploy", "--timeout", "3m")
	answer("Howdy")
	c.mustSkiff(t, root, "rollback", "greeter", "--timeout", "3m")
	answer("Hello")
	c.mustSkiff(t, root, "config", "set", "GREETING=Bonjour", "--apply", "--timeout", "3m")
	answer("Bonjour")
	if st := c.status(t, root)["greeter"]; st.Revision != 4 || st.State != "Ready" {
		t.Errorf("status at the end: %+v", st)
	}
	c.mustSkiff(t, root, "delete", "--all")
}

// readyPod returns a running, ready pod matching selector, as the test
// sees it (not through skiff's code).
func readyPod(ctx context.Context, cs kubernetes.Interface, ns, selector string) (*corev1.Pod, error) {
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return p, nil
			}
		}
	}
	return nil, fmt.Errorf("no ready pod matches %s in %s", selector, ns)
}
