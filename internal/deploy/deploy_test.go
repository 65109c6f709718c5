package deploy

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	helmkube "helm.sh/helm/v3/pkg/kube"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"

	"github.com/skiffdev/skiff/internal/chart"
	"github.com/skiffdev/skiff/internal/kube"
)

type fixture struct {
	cfg  *action.Configuration
	kube *waitFails
	d    *Deployer
}

// waitFails fails the next n waits for resources, then succeeds.
type waitFails struct {
	kubefake.FailingKubeClient
	n int
	// waiting, when set, is closed by the first wait, which then blocks
	// until hold is closed: resources that never get ready.
	waiting, hold chan struct{}
	once          sync.Once
}

func (w *waitFails) Wait(resources helmkube.ResourceList, timeout time.Duration) error {
	first := false
	if w.waiting != nil {
		w.once.Do(func() { first = true; close(w.waiting) })
	}
	if first {
		<-w.hold
		return errors.New("timed out waiting for the condition")
	}
	if w.n > 0 {
		w.n--
		return errors.New("timed out waiting for the condition")
	}
	return w.FailingKubeClient.Wait(resources, timeout)
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	kc := &waitFails{FailingKubeClient: kubefake.FailingKubeClient{PrintingKubeClient: kubefake.PrintingKubeClient{Out: io.Discard}}}
	cfg := &action.Configuration{
		Releases:     storage.Init(driver.NewMemory()),
		KubeClient:   kc,
		Capabilities: chartutil.DefaultCapabilities,
		Log:          func(string, ...any) {},
	}
	return &fixture{cfg: cfg, kube: kc, d: &Deployer{Config: func(string) (*action.Configuration, error) { return cfg, nil }}}
}

func release1(t *testing.T, image string) Release {
	c, err := chart.LoadBase()
	if err != nil {
		t.Fatal(err)
	}
	return Release{Name: "shop-orders", Namespace: "shop", Chart: c, Timeout: time.Minute,
		Values: map[string]any{"project": "shop", "workload": "orders", "image": map[string]any{"ref": image}}}
}

func TestDeployInstallsThenUpgrades(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	res, err := f.d.Deploy(ctx, release1(t, "img@sha256:1"), "orders")
	if err != nil {
		t.Fatal(err)
	}
	if res.Revision != 1 || !res.Installed || res.Status != "deployed" {
		t.Errorf("first deploy = %+v", res)
	}
	res, err = f.d.Deploy(ctx, release1(t, "img@sha256:2"), "orders")
	if err != nil {
		t.Fatal(err)
	}
	if res.Revision != 2 || res.Installed {
		t.Errorf("second deploy = %+v", res)
	}
	hist, err := f.d.History("shop-orders", "shop")
	if err != nil || len(hist) != 2 || hist[0].Image != "img@sha256:1" || hist[1].Image != "img@sha256:2" || hist[1].Status != "deployed" {
		t.Fatalf("history = %+v, %v", hist, err)
	}
	rev, err := f.d.Rollback("shop-orders", "shop", 0, time.Minute)
	if err != nil || rev != 3 {
		t.Fatalf("rollback = %d, %v", rev, err)
	}
	rel, _ := f.d.Get("shop-orders", "shop")
	if ImageOf(rel) != "img@sha256:1" {
		t.Errorf("after rollback the image is %q", ImageOf(rel))
	}
	if _, err := f.d.Rollback("shop-orders", "shop", 9, time.Minute); err == nil || !strings.Contains(err.Error(), "no revision 9") {
		t.Errorf("rollback to a missing revision: %v", err)
	}
}

