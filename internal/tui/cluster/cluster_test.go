package cluster

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	helmaction "helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	helmtime "helm.sh/helm/v3/pkg/time"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	skiffchart "github.com/skiffdev/skiff/internal/chart"
	"github.com/skiffdev/skiff/internal/deploy"
	"github.com/skiffdev/skiff/internal/kube"
	"github.com/skiffdev/skiff/internal/natstest"
	"github.com/skiffdev/skiff/internal/pipeline"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/relay"
	"github.com/skiffdev/skiff/internal/relay/relayplan"
	"github.com/skiffdev/skiff/internal/target"
	"github.com/skiffdev/skiff/internal/tui"
)

// now is the tests' clock: the events' times are around it.
var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// digest is the image digest revision 1 of shop-orders runs.
const digest = "sha256:3f9a2c1b7d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4"

// newTestCluster is the cluster backend on a fake clientset and Helm's
// in-memory release storage holding revision 1 of shop-orders.
func newTestCluster(t *testing.T, objs ...any) (*Cluster, *fake.Clientset) {
	t.Helper()
	p := &project.Project{Name: "shop", Namespace: "shop", Workloads: []project.Workload{{Name: "orders", Kind: "service", Port: 8080}}}
	return newTestClusterOf(t, p, objs...)
}

// newTestClusterOf is newTestCluster for the project p.
func newTestClusterOf(t *testing.T, p *project.Project, objs ...any) (*Cluster, *fake.Clientset) {
	t.Helper()
	cs := fake.NewClientset()
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *appsv1.Deployment:
			_, err = cs.AppsV1().Deployments(o.Namespace).Create(context.Background(), o, metav1.CreateOptions{})
		case *corev1.Pod:
			_, err = cs.CoreV1().Pods(o.Namespace).Create(context.Background(), o, metav1.CreateOptions{})
		case *corev1.Event:
			_, err = cs.CoreV1().Events(o.Namespace).Create(context.Background(), o, metav1.CreateOptions{})
		case *corev1.Secret:
			_, err = cs.CoreV1().Secrets(o.Namespace).Create(context.Background(), o, metav1.CreateOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	cfg := &helmaction.Configuration{
		Releases:     storage.Init(driver.NewMemory()),
		KubeClient:   &kubefake.PrintingKubeClient{Out: io.Discard},
		Capabilities: chartutil.DefaultCapabilities,
		Log:          func(string, ...any) {},
	}
	err := cfg.Releases.Create(&release.Release{Name: "shop-orders", Namespace: "shop", Version: 1,
		Info:   &release.Info{Status: release.StatusDeployed, LastDeployed: helmtime.Now()},
		Chart:  &chart.Chart{Metadata: &chart.Metadata{Name: "skiff", Version: "0.1.0"}},
		Config: map[string]any{"image": map[string]any{"ref": "r.example/orders@" + digest}}})
	if err != nil {
		t.Fatal(err)
	}
	d := &deploy.Deployer{Config: func(string) (*helmaction.Configuration, error) { return cfg, nil }}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sink, activity := tui.NewActivity(ctx)
	s := pipeline.NewSession(&pipeline.Pipeline{Project: p, Events: sink}, &kube.Client{Clientset: cs, ContextName: "kind-shop"}, d)
	t.Cleanup(s.Close)
	c := New(Config{Session: s, Debounce: 10 * time.Millisecond,
		ClusterConfig: tui.ClusterConfig{Namespace: "shop", Workloads: p.Workloads, Activity: activity}})
	t.Cleanup(func() { _ = c.Close() })
	return c, cs
}

func ordersDeployment(ready int32) *appsv1.Deployment {
	two := int32(2)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: "shop", Generation: 1, Labels: map[string]string{"app.kubernetes.io/instance": "shop-orders"}},
		Spec:       appsv1.DeploymentSpec{Replicas: &two},
		Status:     appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: ready},
	}
}

