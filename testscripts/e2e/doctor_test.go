//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

type doctorResult struct {
	Check, Status, Detail, Fix string
}

// doctor runs `skiff doctor -o json` with env and returns the results by
// check, and the exit code.
func (c *cluster) doctor(t *testing.T, dir string, env []string) (map[string]doctorResult, int) {
	t.Helper()
	out, errOut, code := run(t, dir, env, c.skiff, "doctor", "-o", "json")
	var rs []doctorResult
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("skiff doctor -o json (exit %d): %v\n%s\n%s", code, err, out, errOut)
	}
	m := map[string]doctorResult{}
	for _, r := range rs {
		m[r.Check] = r
	}
	return m, code
}

// TestDoctor runs `skiff doctor` for a scaled Go function against the test
// cluster: everything passes; then each failure is provoked and named: a
// service account that may only read pods, a cluster without KEDA's APIs.
func TestDoctor(t *testing.T) {
	c := needCluster(t)
	ctx := context.Background()
	ns := c.restrictedNamespace(t, "e2e-doctor")
	root := filepath.Join(t.TempDir(), "shop")
	c.mustSkiff(t, "", "init", root, "--kind", "function", "--lang", "go", "--name", "hello",
		"--registry", c.registry+"/e2e-doctor", "-n", ns, "--non-interactive")
	replaceInFile(t, filepath.Join(root, "skiff.yaml"), "  - name: hello\n", "  - name: hello\n    scale: {min: 0}\n")

	rs, code := c.doctor(t, root, c.env)
	for _, check := range []string{"toolchain go", "registry " + c.registry, "cluster", "permissions", "pod security", "node architectures", "serverless engines"} {
		if r, ok := rs[check]; !ok || r.Status != "ok" {
			t.Errorf("%s: %+v (found %t)", check, r, ok)
		}
	}
	if code != 0 {
		t.Errorf("doctor with everything in place: exit %d", code)
	}
	// The test cluster runs the add-on and kube-proxy with the settings
	// docs/serverless.md recommends, and publishes kube-proxy's as kubeadm does.
	if w := rs["wake from zero"]; w.Status != "ok" || !strings.Contains(w.Detail, "reads the held requests every 100ms") ||
		!strings.Contains(w.Detail, "its interceptor tries a connection again after 100ms") ||
		!strings.Contains(w.Detail, "kube-proxy (iptables) programs Service addresses within 100ms") {
		t.Errorf("wake from zero: %+v", w)
	}
	if !strings.Contains(rs["pod security"].Detail, "enforces restricted") {
		t.Errorf("pod security: %+v", rs["pod security"])
	}
	// The test cluster's enforcer, kube-router, is a process on the host:
	// nothing in the API shows it, and doctor says it found none, and that
	// such an enforcer is the exception (docs/security.md).
	if np := rs["network policies"]; np.Status != "warn" || !strings.Contains(np.Detail, "found no NetworkPolicy enforcer running in any namespace") ||
		!strings.Contains(np.Fix, "outside Kubernetes") {
		t.Errorf("network policies: %+v", np)
	}

	// A service account that may only read pods: the denied things are named.
	cs := c.kc.Clientset
	must(t, errOf(cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "reader"}}, metav1.CreateOptions{})))
	must(t, errOf(cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "reader"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}}}}, metav1.CreateOptions{})))
	must(t, errOf(cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "reader"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "reader"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "reader", Namespace: ns}}}, metav1.CreateOptions{})))
	tok, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "reader", &authnv1.TokenRequest{}, metav1.CreateOptions{})
	must(t, err)
	admin, err := clientcmd.LoadFromFile(os.Getenv("KUBECONFIG"))
	must(t, err)
	server := admin.Clusters[admin.Contexts[admin.CurrentContext].Cluster]
	reader := writeKubeconfig(t, &clientcmdapi.Cluster{Server: server.Server, CertificateAuthorityData: server.CertificateAuthorityData,
		CertificateAuthority: server.CertificateAuthority}, &clientcmdapi.AuthInfo{Token: tok.Status.Token})
	rs, code = c.doctor(t, root, append(append([]string(nil), c.env...), "KUBECONFIG="+reader))
	p := rs["permissions"]
	// What is denied is named, in the order the chart renders the kinds:
	// those of the chart (its Deployment, KEDA's objects for scale), and
	// Helm's records; what the reader may do is not.
	if code != 1 || p.Status != "fail" || !strings.HasPrefix(p.Detail, "may not ") || !strings.Contains(p.Detail, "get deployments.apps") ||
		!strings.Contains(p.Detail, "create scaledobjects.keda.sh") || !strings.Contains(p.Detail, "create secrets") ||
		strings.Contains(p.Detail, "list pods") || !strings.Contains(p.Fix, "Role") {
		t.Errorf("doctor as a pod reader: exit %d, permissions %+v", code, p)
	}
	if rs["cluster"].Status != "ok" {
		t.Errorf("doctor as a pod reader: cluster %+v", rs["cluster"])
	}
	// It may list pods in its namespace only: doctor cannot tell.
	if np := rs["network policies"]; np.Status != "skip" || !strings.Contains(np.Detail, "may not list pods in kube-system") {
		t.Errorf("doctor as a pod reader: network policies %+v", np)
	}

	// A cluster without KEDA's and the add-on's APIs.
	hidden := hidingKubeconfig(t, func(path string) bool {
		return strings.HasPrefix(path, "/apis/keda.sh") || strings.HasPrefix(path, "/apis/http.keda.sh")
	})
	rs, code = c.doctor(t, root, append(append([]string(nil), c.env...), "KUBECONFIG="+hidden))
	e := rs["serverless engines"]
	if code != 1 || e.Status != "fail" || !strings.Contains(e.Detail, "keda.sh/v1alpha1 ScaledObject API (KEDA)") {
		t.Errorf("doctor without KEDA: exit %d, engines %+v", code, e)
	}
}

