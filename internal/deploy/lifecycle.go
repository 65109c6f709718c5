package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/getter"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"

	"github.com/skiffdev/skiff/internal/engine"
)

// Revision is one entry of a release's history.
type Revision = engine.Revision

// NotFoundError says a workload has no release.
type NotFoundError struct{ Release, Namespace string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("release %s is not deployed in namespace %s; run `skiff deploy` first", e.Release, e.Namespace)
}

// History returns the revisions of a release, oldest first.
func (d *Deployer) History(ctx context.Context, name, namespace string) ([]Revision, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg, err := d.Config(namespace)
	if err != nil {
		return nil, err
	}
	rels, err := history(cfg, name)
	if err != nil {
		return nil, err
	}
	if len(rels) == 0 {
		return nil, &NotFoundError{Release: name, Namespace: namespace}
	}
	out := make([]Revision, len(rels))
	for i, r := range rels {
		out[i] = Revision{Revision: r.Version, Updated: r.Info.LastDeployed.Time, Status: r.Info.Status.String(),
			Chart: r.Chart.Metadata.Name + "-" + r.Chart.Metadata.Version, Image: ImageOf(r), Description: r.Info.Description}
	}
	return out, nil
}

// Get returns the latest revision of a release.
func (d *Deployer) Get(ctx context.Context, name, namespace string) (*release.Release, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg, err := d.Config(namespace)
	if err != nil {
		return nil, err
	}
	rel, err := action.NewGet(cfg).Run(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, &NotFoundError{Release: name, Namespace: namespace}
	}
	return rel, err
}

// LastGoodRelease returns the newest revision of a release that ran
// successfully: what a redeploy of the same image and values should start
// from, rather than a failed revision after it.
func (d *Deployer) LastGoodRelease(ctx context.Context, name, namespace string) (*release.Release, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg, err := d.Config(namespace)
	if err != nil {
		return nil, err
	}
	rels, err := history(cfg, name)
	if err != nil {
		return nil, err
	}
	if r := LastGood(rels); r != nil {
		return r, nil
	}
	return nil, &NotFoundError{Release: name, Namespace: namespace}
}

// NoRevisionError says a release's history has no such revision (Helm
// keeps the last MaxHistory).
type NoRevisionError struct {
	Release     string
	Revision    int
	First, Last int
}

func (e *NoRevisionError) Error() string {
	return fmt.Sprintf("release %s has no revision %d; `skiff history` lists them (%d to %d)", e.Release, e.Revision, e.First, e.Last)
}

// Rollback returns a release to revision (0: the one before the current)
// and waits until it is ready, as Deploy waits (d.Wait, else WaitReady),
// until ctx ends or timeout passes.
func (d *Deployer) Rollback(ctx context.Context, name, namespace string, revision int, timeout time.Duration) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	cfg, err := d.Config(namespace)
	if err != nil {
		return 0, err
	}
	rels, err := history(cfg, name)
	if err != nil {
		return 0, err
	}
	if len(rels) == 0 {
		return 0, &NotFoundError{Release: name, Namespace: namespace}
	}
	current := rels[len(rels)-1]
	if revision == 0 {
		prev := LastGood(rels[:len(rels)-1])
		if prev == nil {
			return 0, fmt.Errorf("release %s has no earlier revision to roll back to", name)
		}
		revision = prev.Version
	}
	found := false
	for _, r := range rels {
		found = found || r.Version == revision
	}
	if !found {
		return 0, &NoRevisionError{Release: name, Revision: revision, First: rels[0].Version, Last: current.Version}
	}
	return d.rollback(ctx, cfg, name, revision, timeout)
}

// rollback has Helm apply revision again (without its wait), then waits
// for it with ctx; a revision that does not get ready is recorded failed.
func (d *Deployer) rollback(ctx context.Context, cfg *action.Configuration, name string, revision int, timeout time.Duration) (int, error) {
	rb := action.NewRollback(cfg)
	rb.Version = revision
	rb.Timeout = timeout
	rb.MaxHistory = MaxHistory
	rb.CleanupOnFail = true
	if err := rb.Run(name); err != nil {
		return 0, fmt.Errorf("rolling %s back to revision %d: %w", name, revision, err)
	}
	rel, err := action.NewGet(cfg).Run(name)
	if err != nil {
		return 0, err
	}
	if err := d.waitFor(ctx, rel, timeout); err != nil {
		err = fmt.Errorf("rolling %s back to revision %d: %w", name, revision, err)
		return 0, errors.Join(err, markFailed(cfg, rel, err))
	}
	return rel.Version, nil
}

// Uninstall removes a release and everything it created, waiting until
// the objects are gone, until ctx ends or timeout passes.
func (d *Deployer) Uninstall(ctx context.Context, name, namespace string, timeout time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	cfg, err := d.Config(namespace)
	if err != nil {
		return err
	}
	if err := d.uninstall(ctx, cfg, name, timeout); err != nil {
		if errors.Is(err, driver.ErrReleaseNotFound) {
			return &NotFoundError{Release: name, Namespace: namespace}
		}
		return fmt.Errorf("uninstalling %s: %w", name, err)
	}
	return nil
}

// uninstall has Helm delete the release's objects (without its wait),
// then waits with ctx until they are gone.
func (d *Deployer) uninstall(ctx context.Context, cfg *action.Configuration, name string, timeout time.Duration) error {
	un := action.NewUninstall(cfg)
	un.Timeout = timeout
	un.DeletionPropagation = "foreground"
	res, err := un.Run(name)
	if err != nil {
		return err
	}
	if res == nil || res.Release == nil {
		return nil
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("not gone within %s", timeout))
	defer cancel()
	return waitDeleted(ctx, cfg, res.Release.Manifest)
}

// MergeValues reads chart values as Helm's flags take them: YAML files
// (-f), KEY=VALUE (--set), strings (--set-string) and files
// (--set-file), relative to the working folder, later ones winning.
func MergeValues(files, set, setString, setFile []string) (map[string]any, error) {
	opts := values.Options{ValueFiles: files, Values: set, StringValues: setString, FileValues: setFile}
	return opts.MergeValues(getter.Providers{})
}

// ShortDigest splits an image reference by digest into what comes before
// "@sha256:" and the digest's first 12 hex digits; ok is false when ref
// has no digest.
func ShortDigest(ref string) (repo, short string, ok bool) { return engine.ShortDigest(ref) }

// ImageOf is the image a release deploys (the value skiff set).
func ImageOf(r *release.Release) string {
	if img, ok := r.Config["image"].(map[string]any); ok {
		if ref, ok := img["ref"].(string); ok {
			return ref
		}
	}
	return ""
}
