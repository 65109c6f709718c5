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
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"

	"go.uber.org/goleak"

	"github.com/skiffdev/skiff/internal/chart"
	"github.com/skiffdev/skiff/internal/kube"
)

func TestMain(m *testing.M) {
	// No wait, Helm's or skiff's, may outlive the call that started it.
	goleak.VerifyTestMain(m)
}

type fixture struct {
	cfg  *action.Configuration
	kube *kubefake.FailingKubeClient
	d    *Deployer
	// failWaits is how many of the next waits fail.
	failWaits int
	// waited are the revisions waited for.
	waited []int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	// Helm's own wait fails: skiff must never leave a release to it.
	kc := &kubefake.FailingKubeClient{PrintingKubeClient: kubefake.PrintingKubeClient{Out: io.Discard},
		WaitError: errors.New("Helm's own wait was used")}
	cfg := &action.Configuration{
		Releases:     storage.Init(driver.NewMemory()),
		KubeClient:   kc,
		Capabilities: chartutil.DefaultCapabilities,
		Log:          func(string, ...any) {},
	}
	f := &fixture{cfg: cfg, kube: kc}
	f.d = &Deployer{Config: func(string) (*action.Configuration, error) { return cfg, nil }}
	f.d.Wait = func(ctx context.Context, rel *release.Release) error {
		f.waited = append(f.waited, rel.Version)
		if f.failWaits > 0 {
			f.failWaits--
			return errors.New("timed out waiting for the condition")
		}
		return nil
	}
	return f
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
	hist, err := f.d.History(ctx, "shop-orders", "shop")
	if err != nil || len(hist) != 2 || hist[0].Image != "img@sha256:1" || hist[1].Image != "img@sha256:2" || hist[1].Status != "deployed" {
		t.Fatalf("history = %+v, %v", hist, err)
	}
	rev, err := f.d.Rollback(ctx, "shop-orders", "shop", 0, time.Minute)
	if err != nil || rev != 3 {
		t.Fatalf("rollback = %d, %v", rev, err)
	}
	rel, _ := f.d.Get(ctx, "shop-orders", "shop")
	if ImageOf(rel) != "img@sha256:1" {
		t.Errorf("after rollback the image is %q", ImageOf(rel))
	}
	if _, err := f.d.Rollback(ctx, "shop-orders", "shop", 9, time.Minute); err == nil || !strings.Contains(err.Error(), "no revision 9") {
		t.Errorf("rollback to a missing revision: %v", err)
	}
}

func TestFailedUpgradeRollsBack(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.d.Deploy(ctx, release1(t, "img@sha256:good"), "orders"); err != nil {
		t.Fatal(err)
	}
	f.failWaits = 1
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
	rel, _ := f.d.Get(ctx, "shop-orders", "shop")
	if ImageOf(rel) != "img@sha256:good" || rel.Info.Status != release.StatusDeployed {
		t.Errorf("after the failed deploy: image %q status %s", ImageOf(rel), rel.Info.Status)
	}
}

func TestFailedFirstInstallIsRemoved(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.failWaits = 1
	_, err := f.d.Deploy(ctx, release1(t, "img@sha256:bad"), "orders")
	var fe *FailedError
	if !errors.As(err, &fe) || fe.RolledBackTo != 0 || !strings.Contains(err.Error(), "first install was removed") {
		t.Fatalf("err = %v", err)
	}
	var nf *NotFoundError
	if _, err := f.d.Get(ctx, "shop-orders", "shop"); !errors.As(err, &nf) {
		t.Errorf("the failed release is still there: %v", err)
	}
}