func errOf[T any](_ T, err error) error { return err }

// TestDoctorBus: doctor reaches the cluster's bus through a port-forward
// and finds JetStream; a bus that is not there, or a port that is not
// NATS, is a failure that names the bus.
func TestDoctorBus(t *testing.T) {
	c := needCluster(t)
	ns := c.restrictedNamespace(t, "e2e-bus")
	root := filepath.Join(t.TempDir(), "shop")
	c.mustSkiff(t, "", "init", root, "--kind", "function", "--lang", "go", "--name", "hello",
		"--registry", c.registry+"/e2e-bus", "-n", ns, "--non-interactive")
	manifest := filepath.Join(root, "skiff.yaml")
	replaceInFile(t, manifest, "workloads:\n", "events: {bus: nats://nats.nats.svc.cluster.local:4222}\nworkloads:\n")
	rs, code := c.doctor(t, root, c.env)
	if b := rs["event bus"]; b.Status != "ok" || !strings.Contains(b.Detail, "JetStream on") || !strings.Contains(b.Detail, "through pod nats-") {
		t.Errorf("event bus: %+v (exit %d)", b, code)
	}
	// The same port-forward carries skiff events publish.
	out := c.mustSkiff(t, root, "events", "publish", "com.example.order.placed", "--data", `{"n":1}`, "-o", "json")
	var pub struct {
		Stream string `json:"stream"`
		Seq    uint64 `json:"seq"`
	}
	if err := json.Unmarshal([]byte(out), &pub); err != nil || pub.Stream != "shop" || pub.Seq < 1 {
		t.Errorf("events publish printed %q (%v)", out, err)
	}
	// ... and events tail reads it back from the stream.
	out = c.mustSkiff(t, root, "events", "tail", "--since", "10m", "--count", "1", "--type", "com.example.order.placed", "-o", "json")
	var got struct {
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.Seq < 1 {
		t.Errorf("events tail printed %q (%v)", out, err)
	}
	for bad, want := range map[string]string{
		"nats://nobus.nats.svc.cluster.local:4222": `services "nobus" not found`,
		"nats://nats.nats.svc.cluster.local:8222":  "connecting to the bus nats://nats.nats.svc.cluster.local:8222",
	} {
		replaceInFile(t, manifest, "events: {bus: ", "events: {bus: "+bad+"} #")
		rs, code := c.doctor(t, root, c.env)
		if b := rs["event bus"]; code != 1 || b.Status != "fail" || !strings.Contains(b.Detail, want) || !strings.Contains(b.Fix, "JetStream") {
			t.Errorf("bus %s: exit %d, %+v", bad, code, b)
		}
		replaceInFile(t, manifest, "events: {bus: "+bad+"} #", "events: {bus: ")
	}
}
