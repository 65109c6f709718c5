//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

var (
	scaledObjects     = schema.GroupVersionResource{Group: "keda.sh", Version: "v1alpha1", Resource: "scaledobjects"}
	interceptorRoutes = schema.GroupVersionResource{Group: "http.keda.sh", Version: "v1beta1", Resource: "interceptorroutes"}
)

// TestScaleToZero is the story of issue 11 on the real cluster, with KEDA
// and its HTTP add-on built from their modules: a function with
// `scale: {min: 0}` goes idle after deploy proved it starts; a function
// that depends on it wakes it through its usual HELLO_URL with 20
// requests at once, all answered; it goes idle again; `skiff invoke`
// wakes it through the interceptor too; a deploy while it sleeps wakes it
// to see the new version answer; delete leaves no KEDA objects.
func TestScaleToZero(t *testing.T) {
	c := needCluster(t)
	ns := c.restrictedNamespace(t, "e2e-scale")
	ctx := context.Background()

	root := filepath.Join(t.TempDir(), "shop")
	c.mustSkiff(t, "", "init", root, "--kind", "function", "--lang", "go", "--name", "hello",
		"--registry", c.registry+"/e2e-"+ns, "-n", ns, "--non-interactive")
	manifest := filepath.Join(root, "skiff.yaml")
	replaceInFile(t, manifest, "  - name: hello\n", "  - name: hello\n    replicas: 2\n    scale: {min: 0, max: 3, idle: 8s, concurrency: 5}\n")
	c.mustSkiff(t, root, "add", "front", "--kind", "function", "--lang", "go", "--depends-on", "hello")
	if err := os.WriteFile(filepath.Join(root, "front", "handler.go"), []byte(frontSource), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(root, "front", "handler_test.go"))

	// replicas next to scale is ignored, and skiff says so with the line.
	out, errOut, code := c.skiffIn(t, root, "deploy", "--timeout", "3m")
	if code != 0 {
		t.Fatalf("deploy: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "skiff.yaml:7: workloads[0].replicas is ignored: scale lets KEDA set the number of pods") {
		t.Errorf("deploy did not warn about replicas with scale:\n%s", errOut)
	}

	// The deploy saw the first pod start; KEDA then lets hello go idle.
	st := c.status(t, root)
	if st["front"].State != "Ready" {
		t.Fatalf("front after deploy: %+v", st["front"])
	}
	for _, gvr := range []schema.GroupVersionResource{scaledObjects, interceptorRoutes} {
		if _, err := c.kc.Dynamic.Resource(gvr).Namespace(ns).Get(ctx, "hello", metav1.GetOptions{}); err != nil {
			t.Fatalf("after deploy: %s hello: %v", gvr.Resource, err)
		}
	}
	// hello's NetworkPolicy admits the interceptor: what wakes it below
	// goes through it (the cluster enforces policies: kube-router).
	if np, err := c.kc.Clientset.NetworkingV1().NetworkPolicies(ns).Get(ctx, "hello", metav1.GetOptions{}); err != nil {
		t.Errorf("hello's NetworkPolicy: %v", err)
	} else if !strings.Contains(describeIngress(np), "kubernetes.io/metadata.name=keda") {
		t.Errorf("hello's NetworkPolicy admits %s; want the interceptor's namespace", describeIngress(np))
	}
	c.waitIdle(t, root, ns)
	// Idle is healthy: `skiff status` exits 0 and says why it has no pods.
	out, errOut, code = c.skiffIn(t, root, "status", "hello")
	if code != 0 || !strings.Contains(out, "Idle (scales on request)") {
		t.Errorf("status of an idle function: exit %d\n%s\n%s", code, out, errOut)
	}

	// 20 requests at once through front: the interceptor holds them while
	// hello wakes, and every one is answered by hello.
	fw := c.forwardTo(t, ns, "shop-front", workloadPort(t, root, "front"))
	start := time.Now()
	atOnce(t, 20, func(i int) error {
		body, err := httpGet(fmt.Sprintf("http://%s/?i=%d", fw, i))
		if err == nil && !strings.Contains(body, "Hello, front!") {
			err = fmt.Errorf("request %d answered %q", i, body)
		}
		return err
	})
	t.Logf("20 requests through a sleeping function answered in %s", time.Since(start).Round(time.Millisecond))
	if d, err := c.kc.Clientset.AppsV1().Deployments(ns).Get(ctx, "hello", metav1.GetOptions{}); err != nil || d.Status.Replicas < 1 {
		t.Errorf("hello after the requests: %v, replicas %d; want woken", err, d.Status.Replicas)
	}

	// Idle again after scale.idle; invoke reaches it through the interceptor.
	c.waitIdle(t, root, ns)
	out, errOut, code = c.skiffIn(t, root, "invoke", "hello", "--path", "/?name=Idle")
	if code != 0 || !strings.Contains(out, "Hello, Idle!") || !strings.Contains(errOut, "KEDA HTTP interceptor") {
		t.Errorf("invoke of an idle function: exit %d\n%s\n%s", code, out, errOut)
	}

	// A new version deployed while it sleeps: deploy wakes it to see the
	// new version answer (and KEDA lets it sleep again later).
	c.waitIdle(t, root, ns)
	replaceInFile(t, filepath.Join(root, "hello", "main.go"), `Greeting: "Hello"`, `Greeting: "Howdy"`)
	c.mustSkiff(t, root, "deploy", "hello", "--timeout", "3m")
	if pods, err := c.kc.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=shop-hello"}); err != nil || len(pods.Items) == 0 {
		t.Errorf("deploy of a new version at zero pods did not wake it: %v, %d pods", err, len(pods.Items))
	}
	if out := c.mustSkiff(t, root, "invoke", "hello", "--path", "/?name=Ada"); !strings.Contains(out, "Howdy, Ada!") {
		t.Errorf("after the deploy at zero pods, invoke printed %q", out)
	}

	// delete leaves none of KEDA's objects behind.
	c.mustSkiff(t, root, "delete", "hello")
	for _, gvr := range []schema.GroupVersionResource{scaledObjects, interceptorRoutes} {
		list, err := c.kc.Dynamic.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(list.Items) != 0 {
			t.Errorf("after delete: %s: %v, %d left", gvr.Resource, err, len(list.Items))
		}
	}
}