func next(t *testing.T, ch <-chan tui.StatusUpdate) tui.StatusUpdate {
	t.Helper()
	select {
	case u := <-ch:
		if u.Err != nil {
			t.Fatalf("status update failed: %v", u.Err)
		}
		return u
	case <-time.After(5 * time.Second):
		t.Fatal("no status update within 5s")
	}
	return tui.StatusUpdate{}
}

func TestClusterStatusesFollowTheWatch(t *testing.T) {
	c, cs := newTestCluster(t, ordersDeployment(1))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := c.Statuses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	u := next(t, ch)
	if len(u.Statuses) != 1 || u.Statuses[0].State != target.StateProgressing || u.Statuses[0].Ready != 1 || u.Statuses[0].Revision != 1 {
		t.Fatalf("first status = %+v, want orders Progressing 1/2 at revision 1", u.Statuses)
	}
	if _, err := cs.AppsV1().Deployments("shop").UpdateStatus(ctx, ordersDeployment(2), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case u := <-ch:
			if u.Err == nil && u.Statuses[0].State == target.StateReady {
				cancel()
				for range ch { // closed once ctx ends
				}
				return
			}
		case <-deadline:
			t.Fatal("the Deployment became ready but no status said so within 5s")
		}
	}
}

func TestClusterEventsOfTheWorkloadOnly(t *testing.T) {
	ev := func(name, kind, obj, reason string, at time.Time) *corev1.Event {
		return &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"},
			InvolvedObject: corev1.ObjectReference{Kind: kind, Name: obj}, Reason: reason, Type: "Normal",
			LastTimestamp: metav1.NewTime(at), Message: reason + " happened"}
	}
	c, _ := newTestCluster(t,
		ev("e1", "Pod", "orders-7d9f8c6b5-x2lpq", "Started", now.Add(-time.Minute)),
		ev("e2", "Deployment", "orders", "ScalingReplicaSet", now.Add(-3*time.Minute)),
		ev("e3", "ReplicaSet", "orders-7d9f8c6b5", "SuccessfulCreate", now.Add(-2*time.Minute)),
		ev("e4", "Pod", "orders-api-6c7b8d9f5-abcde", "Started", now),
		ev("e5", "Pod", "payments-5d6f7-abcde", "Started", now),
	)
	got, err := c.Events(context.Background(), "orders")
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, e := range got {
		reasons = append(reasons, e.Object+" "+e.Reason)
	}
	want := "deployment/orders ScalingReplicaSet,replicaset/orders-7d9f8c6b5 SuccessfulCreate,pod/orders-7d9f8c6b5-x2lpq Started"
	if strings.Join(reasons, ",") != want {
		t.Errorf("events %q, want %q (oldest first, not orders-api's)", strings.Join(reasons, ","), want)
	}
}

func TestClusterActions(t *testing.T) {
	c, _ := newTestCluster(t)
	err := c.Restart(context.Background(), "orders")
	if err == nil || !strings.Contains(err.Error(), "run `skiff deploy orders` first") {
		t.Errorf("restart without a Deployment: %v, want advice to deploy", err)
	}
	revs, err := c.History(context.Background(), "orders")
	if err != nil || len(revs) != 1 || revs[0].Revision != 1 {
		t.Errorf("history = %+v, %v; want revision 1", revs, err)
	}
	if _, err := c.StartPortForward(context.Background(), "orders"); err == nil || !strings.Contains(err.Error(), "orders has no pods in namespace shop") {
		t.Errorf("port-forward without a pod: %v, want no pods", err)
	}
	if _, err := c.Invoke(context.Background(), "nope"); err == nil || !strings.Contains(err.Error(), `no workload "nope"`) {
		t.Errorf("invoke of an unknown workload: %v", err)
	}
	if err := c.StopPortForward(context.Background(), "orders"); err != nil {
		t.Errorf("stopping a port-forward that does not run: %v", err)
	}
}