func TestFailedUpgradeRollsBack(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.d.Deploy(ctx, release1(t, "img@sha256:good"), "orders"); err != nil {
		t.Fatal(err)
	}
	f.kube.n = 1
	f.d.Diagnose = func(context.Context, string, string) []kube.PodProblem {
		code := int32(1)
		return []kube.PodProblem{{Pod: "orders-1", Reason: "CrashLoopBackOff", ExitCode: &code, Restarts: 3, Logs: []string{"panic: boom"}}}
	}
	_, err := f.d.Deploy(ctx, release1(t, "img@sha256:bad"), "orders")
	var fe *FailedError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v, want a FailedError", err)
	}
	if fe.RolledBackTo != 1 || fe.Revision != 2 {
		t.Errorf("FailedError = %+v", fe)
	}
	for _, want := range []string{"CrashLoopBackOff", "exit code 1", "panic: boom", "rolled back to revision 1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	rel, _ := f.d.Get("shop-orders", "shop")
	if ImageOf(rel) != "img@sha256:good" || rel.Info.Status != release.StatusDeployed {
		t.Errorf("after the failed deploy: image %q status %s", ImageOf(rel), rel.Info.Status)
	}
}

func TestFailedFirstInstallIsRemoved(t *testing.T) {
	f := newFixture(t)
	f.kube.n = 1
	_, err := f.d.Deploy(context.Background(), release1(t, "img@sha256:bad"), "orders")
	var fe *FailedError
	if !errors.As(err, &fe) || fe.RolledBackTo != 0 || !strings.Contains(err.Error(), "first install was removed") {
		t.Fatalf("err = %v", err)
	}
	var nf *NotFoundError
	if _, err := f.d.Get("shop-orders", "shop"); !errors.As(err, &nf) {
		t.Errorf("the failed release is still there: %v", err)
	}
}

func TestFatalProblemStopsWaitingEarly(t *testing.T) {
	f := newFixture(t)
	f.kube.WaitDuration = 30 * time.Second // Helm would wait this long
	f.d.PollInterval = 10 * time.Millisecond
	f.d.FatalAfter = 50 * time.Millisecond
	f.d.Diagnose = func(context.Context, string, string) []kube.PodProblem {
		return []kube.PodProblem{{Pod: "orders-1", Reason: "ImagePullBackOff", Image: "img@sha256:missing"}}
	}
	start := time.Now()
	_, err := f.d.Deploy(context.Background(), release1(t, "img@sha256:missing"), "orders")
	if err == nil || !strings.Contains(err.Error(), "ImagePullBackOff for image img@sha256:missing") {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("waited %s; a fatal problem should stop the wait", time.Since(start))
	}
}

func TestPendingReleaseIsReported(t *testing.T) {
	f := newFixture(t)
	r := release1(t, "img@sha256:1")
	if _, err := f.d.Deploy(context.Background(), r, "orders"); err != nil {
		t.Fatal(err)
	}
	rel, _ := f.cfg.Releases.Last("shop-orders")
	rel.Info.Status = release.StatusPendingUpgrade
	f.cfg.Releases.Update(rel)
	_, err := f.d.Deploy(context.Background(), r, "orders")
	var pe *PendingError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "stuck in pending-upgrade") || !strings.Contains(err.Error(), "skiff rollback orders") {
		t.Fatalf("err = %v", err)
	}
}

func TestUninstall(t *testing.T) {
	f := newFixture(t)
	if _, err := f.d.Deploy(context.Background(), release1(t, "img@sha256:1"), "orders"); err != nil {
		t.Fatal(err)
	}
	if err := f.d.Uninstall("shop-orders", "shop", time.Minute); err != nil {
		t.Fatal(err)
	}
	var nf *NotFoundError
	if err := f.d.Uninstall("shop-orders", "shop", time.Minute); !errors.As(err, &nf) {
		t.Errorf("second uninstall: %v", err)
	}
}

func TestPendingInstallAdvisesDelete(t *testing.T) {
	f := newFixture(t)
	r := release1(t, "img@sha256:1")
	if _, err := f.d.Deploy(context.Background(), r, "orders"); err != nil {
		t.Fatal(err)
	}
	rel, _ := f.cfg.Releases.Last("shop-orders")
	rel.Info.Status = release.StatusPendingInstall
	f.cfg.Releases.Update(rel)
	_, err := f.d.Deploy(context.Background(), r, "orders")
	if err == nil || !strings.Contains(err.Error(), "run `skiff delete orders`") {
		t.Fatalf("err = %v", err)
	}
}

