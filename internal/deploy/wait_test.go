package deploy

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	helmkube "helm.sh/helm/v3/pkg/kube"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// onePod is a Helm kube client whose releases hold one pod, orders-1.
type onePod struct{ kubefake.PrintingKubeClient }

func (*onePod) Build(io.Reader, bool) (helmkube.ResourceList, error) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "orders-1", Namespace: "shop"}}
	return helmkube.ResourceList{{Name: "orders-1", Namespace: "shop", Object: pod,
		Mapping: &meta.RESTMapping{GroupVersionKind: corev1.SchemeGroupVersion.WithKind("Pod")}}}, nil
}

func waitFixture(ready func(get int) bool) (*Deployer, *fake.Clientset, *int) {
	cs := fake.NewClientset()
	gets := 0
	cs.PrependReactor("get", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		gets++
		status := corev1.ConditionFalse
		if ready(gets) {
			status = corev1.ConditionTrue
		}
		return true, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "orders-1", Namespace: "shop"},
			Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}}}, nil
	})
	cfg := &action.Configuration{Releases: storage.Init(driver.NewMemory()), KubeClient: &onePod{kubefake.PrintingKubeClient{Out: io.Discard}},
		Capabilities: chartutil.DefaultCapabilities, Log: func(string, ...any) {}}
	d := &Deployer{Config: func(string) (*action.Configuration, error) { return cfg, nil }, Clientset: cs, WaitInterval: time.Millisecond}
	return d, cs, &gets
}

// WaitReady asks Helm's readiness checks from the caller's goroutine
// until the resources are ready.
func TestWaitReadyAsksUntilReady(t *testing.T) {
	d, _, gets := waitFixture(func(get int) bool { return get >= 3 })
	rel := &Record{Name: "shop-orders", Namespace: "shop", Manifest: "kind: Pod"}
	if err := d.WaitReady(context.Background(), rel); err != nil {
		t.Fatal(err)
	}
	if *gets != 3 {
		t.Errorf("asked %d times, want 3", *gets)
	}
}

// Cancelled (Ctrl-C, or the release's timeout), WaitReady returns with the
// context's cause and nothing goes on asking (TestMain's leak check).
func TestWaitReadyEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	d, _, gets := waitFixture(func(get int) bool {
		if get == 2 {
			cancel(errors.New("not ready within 5m0s"))
		}
		return false
	})
	rel := &Record{Name: "shop-orders", Namespace: "shop", Manifest: "kind: Pod"}
	err := d.WaitReady(ctx, rel)
	if err == nil || !strings.Contains(err.Error(), "not ready within 5m0s") {
		t.Fatalf("err = %v", err)
	}
	if *gets != 2 {
		t.Errorf("asked %d times after the cancel, want none", *gets-2)
	}
}
