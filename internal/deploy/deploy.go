// Package deploy runs the Helm release lifecycle of workloads in-process
// with the Helm SDK: install or upgrade, then wait for readiness with the
// caller's context (Helm never waits on a goroutine of its own: its apply
// returns, then Wait, a session's target wait, or WaitReady, Helm's
// readiness checks asked from the caller's goroutine), roll back on
// failure, history, rollback and uninstall. With package chart, it is the
// only importer of Helm; others name a release revision as Record.
package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	helmkube "helm.sh/helm/v3/pkg/kube"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"

	"github.com/skiffdev/skiff/internal/kube"
)

// MaxHistory is how many revisions of a release Helm keeps.
const MaxHistory = 10

// DefaultTimeout bounds how long a release may take to be ready (or gone).
const DefaultTimeout = 5 * time.Minute

// Deployer runs Helm actions.
type Deployer struct {
	// Config returns the Helm configuration for a namespace.
	Config func(namespace string) (*action.Configuration, error)
	// Diagnose explains why a release's pods are not ready; nil skips
	// diagnosis (and failing fast).
	Diagnose func(ctx context.Context, namespace, release string) []kube.PodProblem
	// PollInterval is how often pods are checked for fatal problems while
	// waiting (default 2s).
	PollInterval time.Duration
	// WaitInterval is how often WaitReady asks (default 1s; Helm's own
	// wait asks every 2 s).
	WaitInterval time.Duration
	// FatalAfter is how long a fatal problem (CrashLoopBackOff,
	// ImagePullBackOff, ...) must last before waiting stops early (default 20s).
	FatalAfter time.Duration
	// Clientset reads what WaitReady asks about (nil: only releases with no
	// resources can be waited for).
	Clientset kubernetes.Interface
	// ServerValidates says the API server checks the fields of what is
	// applied itself (kube.Client.ValidatesFields). Helm's client-side
	// check is then skipped: on such a server it validates nothing (it
	// leaves the check to the server) but first downloads and parses the
	// OpenAPI document of each group applied to learn that, most of what
	// an upgrade allocates.
	ServerValidates bool
	// Wait is how a release applied by Deploy or Rollback is waited for:
	// it returns when the release is ready, or an error. The release's
	// timeout bounds its ctx. nil: WaitReady. A session sets it to the
	// targets' wait.
	Wait func(ctx context.Context, rel *release.Release) error
}

// Record is one revision of a release as Helm records it (its manifest,
// values, status). Other packages name Helm's release type through it
// alone, so that moving to Helm v4 is this package's change.
type Record = release.Release

// The statuses of a Record other packages look at.
const (
	StatusDeployed = release.StatusDeployed
	StatusFailed   = release.StatusFailed
)

// Release is one workload to deploy.
type Release struct {
	Name      string
	Namespace string
	Chart     *chart.Chart
	Values    map[string]any
	Timeout   time.Duration
	// Description is recorded in the release history.
	Description string
}

// Result is a deployed release.
type Result struct {
	Release   string `json:"release"`
	Namespace string `json:"namespace"`
	Revision  int    `json:"revision"`
	Status    string `json:"status"`
	Installed bool   `json:"installed"` // first revision
	Notes     string `json:"notes,omitempty"`
}

// FailedError says a release did not become ready and what skiff did
// about it.
type FailedError struct {
	Release   string
	Namespace string
	Revision  int
	Err       error // Helm's error
	Problems  []kube.PodProblem
	// RolledBackTo is the revision whose content runs again (Helm records
	// the rollback as a new revision); 0 when the failed release was a
	// first install and has been removed.
	RolledBackTo int
	// RollbackErr is set when the rollback itself failed.
	RollbackErr error
}

func (e *FailedError) Error() string {
	var b strings.Builder
	if errors.Is(e.Err, ErrInterrupted) {
		fmt.Fprintf(&b, "deploying release %s (revision %d) was interrupted", e.Release, e.Revision)
	} else {
		fmt.Fprintf(&b, "release %s (revision %d) did not become ready: %v", e.Release, e.Revision, e.Err)
	}
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(strings.ReplaceAll(p.String(), "\n", "\n  "))
	}
	switch {
	case e.RollbackErr != nil:
		fmt.Fprintf(&b, "\nrolling back failed too: %v; run `skiff rollback` to retry", e.RollbackErr)
	case e.RolledBackTo > 0:
		fmt.Fprintf(&b, "\nrolled back to revision %d, which is running again", e.RolledBackTo)
	default:
		b.WriteString("\nthe failed first install was removed")
	}
	return b.String()
}

func (e *FailedError) Unwrap() error { return e.Err }

// PendingError says a release is stuck in a pending state.
type PendingError struct {
	Release   string
	Namespace string
	Status    release.Status
	Revision  int
	Workload  string
}