// A release that ran once is upgraded, not reinstalled, even when its
// last revisions failed (e.g. a rollback refused by the API server).
func TestReleaseThatRanIsNeverReinstalled(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, img := range []string{"img@sha256:1", "img@sha256:2"} {
		if _, err := f.d.Deploy(ctx, release1(t, img), "orders"); err != nil {
			t.Fatal(err)
		}
	}
	rel, _ := f.cfg.Releases.Last("shop-orders")
	rel.Info.Status = release.StatusFailed // revision 2 failed, revision 1 superseded
	f.cfg.Releases.Update(rel)
	res, err := f.d.Deploy(ctx, release1(t, "img@sha256:3"), "orders")
	if err != nil {
		t.Fatal(err)
	}
	if res.Installed || res.Revision != 3 {
		t.Errorf("deploy after failed revisions = %+v; want an upgrade to revision 3", res)
	}
}

func TestInterruptedDeployRollsBack(t *testing.T) {
	f := newFixture(t)
	if _, err := f.d.Deploy(context.Background(), release1(t, "img@sha256:good"), "orders"); err != nil {
		t.Fatal(err)
	}
	// Helm waits for the upgrade's resources, which never get ready, and
	// the user interrupts. Helm's upgrade goroutine goes on waiting (its
	// wait knows no context): it is let go only once the test is done.
	f.kube.waiting, f.kube.hold = make(chan struct{}), make(chan struct{})
	defer close(f.kube.hold)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-f.kube.waiting:
			cancel()
		case <-time.After(10 * time.Second):
		}
	}()
	_, err := f.d.Deploy(ctx, release1(t, "img@sha256:new"), "orders")
	select {
	case <-f.kube.waiting:
	default:
		t.Fatal("the upgrade returned without waiting for its resources")
	}
	var fe *FailedError
	if !errors.As(err, &fe) || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "was interrupted") || fe.RolledBackTo != 1 {
		t.Fatalf("err = %v", err)
	}
}

func TestOwnWaitReplacesHelms(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.kube.n = 10 // Helm's wait would fail: it must not be asked
	var waited []int
	f.d.Wait = func(_ context.Context, rel *release.Release) error {
		waited = append(waited, rel.Version)
		if !strings.Contains(rel.Manifest, "kind: Deployment") {
			t.Errorf("the wait got no manifest to watch:\n%s", rel.Manifest)
		}
		return nil
	}
	if _, err := f.d.Deploy(ctx, release1(t, "img@sha256:1"), "orders"); err != nil {
		t.Fatal(err)
	}
	// A wait that fails rolls the upgrade back, naming why.
	f.d.Wait = func(ctx context.Context, rel *release.Release) error {
		waited = append(waited, rel.Version)
		<-ctx.Done()
		return context.Cause(ctx)
	}
	r := release1(t, "img@sha256:2")
	r.Timeout = 50 * time.Millisecond
	f.kube.n = 0
	_, err := f.d.Deploy(ctx, r, "orders")
	var fe *FailedError
	if !errors.As(err, &fe) || fe.RolledBackTo != 1 || !strings.Contains(err.Error(), "not ready within 50ms") {
		t.Fatalf("err = %v", err)
	}
	if len(waited) != 2 || waited[0] != 1 || waited[1] != 2 {
		t.Errorf("waited for revisions %v", waited)
	}
	rel, _ := f.d.Get("shop-orders", "shop")
	if ImageOf(rel) != "img@sha256:1" {
		t.Errorf("after the failed wait the image is %q", ImageOf(rel))
	}
	// The revision that failed its wait is recorded as failed, so it is
	// never taken for one that ran.
	good, err := f.d.LastGoodRelease("shop-orders", "shop")
	if err != nil || good.Version == 2 || ImageOf(good) != "img@sha256:1" {
		t.Errorf("last good release = %v (err %v), want one running img@sha256:1", good.Version, err)
	}
	hist, _ := f.d.History("shop-orders", "shop")
	if len(hist) < 2 || hist[1].Status != release.StatusFailed.String() {
		t.Errorf("history = %+v, want revision 2 failed", hist)
	}
}
