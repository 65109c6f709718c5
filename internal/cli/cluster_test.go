package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/deploy"
	"github.com/skiffdev/skiff/internal/factory"
	"github.com/skiffdev/skiff/internal/kube"
	"github.com/skiffdev/skiff/internal/pipeline"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/target"
)

const clusterManifest = `apiVersion: skiff.dev/v1alpha1
name: shop
registry: registry.example.com/acme
workloads:
  - name: orders
    kind: service
    lang: go
    config: {GREETING: hello}
environments:
  prod:
    namespace: shop-prod
    context: prod-cluster
    workloads:
      orders: {replicas: 3}
`

const ordersImage = "registry.example.com/acme/orders@sha256:0000000000000000000000000000000000000000000000000000000000000001"

// fakeCluster is a cluster for the CLI's cluster verbs: a fake clientset
// and Helm's in-memory release storage behind the Factory.
type fakeCluster struct {
	cs       *fake.Clientset
	releases *storage.Storage
	// contexts are the kubeconfig contexts asked for.
	contexts []string
}

func newFakeCluster(t *testing.T, f *cmdutil.Factory, objs ...any) *fakeCluster {
	t.Helper()
	fc := &fakeCluster{cs: fake.NewClientset(), releases: storage.Init(driver.NewMemory())}
	for _, o := range objs {
		fc.add(t, o)
	}
	f.Session = factory.Sessions(func(_ context.Context, kubeContext string, _ func(string, ...any)) (*kube.Client, *deploy.Deployer, error) {
		fc.contexts = append(fc.contexts, kubeContext)
		d := &deploy.Deployer{Config: func(ns string) (*action.Configuration, error) {
			return &action.Configuration{Releases: fc.releases, KubeClient: &kubefake.PrintingKubeClient{Out: io.Discard},
				Capabilities: chartutil.DefaultCapabilities, Log: func(string, ...any) {}}, nil
		}}
		return &kube.Client{Clientset: fc.cs, ContextName: "fake"}, d, nil
	}, f.Getenv)
	return fc
}

func (fc *fakeCluster) add(t *testing.T, o any) {
	t.Helper()
	ctx := context.Background()
	var err error
	switch o := o.(type) {
	case *appsv1.Deployment:
		_, err = fc.cs.AppsV1().Deployments(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *corev1.Pod:
		_, err = fc.cs.CoreV1().Pods(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
}

func readyDeployment(ns string, replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: ns, Generation: 1, Labels: map[string]string{"app.kubernetes.io/instance": "shop-orders"}},
		Spec:       appsv1.DeploymentSpec{Replicas: &replicas},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: replicas, UpdatedReplicas: replicas, ReadyReplicas: replicas,
			AvailableReplicas: replicas},
	}
}

// runCLI runs skiff with args and returns the exit code, stdout and stderr.
func runCLI(t *testing.T, f *cmdutil.Factory, errOut *bytes.Buffer, args ...string) (int, string, string) {
	t.Helper()
	out := f.IOStreams.Out.(*bytes.Buffer)
	out.Reset()
	errOut.Reset()
	*f.Globals = cmdutil.GlobalOptions{}
	code := run(context.Background(), f, args)
	return code, out.String(), errOut.String()
}