func (e *PendingError) Error() string {
	fix := fmt.Sprintf("run `skiff rollback %s` to return to the last good revision", e.Workload)
	if e.Status == release.StatusPendingInstall {
		fix = fmt.Sprintf("run `skiff delete %s` to remove the half-installed release, then deploy again", e.Workload)
	}
	return fmt.Sprintf("release %s in namespace %s is stuck in %s (revision %d): another deploy is running, or one was interrupted; if none is running, %s",
		e.Release, e.Namespace, e.Status, e.Revision, fix)
}

// good reports whether a revision ran successfully at some point.
func good(r *release.Release) bool {
	return r.Info.Status == release.StatusDeployed || r.Info.Status == release.StatusSuperseded
}

// LastGood returns the newest revision of a release that ran successfully
// (deployed, or superseded by a later one), or nil.
func LastGood(hist []*release.Release) *release.Release {
	for i := len(hist) - 1; i >= 0; i-- {
		if good(hist[i]) {
			return hist[i]
		}
	}
	return nil
}

// Deploy installs or upgrades r and waits until it is ready. On failure it
// diagnoses the pods, rolls back to the last revision that ran (or removes
// a failed first install) and returns a *FailedError. When ctx ends (the
// user interrupted), it stops waiting, rolls back the same way once Helm's
// apply has returned, and says so.
//
// Helm never waits here: it applies (whatever ctx does meanwhile, so its
// own goroutines end with the apply), then skiff waits with ctx, through
// d.Wait or WaitReady.
func (d *Deployer) Deploy(ctx context.Context, r Release, workload string) (*Result, error) {
	cfg, err := d.Config(r.Namespace)
	if err != nil {
		return nil, err
	}
	hist, err := history(cfg, r.Name)
	if err != nil {
		return nil, err
	}
	if n := len(hist); n > 0 && hist[n-1].Info.Status.IsPending() {
		last := hist[n-1]
		return nil, &PendingError{Release: r.Name, Namespace: r.Namespace, Status: last.Info.Status, Revision: last.Version, Workload: workload}
	}
	lastGood := LastGood(hist)
	if len(hist) > 0 && lastGood == nil {
		// No revision ever ran (failed installs only): start over. A release
		// that ran once is upgraded instead, whatever its last status.
		if err := d.uninstall(ctx, cfg, r.Name, r.Timeout); err != nil {
			return nil, fmt.Errorf("removing the failed release %s before installing it again: %w", r.Name, err)
		}
		hist = nil
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("interrupted before release %s changed: %w", r.Name, err)
	}

	var rel *release.Release
	install := len(hist) == 0
	// The apply is not cut short: a cancelled Helm action leaves its own
	// goroutine running and the release pending.
	applyCtx := context.WithoutCancel(ctx)
	if install {
		in := action.NewInstall(cfg)
		in.ReleaseName = r.Name
		in.Namespace = r.Namespace
		in.Timeout = r.Timeout
		in.Description = r.Description
		in.DisableOpenAPIValidation = d.ServerValidates
		rel, err = in.RunWithContext(applyCtx, r.Chart, r.Values)
	} else {
		up := action.NewUpgrade(cfg)
		up.Namespace = r.Namespace
		up.Timeout = r.Timeout
		up.MaxHistory = MaxHistory
		up.Description = r.Description
		up.DisableOpenAPIValidation = d.ServerValidates
		rel, err = up.RunWithContext(applyCtx, r.Name, r.Chart, r.Values)
	}
	waitCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if err == nil {
		stop := d.watchFatal(waitCtx, cancel, r)
		err = d.waitFor(waitCtx, rel, r.Timeout)
		stop()
		if err != nil {
			// Helm recorded the revision as deployed before the wait: record
			// that it failed, as Helm's own wait does, so it never counts as
			// one that ran.
			err = errors.Join(err, markFailed(cfg, rel, err))
		}
	}
	if err == nil {
		return &Result{Release: rel.Name, Namespace: rel.Namespace, Revision: rel.Version, Status: rel.Info.Status.String(), Installed: install, Notes: rel.Info.Notes}, nil
	}
	switch cause := context.Cause(waitCtx); {
	case ctx.Err() != nil:
		err = ErrInterrupted
	case cause != nil && !errors.Is(cause, context.Canceled):
		err = cause
	}
	return nil, d.recover(context.WithoutCancel(ctx), cfg, r, rel, install, lastGood, err)
}

// markFailed records that a revision Helm applied did not get ready.
func markFailed(cfg *action.Configuration, rel *release.Release, why error) error {
	rel.SetStatus(release.StatusFailed, fmt.Sprintf("skiff: %v", why))
	if err := cfg.Releases.Update(rel); err != nil {
		return fmt.Errorf("recording revision %d as failed: %w", rel.Version, err)
	}
	return nil
}

// waitFor runs d.Wait (else WaitReady) within timeout.
func (d *Deployer) waitFor(ctx context.Context, rel *release.Release, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("not ready within %s", timeout))
	defer cancel()
	if d.Wait != nil {
		return d.Wait(ctx, rel)
	}
	return d.WaitReady(ctx, rel)
}

// ErrInterrupted is the cause of a deploy the user interrupted.
var ErrInterrupted = fmt.Errorf("interrupted: %w", context.Canceled)