func TestFatalProblemStopsWaitingEarly(t *testing.T) {
	f := newFixture(t)
	f.d.Wait = func(ctx context.Context, _ *release.Release) error {
		<-ctx.Done() // resources that never get ready
		return context.Cause(ctx)
	}
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
	if time.Since(start) > 30*time.Second {
		t.Errorf("waited %s (the release's timeout is a minute); a fatal problem should stop the wait", time.Since(start))
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
	ctx := context.Background()
	if _, err := f.d.Deploy(ctx, release1(t, "img@sha256:1"), "orders"); err != nil {
		t.Fatal(err)
	}
	if err := f.d.Uninstall(ctx, "shop-orders", "shop", time.Minute); err != nil {
		t.Fatal(err)
	}
	var nf *NotFoundError
	if err := f.d.Uninstall(ctx, "shop-orders", "shop", time.Minute); !errors.As(err, &nf) {
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

// An interrupt during the wait stops it, rolls back, and leaves nothing
// running (TestMain's leak check): Helm's apply had returned, and skiff's
// wait ends with the context.
func TestInterruptedDeployRollsBack(t *testing.T) {
	f := newFixture(t)
	if _, err := f.d.Deploy(context.Background(), release1(t, "img@sha256:good"), "orders"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	good := f.d.Wait
	f.d.Wait = func(wctx context.Context, rel *release.Release) error {
		if rel.Version == 2 {
			cancel() // the user presses Ctrl-C while the new revision is waited for
			<-wctx.Done()
			return context.Cause(wctx)
		}
		return good(wctx, rel)
	}
	_, err := f.d.Deploy(ctx, release1(t, "img@sha256:new"), "orders")
	var fe *FailedError
	if !errors.As(err, &fe) || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "was interrupted") || fe.RolledBackTo != 1 {
		t.Fatalf("err = %v", err)
	}
	rel, err := f.d.Get(context.Background(), "shop-orders", "shop")
	if err != nil || ImageOf(rel) != "img@sha256:good" || rel.Info.Status != release.StatusDeployed {
		t.Errorf("after the interrupt: %v, %v", rel, err)
	}
}

// A rollback waits as a deploy does (d.Wait: the target's wait), never
// with Helm's own wait, and a rollback that does not get ready fails.
func TestRollbackWaitsWithTheDeployersWait(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, img := range []string{"img@sha256:1", "img@sha256:2"} {
		if _, err := f.d.Deploy(ctx, release1(t, img), "orders"); err != nil {
			t.Fatal(err)
		}
	}
	f.waited = nil
	rev, err := f.d.Rollback(ctx, "shop-orders", "shop", 1, time.Minute)
	if err != nil || rev != 3 || len(f.waited) != 1 || f.waited[0] != 3 {
		t.Fatalf("rollback = %d, %v; waited for %v", rev, err, f.waited)
	}
	f.failWaits = 1
	if _, err := f.d.Rollback(ctx, "shop-orders", "shop", 2, time.Minute); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("a rollback whose wait failed: %v", err)
	}
	if good, _ := f.d.LastGoodRelease(ctx, "shop-orders", "shop"); good == nil || good.Version != 3 {
		t.Errorf("the rollback that did not get ready counts as one that ran: %+v", good)
	}
	// Cancelled, it stops waiting at once.
	cctx, cancel := context.WithCancel(ctx)
	f.d.Wait = func(wctx context.Context, _ *release.Release) error {
		cancel()
		<-wctx.Done()
		return context.Cause(wctx)
	}
	if _, err := f.d.Rollback(cctx, "shop-orders", "shop", 1, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("an interrupted rollback: %v", err)
	}
}

func TestOwnWaitReplacesHelms(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.failWaits = 10 // Helm's wait would fail: it must not be asked
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
		if rel.Version == 2 {
			<-ctx.Done()
			return context.Cause(ctx)
		}
		return nil
	}
	r := release1(t, "img@sha256:2")
	r.Timeout = 50 * time.Millisecond
	_, err := f.d.Deploy(ctx, r, "orders")
	var fe *FailedError
	if !errors.As(err, &fe) || fe.RolledBackTo != 1 || !strings.Contains(err.Error(), "not ready within 50ms") {
		t.Fatalf("err = %v", err)
	}
	if len(waited) != 3 || waited[0] != 1 || waited[1] != 2 || waited[2] != 3 {
		t.Errorf("waited for revisions %v, want 1, 2 and the rollback's 3", waited)
	}
	rel, _ := f.d.Get(ctx, "shop-orders", "shop")
	if ImageOf(rel) != "img@sha256:1" {
		t.Errorf("after the failed wait the image is %q", ImageOf(rel))
	}
	// The revision that failed its wait is recorded as failed, so it is
	// never taken for one that ran.
	good, err := f.d.LastGoodRelease(ctx, "shop-orders", "shop")
	if err != nil || good.Version == 2 || ImageOf(good) != "img@sha256:1" {
		t.Errorf("last good release = %v (err %v), want one running img@sha256:1", good.Version, err)
	}
	hist, _ := f.d.History(ctx, "shop-orders", "shop")
	if len(hist) < 2 || hist[1].Status != release.StatusFailed.String() {
		t.Errorf("history = %+v, want revision 2 failed", hist)
	}
}
