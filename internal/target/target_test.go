package target

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/release"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/skiffdev/skiff/internal/deploy"
	"github.com/skiffdev/skiff/internal/project"
)

func dep(name string, replicas, ready int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Generation: 1, Labels: map[string]string{"app.kubernetes.io/instance": "shop-orders"}},
		Spec:       appsv1.DeploymentSpec{Replicas: &replicas},
		Status:     appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: replicas, UpdatedReplicas: replicas, ReadyReplicas: ready},
	}
}

func pod(name string, ready bool, restarts int32) *corev1.Pod {
	cond := corev1.ConditionFalse
	if ready {
		cond = corev1.ConditionTrue
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Labels: map[string]string{"app.kubernetes.io/instance": "shop-orders"}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: cond}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "orders", RestartCount: restarts}}},
	}
}

func deployed(manifest string) *release.Release {
	return &release.Release{Name: "shop-orders", Version: 4, Manifest: manifest,
		Info:   &release.Info{Status: release.StatusDeployed},
		Config: map[string]any{"image": map[string]any{"ref": "r/orders@sha256:1"}}}
}

func cluster(t *testing.T, root string, objs ...any) (*Cluster, *fake.Clientset) {
	t.Helper()
	cs := fake.NewClientset()
	ctx := context.Background()
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *appsv1.Deployment:
			_, err = cs.AppsV1().Deployments("shop").Create(ctx, o, metav1.CreateOptions{})
		case *corev1.Pod:
			_, err = cs.CoreV1().Pods("shop").Create(ctx, o, metav1.CreateOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return &Cluster{Clientset: cs, Namespace: "shop", Project: &project.Project{Name: "shop", Env: "prod"}, Root: root}, cs
}

var orders = &project.Workload{Name: "orders", Kind: "service", Path: "orders", Port: 8080}

func TestDeploymentStates(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		objs  []any
		rel   *release.Release
		state string
		ready string
	}{
		{"not deployed", nil, nil, StateNotDeployed, "0/0"},
		{"ready", []any{dep("orders", 2, 2), pod("orders-a", true, 1), pod("orders-b", true, 2)}, deployed(""), StateReady, "2/2"},
		{"progressing", []any{dep("orders", 2, 1), pod("orders-a", true, 0)}, deployed(""), StateProgressing, "1/2"},
		{"idle at zero on purpose", []any{dep("orders", 0, 0)}, deployed(""), StateIdle, "0/0"},
		{"release without its Deployment", nil, deployed(""), StateFailed, "0/0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := cluster(t, "", tc.objs...)
			tg := c.For(orders)
			if _, ok := tg.(*Deployment); !ok {
				t.Fatalf("target %T, want a Deployment", tg)
			}
			st, err := tg.Status(ctx, tc.rel)
			if err != nil {
				t.Fatal(err)
			}
			if got := st.State; got != tc.state {
				t.Errorf("state %s, want %s", got, tc.state)
			}
			if got := strings.Join([]string{itoa(st.Ready), itoa(st.Desired)}, "/"); got != tc.ready {
				t.Errorf("ready %s, want %s", got, tc.ready)
			}
			if st.Environment != "prod" || st.Release != "shop-orders" {
				t.Errorf("status %+v", st)
			}
			if tc.rel != nil && (st.Revision != 4 || st.Image != "r/orders@sha256:1" || st.Endpoint != "http://orders.shop.svc.cluster.local:8080") {
				t.Errorf("release fields %+v", st)
			}
		})
	}
	c, _ := cluster(t, "", dep("orders", 2, 2), pod("orders-a", true, 1), pod("orders-b", true, 2))
	st, _ := c.For(orders).Status(ctx, deployed(""))
	if st.Restarts != 3 {
		t.Errorf("restarts %d, want 3", st.Restarts)
	}
	if !st.Healthy() {
		t.Error("a ready workload is not healthy")
	}
	if idle := (&Status{State: StateIdle}); !idle.Healthy() {
		t.Error("an idle workload (at zero on purpose) is not healthy")
	}
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