// recover diagnoses a failed release and rolls it back.
func (d *Deployer) recover(ctx context.Context, cfg *action.Configuration, r Release, rel *release.Release, install bool, lastGood *release.Release, cause error) error {
	fe := &FailedError{Release: r.Name, Namespace: r.Namespace, Err: cause}
	if rel != nil {
		fe.Revision = rel.Version
	} else if lastGood != nil {
		fe.Revision = lastGood.Version + 1
	} else {
		fe.Revision = 1
	}
	if d.Diagnose != nil {
		dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		fe.Problems = d.Diagnose(dctx, r.Namespace, r.Name)
		cancel()
	}
	if install {
		if err := d.uninstall(ctx, cfg, r.Name, r.Timeout); err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
			fe.RollbackErr = err
		}
		return fe
	}
	if _, err := d.rollback(ctx, cfg, r.Name, lastGood.Version, r.Timeout); err != nil {
		fe.RollbackErr = err
		return fe
	}
	fe.RolledBackTo = lastGood.Version
	return fe
}

// watchFatal polls the release's pods while Helm waits and cancels the wait
// once a problem that does not heal by itself has lasted FatalAfter.
func (d *Deployer) watchFatal(ctx context.Context, cancel context.CancelCauseFunc, r Release) (stop func()) {
	if d.Diagnose == nil {
		return func() {}
	}
	interval, after := d.PollInterval, d.FatalAfter
	if interval == 0 {
		interval = 2 * time.Second
	}
	if after == 0 {
		after = 20 * time.Second
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(interval)
		defer t.Stop()
		var since time.Time
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			problems := d.Diagnose(ctx, r.Namespace, r.Name)
			fatal := len(problems) > 0
			for _, p := range problems {
				fatal = fatal && p.Fatal()
			}
			switch {
			case !fatal:
				since = time.Time{}
			case since.IsZero():
				since = time.Now()
			case time.Since(since) >= after:
				cancel(fmt.Errorf("stopped waiting: %s for %s, which does not heal by itself", problems[0].Reason, after.Round(time.Second)))
				return
			}
		}
	}()
	return func() { close(done); <-finished }
}

func history(cfg *action.Configuration, name string) ([]*release.Release, error) {
	h := action.NewHistory(cfg)
	h.Max = 256
	rels, err := h.Run(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the history of %s: %w", name, err)
	}
	sort.Slice(rels, func(i, j int) bool { return rels[i].Version < rels[j].Version })
	return rels, nil
}

// WaitReady waits until every resource of rel is ready as Helm's
// kube.ReadyChecker sees it (every kind Helm knows how to wait for), asking
// from the calling goroutine until ctx ends: no wait is left running after
// it returns. ctx's cause is the error then. d.Clientset is what it reads;
// without one, only a release with no resources can be waited for.
func (d *Deployer) WaitReady(ctx context.Context, rel *release.Release) error {
	cfg, err := d.Config(rel.Namespace)
	if err != nil {
		return err
	}
	resources, err := cfg.KubeClient.Build(bytes.NewBufferString(rel.Manifest), false)
	if err != nil {
		return fmt.Errorf("reading the manifest of %s: %w", rel.Name, err)
	}
	if len(resources) == 0 {
		return nil
	}
	if d.Clientset == nil {
		return fmt.Errorf("waiting for %s: no cluster client to read its resources with", rel.Name)
	}
	checker := helmkube.NewReadyChecker(d.Clientset, cfg.Log, helmkube.PausedAsReady(true))
	interval := d.WaitInterval
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var why error
	for {
		ready := true
		for _, res := range resources {
			ok, err := checker.IsReady(ctx, res)
			if err != nil && !retryable(err) {
				return fmt.Errorf("waiting for %s %s: %w", strings.ToLower(res.Mapping.GroupVersionKind.Kind), res.Name, err)
			}
			if !ok {
				ready, why = false, err
				break
			}
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			if why != nil {
				return fmt.Errorf("%w (last: %v)", context.Cause(ctx), why)
			}
			return context.Cause(ctx)
		case <-t.C:
		}
	}
}

// retryable: an error that may pass (the API server busy or unreachable
// for a moment), as Helm's wait judges them.
func retryable(err error) bool {
	var se *apierrors.StatusError
	if !errors.As(err, &se) {
		return true
	}
	code := se.Status().Code
	return code == 0 || code == http.StatusTooManyRequests || (code >= 500 && code != http.StatusNotImplemented)
}

// waitDeleted waits until every object of manifest is gone, asking from
// the calling goroutine until ctx ends.
func waitDeleted(ctx context.Context, cfg *action.Configuration, manifest string) error {
	resources, err := cfg.KubeClient.Build(bytes.NewBufferString(manifest), false)
	if err != nil || len(resources) == 0 {
		return err
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		left := ""
		for _, res := range resources {
			err := res.Get()
			if err == nil {
				left = res.Name
				break
			}
			if !apierrors.IsNotFound(err) {
				return err
			}
		}
		if left == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s is not gone yet: %w", left, context.Cause(ctx))
		case <-t.C:
		}
	}
}