func clusterProject(t *testing.T) (*cmdutil.Factory, *bytes.Buffer) {
	t.Helper()
	f, dir, errOut := testFactoryBuffers(t, false)
	if err := os.WriteFile(filepath.Join(dir, project.FileName), []byte(clusterManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	return f, errOut
}

func TestClusterVerbsOnFakes(t *testing.T) {
	f, errOut := clusterProject(t)
	fc := newFakeCluster(t, f, readyDeployment("shop", 1))

	// deploy: a release at revision 1, the summary in JSON.
	code, out, stderr := runCLI(t, f, errOut, "deploy", "--image", ordersImage, "-o", "json")
	if code != 0 {
		t.Fatalf("deploy exited %d:\n%s", code, stderr)
	}
	var deployed []pipeline.Deployment
	if err := json.Unmarshal([]byte(out), &deployed); err != nil {
		t.Fatalf("deploy -o json printed %q: %v", out, err)
	}
	if len(deployed) != 1 || deployed[0].Revision != 1 || deployed[0].Namespace != "shop" || deployed[0].Ready != "1/1" || deployed[0].Image != ordersImage {
		t.Errorf("deploy summary %+v", deployed)
	}
	for _, ev := range []string{`"event":"deploy-started"`, `"event":"deployed"`} {
		if !strings.Contains(stderr, ev) {
			t.Errorf("stderr lacks %s:\n%s", ev, stderr)
		}
	}

	// status: Ready, exit 0.
	code, out, _ = runCLI(t, f, errOut, "status", "-o", "json")
	var sts []target.Status
	if err := json.Unmarshal([]byte(out), &sts); err != nil || code != 0 || len(sts) != 1 || sts[0].State != target.StateReady || sts[0].Revision != 1 {
		t.Errorf("status exited %d with %s (%v)", code, out, err)
	}

	// config set --apply: a new revision with the new value, same image.
	code, _, stderr = runCLI(t, f, errOut, "config", "set", "GREETING=hi", "--apply")
	if code != 0 {
		t.Fatalf("config set --apply exited %d:\n%s", code, stderr)
	}
	rel, err := fc.releases.Last("shop-orders")
	if err != nil || rel.Version != 2 || rel.Config["config"].(map[string]any)["GREETING"] != "hi" || deploy.ImageOf(rel) != ordersImage {
		t.Fatalf("after config --apply: %+v, %v", rel, err)
	}

	// history: both revisions.
	code, out, _ = runCLI(t, f, errOut, "history", "orders", "-o", "json")
	var revs []deploy.Revision
	if err := json.Unmarshal([]byte(out), &revs); err != nil || code != 0 || len(revs) != 2 {
		t.Errorf("history exited %d with %s (%v)", code, out, err)
	}

	// rollback to 1: revision 3 runs revision 1's values.
	code, _, stderr = runCLI(t, f, errOut, "rollback", "orders", "1")
	if code != 0 {
		t.Fatalf("rollback exited %d:\n%s", code, stderr)
	}
	rel, _ = fc.releases.Last("shop-orders")
	if rel.Version != 3 || rel.Config["config"].(map[string]any)["GREETING"] != "hello" {
		t.Errorf("after rollback: revision %d, config %v", rel.Version, rel.Config["config"])
	}

	// secret set: the Secret exists, the pods are restarted.
	f.IOStreams.In.(*bytes.Buffer).WriteString("s3cret\n")
	code, _, stderr = runCLI(t, f, errOut, "secret", "set", "TOKEN")
	if code != 0 {
		t.Fatalf("secret set exited %d:\n%s", code, stderr)
	}
	ctx := context.Background()
	sec, err := fc.cs.CoreV1().Secrets("shop").Get(ctx, "orders-secrets", metav1.GetOptions{})
	if err != nil || string(sec.Data["TOKEN"]) != "s3cret" {
		t.Errorf("secret: %+v, %v", sec, err)
	}
	if strings.Contains(stderr, "s3cret") {
		t.Error("secret set printed the value")
	}
	d, _ := fc.cs.AppsV1().Deployments("shop").Get(ctx, "orders", metav1.GetOptions{})
	if d.Spec.Template.Annotations["skiff.dev/restartedAt"] == "" {
		t.Error("secret set did not restart the pods")
	}

	// logs: a line of the workload's pod.
	fc.add(t, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "orders-abc-1", Namespace: "shop", Labels: map[string]string{"app.kubernetes.io/instance": "shop-orders"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "orders"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
			{Name: "orders", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}},
	})
	code, out, stderr = runCLI(t, f, errOut, "logs", "orders", "--no-color")
	if code != 0 || !strings.Contains(out, "fake logs") || !strings.Contains(out, "orders-abc-1") {
		t.Errorf("logs exited %d: stdout %q stderr %q", code, out, stderr)
	}

	// delete: the release is gone.
	code, _, stderr = runCLI(t, f, errOut, "delete", "orders")
	if code != 0 {
		t.Fatalf("delete exited %d:\n%s", code, stderr)
	}
	if _, err := fc.releases.Last("shop-orders"); err == nil {
		t.Error("the release is still there after delete")
	}
	code, out, _ = runCLI(t, f, errOut, "status", "-o", "json")
	if code != 1 || !strings.Contains(out, `"state": "NotDeployed"`) {
		t.Errorf("status after delete exited %d: %s", code, out)
	}
}

func TestDeployToAnEnvironment(t *testing.T) {
	f, errOut := clusterProject(t)
	fc := newFakeCluster(t, f, readyDeployment("shop-prod", 3))
	code, out, stderr := runCLI(t, f, errOut, "deploy", "-e", "prod", "--image", ordersImage, "-o", "json")
	if code != 0 {
		t.Fatalf("deploy -e prod exited %d:\n%s", code, stderr)
	}
	// -o json: stderr holds events of the one schema, nothing else.
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		var ev struct {
			V             int
			Event, Phase  string
			Status, Error string
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.V != 1 || ev.Event == "" || ev.Phase == "" || ev.Status == "" {
			t.Errorf("deploy -o json wrote %q on stderr, not an event of the schema (%v)", line, err)
		}
	}
	if strings.Join(fc.contexts, ",") != "prod-cluster" {
		t.Errorf("connected to contexts %v, want prod's prod-cluster", fc.contexts)
	}
	var deployed []pipeline.Deployment
	if err := json.Unmarshal([]byte(out), &deployed); err != nil || deployed[0].Environment != "prod" || deployed[0].Namespace != "shop-prod" || deployed[0].Ready != "3/3" {
		t.Errorf("deploy -e prod summary %s (%v)", out, err)
	}
	rel, err := fc.releases.Last("shop-orders")
	if err != nil || rel.Namespace != "shop-prod" || rel.Config["replicas"] != float64(3) && rel.Config["replicas"] != 3 {
		t.Errorf("prod release %+v, %v", rel, err)
	}
	if !strings.Contains(rel.Info.Description, "environment prod") {
		t.Errorf("revision description %q does not name the environment", rel.Info.Description)
	}
	// --context wins over the environment's.
	code, _, stderr = runCLI(t, f, errOut, "status", "-e", "prod", "--context", "other")
	if code != 0 || fc.contexts[len(fc.contexts)-1] != "other" {
		t.Errorf("status --context other: exit %d, contexts %v\n%s", code, fc.contexts, stderr)
	}
	// config set would edit the top level, not prod's override: refused.
	code, _, stderr = runCLI(t, f, errOut, "config", "set", "GREETING=x", "-e", "prod")
	if code != cmdutil.ExitUsage || !strings.Contains(stderr, "edit environments.prod.workloads.<workload>.config") {
		t.Errorf("config set -e prod: exit %d\n%s", code, stderr)
	}
	code, out, _ = runCLI(t, f, errOut, "config", "list", "-e", "prod", "-o", "json")
	if code != 0 || !strings.Contains(out, `"GREETING": "hello"`) {
		t.Errorf("config list -e prod: exit %d: %s", code, out)
	}
	code, _, stderr = runCLI(t, f, errOut, "status", "-e", "nope")
	if code != cmdutil.ExitUsage || !strings.Contains(stderr, "it has: prod") {
		t.Errorf("status -e nope: exit %d\n%s", code, stderr)
	}
}

func TestDeployNoBuildWithoutARelease(t *testing.T) {
	f, errOut := clusterProject(t)
	newFakeCluster(t, f)
	code, _, stderr := runCLI(t, f, errOut, "deploy", "--no-build")
	if code != 1 || !strings.Contains(stderr, "--no-build: orders has no deployed image to reuse") {
		t.Errorf("deploy --no-build exited %d:\n%s", code, stderr)
	}
}