func TestClusterLogs(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "orders-7d9f8c6b5-x2lpq", Namespace: "shop", Labels: map[string]string{"app.kubernetes.io/instance": "shop-orders"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "orders"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
			{Name: "orders", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}},
	}
	c, _ := newTestCluster(t, pod)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := c.Logs(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case l := <-ch:
		// The fake clientset answers every log request with "fake logs".
		if l.Pod != pod.Name || l.Message != "fake logs" {
			t.Errorf("line = %+v", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no log line within 5s")
	}
}

// The dashboard's Delete removes what `skiff delete` removes: the release,
// the consumers of the workload's triggers on the bus (each would keep
// every later event of its type, unread, for ever), and the Secret of its
// `skiff secret` values.
func TestDeleteRemovesWhatSkiffDeleteRemoves(t *testing.T) {
	url := natstest.Start(t)
	p := &project.Project{Name: "shop", Namespace: "shop", Events: &project.Events{Bus: url, Stream: "shop"},
		Workloads: []project.Workload{{Name: "orders", Kind: "function", Port: 8080,
			Triggers: []project.Trigger{{Event: "com.example.order.placed"}}}}}
	plan, err := relayplan.For(p, &p.Workloads[0])
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	js := natstest.Connect(t, url)
	if err := relay.Subscribe(ctx, js, "orders", plan, 1); err != nil {
		t.Fatal(err)
	}
	if n := len(plan.Triggers); n != 1 {
		t.Fatalf("orders has %d consumers before the delete", n)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: skiffchart.SecretName("orders"), Namespace: "shop"}}
	c, cs := newTestClusterOf(t, p, secret)
	if err := c.Delete(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.History(ctx, "orders"); err == nil {
		t.Error("the release is still there")
	}
	if _, err := cs.CoreV1().Secrets("shop").Get(ctx, secret.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the Secret of orders' values is still there (%v)", err)
	}
	st, err := js.Stream(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	for name := range st.ConsumerNames(ctx).Name() {
		t.Errorf("consumer %s is still on the bus", name)
	}
	// The session reported each removal; the dashboard follows them.
	ch, err := c.Activity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(ch) > 0 {
		ev := <-ch
		got = append(got, fmt.Sprintf("%s %s %s", ev.Kind, ev.Workload, ev.Object))
	}
	want := []string{"deleted orders release", "deleted orders consumers", "deleted orders secret/" + secret.Name}
	if !slices.Equal(got, want) {
		t.Errorf("the session reported %q, want %q", got, want)
	}
}

// A rollback through the session reports its start and its end.
func TestClusterRollbackReportsItsSteps(t *testing.T) {
	c, _ := newTestCluster(t, ordersDeployment(2))
	ctx := context.Background()
	if _, err := c.Rollback(ctx, "orders", 1); err != nil {
		t.Fatal(err)
	}
	ch, err := c.Activity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(ch) > 0 {
		ev := <-ch
		got = append(got, fmt.Sprintf("%s %s %s %d", ev.Kind, ev.Workload, ev.Release, ev.Revision))
	}
	want := []string{"rollback-started orders shop-orders 1", "rolled-back orders shop-orders 2"}
	if !slices.Equal(got, want) {
		t.Errorf("the session reported %q, want %q", got, want)
	}
}

// The dashboard's header names the session's kubeconfig context, and its
// rows the release of each workload.
func TestClusterNamesContextAndReleases(t *testing.T) {
	c, _ := newTestCluster(t)
	if got := c.Context(); got != "kind-shop" {
		t.Errorf("Context() = %q, want kind-shop", got)
	}
	if got := c.Release("orders"); got != "shop-orders" {
		t.Errorf("Release(orders) = %q, want shop-orders", got)
	}
	if got := c.Release("nope"); got != "" {
		t.Errorf("Release(nope) = %q, want none", got)
	}
}
