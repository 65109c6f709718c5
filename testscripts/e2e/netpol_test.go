//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestNetworkPolicy deploys three Go functions into a namespace that
// enforces PodSecurity restricted, on the test cluster whose kube-router
// enforces NetworkPolicies: front depends on hello, other does not but
// is told hello's URL, and other once more in a second namespace. Each
// calls hello from its own pod when asked (the traffic a policy sees is
// pod to pod; the node may always reach a pod). hello answers front and
// refuses other and the pod of the other namespace; with network.egress
// written, front still resolves and reaches hello; with `network:
// {policy: off}` the same call from other is answered and no policy is
// left; delete removes a release's policy.
func TestNetworkPolicy(t *testing.T) {
	c := needCluster(t)
	ctx := context.Background()
	ns := c.restrictedNamespace(t, "e2e-netpol")
	away := c.restrictedNamespace(t, "e2e-netpol-away")

	root := filepath.Join(t.TempDir(), "shop")
	c.mustSkiff(t, "", "init", root, "--kind", "function", "--lang", "go", "--name", "hello",
		"--registry", c.registry+"/e2e-"+ns, "-n", ns, "--non-interactive")
	c.mustSkiff(t, root, "add", "front", "--kind", "function", "--lang", "go", "--depends-on", "hello")
	c.mustSkiff(t, root, "add", "other", "--kind", "function", "--lang", "go")
	for _, w := range []string{"front", "other"} {
		if err := os.WriteFile(filepath.Join(root, w, "handler.go"), []byte(frontSource), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(root, w, "handler_test.go"))
	}
	manifest := filepath.Join(root, "skiff.yaml")
	helloURL := fmt.Sprintf("http://hello.%s.svc.cluster.local:%d", ns, workloadPort(t, root, "hello"))
	replaceInFile(t, manifest, "  - name: other\n", "  - name: other\n    env: {HELLO_URL: \""+helloURL+"\"}\n")
	appendFile(t, manifest, fmt.Sprintf("environments:\n  away: {namespace: %s}\n  open: {network: {policy: off}}\n"+
		"  locked: {network: {egress: []}, workloads: {front: {env: {ROUND: locked}}}}\n", away))
	if data, _ := os.ReadFile(manifest); !strings.Contains(string(data), "network: {policy: on}") {
		t.Fatalf("skiff init did not write network: {policy: on}:\n%s", data)
	}

	c.mustSkiff(t, root, "deploy", "--timeout", "3m")
	c.mustSkiff(t, root, "deploy", "other", "-e", "away", "--timeout", "3m")

	// Each release brought its policy (Helm owns them).
	if got := c.policies(t, ns); !slices.Equal(got, []string{"front", "hello", "other"}) {
		t.Fatalf("NetworkPolicies in %s: %v; want front, hello, other", ns, got)
	}
	np, err := c.kc.Clientset.NetworkingV1().NetworkPolicies(ns).Get(ctx, "hello", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("hello admits: %s", describeIngress(np))

	front := c.forwardTo(t, ns, "shop-front", workloadPort(t, root, "front"))
	other := c.forwardTo(t, ns, "shop-other", workloadPort(t, root, "other"))
	awayPod := c.forwardTo(t, away, "shop-other", workloadPort(t, root, "other"))

	// The dependent is answered; the others are refused. The enforcer
	// applies a policy within about a second: poll with new connections.
	start := time.Now()
	c.waitCall(t, front, "front (depends on hello)", true)
	c.waitCall(t, other, "other (no dependency)", false)
	c.waitCall(t, awayPod, "a pod of namespace "+away, false)
	t.Logf("answered and refused as the policy says within %s", time.Since(start).Round(time.Millisecond))
	// And they stay so: a refusal is not a slow pod.
	for range 3 {
		if code, body := call(front); code != http.StatusOK || !strings.Contains(body, "Hello, front!") {
			t.Errorf("front, again: %d %s", code, body)
		}
		if code, body := call(other); code == http.StatusOK {
			t.Errorf("other, again: answered %q", body)
		}
	}

	// network.egress written, empty: the pods may reach DNS and their
	// dependencies only. front, rolled out anew (its env changes: new
	// connections, new lookups), still gets hello's answer.
	c.mustSkiff(t, root, "deploy", "-e", "locked", "--timeout", "3m")
	np, err = c.kc.Clientset.NetworkingV1().NetworkPolicies(ns).Get(ctx, "front", metav1.GetOptions{})
	if err != nil || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
		t.Fatalf("front's policy with network.egress: %v, %+v", err, np.Spec.PolicyTypes)
	}
	front = c.forwardTo(t, ns, "shop-front", workloadPort(t, root, "front"))
	c.waitCall(t, front, "front with egress limited to DNS and hello", true)

	// delete removes the release's policy.
	c.mustSkiff(t, root, "delete", "other", "-e", "away")
	if got := c.policies(t, away); len(got) != 0 {
		t.Errorf("after delete, NetworkPolicies in %s: %v", away, got)
	}

	// policy off: render has none, deploy removes them, and other is
	// answered: the refusal was the policy's.
	out := c.mustSkiff(t, root, "render", "-e", "open")
	if strings.Contains(out, "kind: NetworkPolicy") {
		t.Errorf("render with policy off has a NetworkPolicy:\n%s", out)
	}
	c.mustSkiff(t, root, "deploy", "-e", "open", "--timeout", "3m")
	if got := c.policies(t, ns); len(got) != 0 {
		t.Errorf("with policy off, NetworkPolicies left in %s: %v", ns, got)
	}
	other = c.forwardTo(t, ns, "shop-other", workloadPort(t, root, "other"))
	c.waitCall(t, other, "other with policy off", true)
}

// policies lists the names of the NetworkPolicies of a namespace, sorted.
func (c *cluster) policies(t *testing.T, ns string) []string {
	t.Helper()
	list, err := c.kc.Clientset.NetworkingV1().NetworkPolicies(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range list.Items {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	return names
}

// call asks a workload running frontSource (through its forwarded
// address) to call hello from its pod: 200 with hello's answer, or 502
// with the error its pod got.
func call(addr string) (int, string) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + addr + "/")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitCall polls until the pod behind addr gets hello's answer (answered)
// or is refused by hello's policy (its pod's connection refused, as
// kube-router rejects).
func (c *cluster) waitCall(t *testing.T, addr, who string, answered bool) {
	t.Helper()
	var code int
	var body string
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		code, body = call(addr)
		switch {
		case answered && code == http.StatusOK && strings.Contains(body, "Hello, front!"):
			return
		case !answered && code == http.StatusBadGateway && strings.Contains(body, "connection refused"):
			t.Logf("%s: refused: %s", who, strings.TrimSpace(body))
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	want := "answered"
	if !answered {
		want = "refused"
	}
	t.Fatalf("%s: want hello's call %s, last got %d %q", who, want, code, body)
}

func describeIngress(np *networkingv1.NetworkPolicy) string {
	var rules []string
	for _, r := range np.Spec.Ingress {
		for _, f := range r.From {
			switch {
			case f.PodSelector != nil:
				rules = append(rules, "pods "+metav1.FormatLabelSelector(f.PodSelector))
			case f.NamespaceSelector != nil:
				rules = append(rules, "namespace "+metav1.FormatLabelSelector(f.NamespaceSelector))
			}
		}
	}
	return strings.Join(rules, "; ")
}
