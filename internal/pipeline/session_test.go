package pipeline

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/skiffdev/skiff/internal/deploy"
	"github.com/skiffdev/skiff/internal/kube"
	"github.com/skiffdev/skiff/internal/project"
)

func TestMain(m *testing.M) {
	// Nothing the pipeline or a session starts may outlive the call.
	goleak.VerifyTestMain(m)
}

// An interrupt while the session waits for a release (its target's wait:
// the Deployment's rollout, watched) stops the wait at once, rolls the
// release back to the revision that ran, and leaves nothing running
// (TestMain's leak check).
func TestInterruptDuringTheTargetsWaitRollsBack(t *testing.T) {
	p := &project.Project{Name: "shop", Namespace: "shop", Workloads: []project.Workload{{Name: "orders", Kind: "service", Lang: "go", Port: 8080}}}
	two := int32(2)
	stuck := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: "shop", Generation: 2},
		Spec: appsv1.DeploymentSpec{Replicas: &two}, Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 2}}
	ready := stuck.DeepCopy()
	ready.Status.ReadyReplicas, ready.Status.AvailableReplicas = 2, 2
	cs := fake.NewClientset(stuck)
	cfg := &action.Configuration{Releases: storage.Init(driver.NewMemory()),
		KubeClient:   &kubefake.FailingKubeClient{PrintingKubeClient: kubefake.PrintingKubeClient{Out: io.Discard}, WaitError: errors.New("Helm's own wait was used")},
		Capabilities: chartutil.DefaultCapabilities, Log: func(string, ...any) {}}
	revision := func() int {
		if last, err := cfg.Releases.Last("shop-orders"); err == nil {
			return last.Version
		}
		return 0
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs.PrependWatchReactor("deployments", func(k8stesting.Action) (bool, watch.Interface, error) {
		if revision() == 2 {
			// Revision 2 is applied and its wait has started: the user
			// presses Ctrl-C.
			cancel()
		}
		return false, nil, nil
	})
	cs.PrependReactor("get", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		if revision() != 2 {
			return true, ready, nil // revisions 1 and 3 run
		}
		return false, nil, nil // revision 2's pods never get ready
	})
	d := &deploy.Deployer{Config: func(string) (*action.Configuration, error) { return cfg, nil }}
	var events []Event
	s := NewSession(&Pipeline{Project: p, Root: t.TempDir(), Events: func(ev Event) { events = append(events, ev) }}, &kube.Client{Clientset: cs}, d)
	defer s.Close()

	if _, err := s.Deploy(context.Background(), s.Releases(nil, time.Minute), p.Workloads, map[string]string{"orders": "r.example/orders@sha256:1"}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Deploy(ctx, s.Releases(nil, time.Minute), p.Workloads, map[string]string{"orders": "r.example/orders@sha256:2"})
	var fe *deploy.FailedError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "was interrupted") || fe.RolledBackTo != 1 {
		t.Fatalf("err = %v", err)
	}
	rel, err := d.Get(context.Background(), "shop-orders", "shop")
	if err != nil || deploy.ImageOf(rel) != "r.example/orders@sha256:1" {
		t.Errorf("after the interrupt %s runs (%v), want revision 1's image", deploy.ImageOf(rel), err)
	}
	var kinds []string
	for _, ev := range events {
		kinds = append(kinds, string(ev.Kind))
	}
	if got := strings.Join(kinds, " "); !strings.Contains(got, "interrupted failed") {
		t.Errorf("events %s, want the interrupt and the failure reported", got)
	}
}

// A workload with triggers is deleted only once the bus answers, so that
// its consumers go with its release: an unreachable bus changes nothing.
func TestDeleteChangesNothingWhenTheBusDoesNotAnswer(t *testing.T) {
	p := &project.Project{Name: "shop", Namespace: "shop", Events: &project.Events{Bus: "nats://127.0.0.1:1", RelayImage: "r.example/relay@sha256:1"},
		Workloads: []project.Workload{{Name: "thumbs", Kind: "function", Lang: "go", Port: 8080,
			Triggers: []project.Trigger{{Event: "com.example.image.uploaded"}}}}}
	cfg := &action.Configuration{Releases: storage.Init(driver.NewMemory()),
		KubeClient:   &kubefake.PrintingKubeClient{Out: io.Discard},
		Capabilities: chartutil.DefaultCapabilities, Log: func(string, ...any) {}}
	d := &deploy.Deployer{Config: func(string) (*action.Configuration, error) { return cfg, nil }}
	s := NewSession(&Pipeline{Project: p, Root: t.TempDir()}, &kube.Client{Clientset: fake.NewClientset()}, d)
	defer s.Close()
	d.Wait = func(context.Context, *deploy.Record) error { return nil }
	if _, err := s.Deploy(context.Background(), Releases{Releaser: d}, p.Workloads, map[string]string{"thumbs": "r.example/thumbs@sha256:1"}); err != nil {
		t.Fatal(err)
	}
	err := s.Delete(context.Background(), DeleteOptions{Timeout: time.Minute}, "thumbs")
	if err == nil || !strings.Contains(err.Error(), "delete changed nothing") {
		t.Fatalf("err = %v", err)
	}
	if _, err := d.Get(context.Background(), "shop-thumbs", "shop"); err != nil {
		t.Errorf("the release is gone though its consumers could not be: %v", err)
	}
}

// Without a skiff-relay image, a deploy goes on without the metrics proxy
// and says so once, naming the fix; with metrics.proxy false, or an
// image, it says nothing.
func TestPreflightWarnsWithoutARelayImage(t *testing.T) {
	off := false
	for _, tc := range []struct {
		name    string
		relay   string
		metrics *project.Metrics
		warned  bool
	}{
		{"no image", "", nil, true},
		{"proxy off", "", &project.Metrics{Proxy: &off}, false},
		{"an image", "r.example/relay@sha256:1", nil, false},
	} {
		p := &project.Project{Name: "shop", Namespace: "shop", RelayImage: tc.relay, Metrics: tc.metrics,
			Workloads: []project.Workload{{Name: "orders", Kind: "service", Lang: "go", Port: 8080}}}
		var notices []string
		s := NewSession(&Pipeline{Project: p, Root: t.TempDir(), Events: func(ev Event) {
			if ev.Kind == Notice {
				notices = append(notices, ev.Message)
			}
		}}, &kube.Client{Clientset: fake.NewClientset()}, &deploy.Deployer{})
		err := s.Preflight(context.Background(), p.Workloads)
		s.Close()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		warned := len(notices) == 1 && strings.Contains(notices[0], "without the metrics proxy") &&
			strings.Contains(notices[0], "SKIFF_RELAY_IMAGE") && strings.Contains(notices[0], "metrics.proxy: false")
		if warned != tc.warned || len(notices) > 1 {
			t.Errorf("%s: notices %q", tc.name, notices)
		}
	}
}