// A workload with its own chart/ is a Chart target: its status is that of
// the Deployments its release holds, whatever their names.
func TestOwnChartReportsItsRealStatus(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "orders", "chart"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "orders", "chart", "Chart.yaml"), []byte("apiVersion: v2\nname: own\nversion: 1.0.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	manifest := `---
# Source: own/templates/cm.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: own
---
# Source: own/templates/api.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: orders-api
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: orders-worker
`
	ctx := context.Background()
	c, _ := cluster(t, root, dep("orders-api", 2, 2), dep("orders-worker", 1, 1))
	tg := c.For(orders)
	if _, ok := tg.(*Chart); !ok {
		t.Fatalf("target %T, want a Chart", tg)
	}
	st, err := tg.Status(ctx, deployed(manifest))
	if err != nil {
		t.Fatal(err)
	}
	if st.State != StateReady || st.Ready != 3 || st.Desired != 3 {
		t.Errorf("own chart status %+v, want Ready 3/3", st)
	}
	c, _ = cluster(t, root, dep("orders-api", 2, 1), dep("orders-worker", 1, 1))
	if st, _ := c.For(orders).Status(ctx, deployed(manifest)); st.State != StateProgressing {
		t.Errorf("own chart with a pod missing: %s, want Progressing", st.State)
	}
	// A chart with nothing that has pods is as its release is.
	c, _ = cluster(t, root)
	if st, _ := c.For(orders).Status(ctx, deployed("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: own\n")); st.State != StateReady {
		t.Errorf("own chart of ConfigMaps: %s, want Ready", st.State)
	}
	// Restart rolls every Deployment of the release.
	c, cs := cluster(t, root, dep("orders-api", 2, 2), dep("orders-worker", 1, 1))
	if err := c.For(orders).Restart(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"orders-api", "orders-worker"} {
		d, _ := cs.AppsV1().Deployments("shop").Get(ctx, n, metav1.GetOptions{})
		if d.Spec.Template.Annotations["skiff.dev/restartedAt"] == "" {
			t.Errorf("%s was not restarted", n)
		}
	}
}

func TestReadyPodAndRestart(t *testing.T) {
	ctx := context.Background()
	c, cs := cluster(t, "", dep("orders", 2, 1), pod("orders-a", false, 0), pod("orders-b", true, 0))
	p, err := c.For(orders).ReadyPod(ctx)
	if err != nil || p.Name != "orders-b" {
		t.Fatalf("ReadyPod = %v, %v; want orders-b", p, err)
	}
	if err := c.For(orders).Restart(ctx); err != nil {
		t.Fatal(err)
	}
	d, _ := cs.AppsV1().Deployments("shop").Get(ctx, "orders", metav1.GetOptions{})
	if d.Spec.Template.Annotations["skiff.dev/restartedAt"] == "" {
		t.Error("the Deployment was not restarted")
	}
	empty, _ := cluster(t, "")
	var notRunning *NotRunningError
	if err := empty.For(orders).Restart(ctx); !errors.As(err, &notRunning) || !strings.Contains(err.Error(), "run `skiff deploy orders` first") {
		t.Errorf("restart of nothing: %v", err)
	}
	if _, err := empty.For(orders).ReadyPod(ctx); err == nil || !strings.Contains(err.Error(), "orders has no pods") {
		t.Errorf("ReadyPod of nothing: %v", err)
	}
	c, _ = cluster(t, "", pod("orders-a", false, 0))
	if _, err := c.For(orders).ReadyPod(ctx); err == nil || !strings.Contains(err.Error(), "no pod of orders is ready") {
		t.Errorf("ReadyPod with none ready: %v", err)
	}
}

// fakeReleases serves one release, or none.
type fakeReleases struct{ rel *release.Release }

func (f fakeReleases) WaitReady(context.Context, *release.Release) error { return nil }

func (f fakeReleases) Get(_ context.Context, name, ns string) (*release.Release, error) {
	if f.rel == nil {
		return nil, &deploy.NotFoundError{Release: name, Namespace: ns}
	}
	return f.rel, nil
}

func TestReadGetsTheReleaseFirst(t *testing.T) {
	ctx := context.Background()
	c, _ := cluster(t, "", dep("orders", 1, 1))
	st, err := Read(ctx, fakeReleases{}, c.For(orders), "shop")
	if err != nil || st.State != StateNotDeployed {
		t.Errorf("Read without a release = %+v, %v", st, err)
	}
	st, err = Read(ctx, fakeReleases{deployed("")}, c.For(orders), "shop")
	if err != nil || st.State != StateReady || st.Revision != 4 {
		t.Errorf("Read = %+v, %v", st, err)
	}
}

// An own chart's Deployments need not carry the release label: restart
// reads their names from the release, as status does.
func TestOwnChartRestartFollowsTheRelease(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "orders", "chart"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "orders", "chart", "Chart.yaml"), []byte("apiVersion: v2\nname: own\nversion: 1.0.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unlabelled := dep("api", 1, 1)
	unlabelled.Labels = nil
	ctx := context.Background()
	c, cs := cluster(t, root, unlabelled)
	c.Releases = fakeReleases{deployed("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n")}
	if err := c.For(orders).Restart(ctx); err != nil {
		t.Fatal(err)
	}
	d, _ := cs.AppsV1().Deployments("shop").Get(ctx, "api", metav1.GetOptions{})
	if d.Spec.Template.Annotations["skiff.dev/restartedAt"] == "" {
		t.Error("the release's unlabelled Deployment was not restarted")
	}
	c.Releases = fakeReleases{}
	var notRunning *NotRunningError
	if err := c.For(orders).Restart(ctx); !errors.As(err, &notRunning) {
		t.Errorf("restart without a release: %v, want NotRunningError", err)
	}
}