// waitIdle waits until hello has no pods and `skiff status` calls it Idle.
func (c *cluster) waitIdle(t *testing.T, root, ns string) {
	t.Helper()
	waitFor(t, 2*time.Minute, "hello to scale to zero", func() bool {
		pods, err := c.kc.Clientset.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=shop-hello"})
		if err != nil || len(pods.Items) > 0 {
			return false
		}
		st := c.status(t, root)["hello"]
		return st.State == "Idle" && st.Desired == 0
	})
}

// forwardTo forwards a loopback port to a ready pod of release and
// returns its address.
func (c *cluster) forwardTo(t *testing.T, ns, release string, port int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pod, err := readyPod(ctx, c.kc.Clientset, ns, "app.kubernetes.io/instance="+release)
	if err != nil {
		t.Fatal(err)
	}
	fw, err := c.kc.ForwardPort(context.Background(), ns, pod.Name, port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Close() })
	return fw.Addr
}

// TestScaleWithoutKEDA deploys a scaled function to a cluster whose API
// server hides KEDA's and the add-on's APIs (the real one, behind a proxy
// that answers 404 for them): deploy fails before it changes anything,
// naming what is missing, and render still works.
func TestScaleWithoutKEDA(t *testing.T) {
	c := needCluster(t)
	ctx := context.Background()
	ns := "e2e-nokeda-" + fmt.Sprint(time.Now().UnixNano()%100000)

	kubeconfig := hidingKubeconfig(t, func(path string) bool {
		return strings.HasPrefix(path, "/apis/keda.sh") || strings.HasPrefix(path, "/apis/http.keda.sh")
	})

	root := filepath.Join(t.TempDir(), "shop")
	c.mustSkiff(t, "", "init", root, "--kind", "function", "--lang", "go", "--name", "hello",
		"--registry", c.registry+"/e2e-nokeda", "-n", ns, "--non-interactive")
	replaceInFile(t, filepath.Join(root, "skiff.yaml"), "  - name: hello\n", "  - name: hello\n    scale: {min: 0}\n")
	env := append(append([]string(nil), c.env...), "KUBECONFIG="+kubeconfig)
	out, errOut, code := run(t, root, env, c.skiff, "deploy")
	if code != 1 {
		t.Errorf("deploy without KEDA: exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"`scale:` of hello", "keda.sh/v1alpha1 ScaledObject API (KEDA)", "http.keda.sh/v1beta1 InterceptorRoute API", "docs/serverless.md"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("deploy error lacks %q:\n%s", want, errOut)
		}
	}
	// Nothing changed: no namespace, so no release either.
	if _, err := c.kc.Clientset.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err == nil {
		t.Errorf("deploy created namespace %s before failing", ns)
		c.kc.Clientset.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	}
	// render needs no cluster.
	if out := mustRun(t, root, env, c.skiff, "render", "hello"); !strings.Contains(out, "kind: ScaledObject") || !strings.Contains(out, "kind: InterceptorRoute") {
		t.Errorf("render without KEDA:\n%s", out)
	}
}

// hidingKubeconfig writes a kubeconfig for the test cluster's API server
// behind a proxy on loopback that answers 404 for the paths hide says, as
// a cluster without those APIs would.
func hidingKubeconfig(t *testing.T, hide func(path string) bool) string {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		t.Fatal(err)
	}
	transport, err := rest.TransportFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	api, _ := url.Parse(cfg.Host)
	rp := httputil.NewSingleHostReverseProxy(api)
	rp.Transport = transport
	proxy := startHandler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hide(r.URL.Path) {
			http.NotFound(w, r)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	return writeKubeconfig(t, &clientcmdapi.Cluster{Server: "http://" + proxy}, &clientcmdapi.AuthInfo{})
}

// writeKubeconfig writes a kubeconfig of one context and returns its path.
func writeKubeconfig(t *testing.T, cluster *clientcmdapi.Cluster, user *clientcmdapi.AuthInfo) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	kcfg := clientcmdapi.NewConfig()
	kcfg.Clusters["test"] = cluster
	kcfg.AuthInfos["test"] = user
	kcfg.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "test"}
	kcfg.CurrentContext = "test"
	if err := clientcmd.WriteToFile(*kcfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}
