package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/skiffdev/skiff/internal/chart"
	"github.com/skiffdev/skiff/internal/deploy"
	"github.com/skiffdev/skiff/internal/event"
	"github.com/skiffdev/skiff/internal/pipeline"
	"github.com/skiffdev/skiff/internal/project"
)

// ChartSettings are the chart values dev deploys with over skiff's: no
// startup probe (it is asked on the kubelet's own tick and holds
// readiness back by up to a second), probes asked every second and a
// short drain, so a new version serves as soon as it can. skiff deploy and render never use them; leaving dev restores
// the release as it was.
func ChartSettings() map[string]any {
	return map[string]any{
		"probes":                        map[string]any{"periodSeconds": 1, "startupProbe": false},
		"terminationGracePeriodSeconds": 2,
	}
}

// History reads and restores releases; *deploy.Deployer is the real one.
type History interface {
	Get(ctx context.Context, name, namespace string) (*deploy.Record, error)
	Rollback(ctx context.Context, name, namespace string, revision int, timeout time.Duration) (int, error)
	Uninstall(ctx context.Context, name, namespace string, timeout time.Duration) error
}

// Cluster runs the loop's cycles on a cluster, through the same pipeline
// as skiff deploy: build and push the image, upgrade the release with
// ChartSettings over the user's values, and wait until it is ready. A
// release that does not get ready is rolled back by deploy, so what ran
// keeps serving.
type Cluster struct {
	Project *project.Project
	Root    string
	// Builds builds and pushes the images.
	Builds pipeline.Builds
	// Releases deploys them; its Overrides should hold ChartSettings.
	Releases pipeline.Releases
	// History restores the releases on the way out.
	History History
	// URLs are where the workloads answer on this machine (their forwards).
	URLs map[string]string
	// Events receives the loop's events.
	Events *event.Emitter
	// Retry asks for another cycle of a workload (the session sets it);
	// nil: a workload whose registry or cluster was unreachable waits for
	// the next save.
	Retry func(workload string)
	// SyncImage is skiff-relay's image; with Syncer, it turns on live
	// updates (sync.go). Empty: every new version is a rollout.
	SyncImage string
	Syncer    PodSyncer
	// SyncTimeout bounds the wait for a synced version in a pod (0: a
	// minute).
	SyncTimeout time.Duration
	// Backoff is the first wait before a cycle that could not reach the
	// registry or the cluster is tried again; it doubles up to a minute
	// (0: DefaultBackoff).
	Backoff time.Duration

	mu sync.Mutex
	// down holds, per workload that could not reach the registry or the
	// cluster, the wait before its next try.
	down     map[string]time.Duration
	deployed map[string]string         // workload: the image and values that run
	live     map[string]*live          // workload: what its pods run, when dev can sync them
	gen      map[string]int            // workload: its pods' generation, bumped to replace them
	before   map[string]*deploy.Record // nil until Snapshot
}

// SetProject replaces the project.
func (c *Cluster) SetProject(p *project.Project) {
	c.mu.Lock()
	c.Project = p
	c.mu.Unlock()
}

// SetRetry sets Retry (the session's way to ask for a cycle).
func (c *Cluster) SetRetry(retry func(string)) {
	c.mu.Lock()
	c.Retry = retry
	c.mu.Unlock()
}

// URL is where a workload answers on this machine.
func (c *Cluster) URL(name string) string { return c.URLs[name] }

// Stop does nothing: what dev deployed stays until Restore.
func (c *Cluster) Stop() {}

// Snapshot records the release of each workload as it is before the loop
// changes anything, for Restore.
func (c *Cluster) Snapshot(ctx context.Context, workloads []string) error {
	c.mu.Lock()
	p := c.Project
	c.mu.Unlock()
	before := map[string]*deploy.Record{}
	pl := &pipeline.Pipeline{Project: p, Root: c.Root}
	for _, n := range workloads {
		w, ok := p.Workload(n)
		if !ok {
			return fmt.Errorf("the project has no workload %q", n)
		}
		rel, err := c.History.Get(ctx, pl.Release(w), p.Namespace)
		var nf *deploy.NotFoundError
		switch {
		case errors.As(err, &nf):
			rel = nil
		case err != nil:
			return err
		}
		before[n] = rel
	}
	c.mu.Lock()
	c.before = before
	c.mu.Unlock()
	return nil
}

// Cycle builds and pushes one workload's image and, when the image or the
// release's values changed, upgrades its release and waits until it is
// ready.
func (c *Cluster) Cycle(ctx context.Context, name string) {
	start := time.Now()
	c.mu.Lock()
	p := c.Project
	c.mu.Unlock()
	w, ok := p.Workload(name)
	if !ok {
		c.Events.Emit(event.Event{Kind: event.Failed, Phase: event.PhaseCycle, Workload: name, Error: name + " is no longer in skiff.yaml"})
		return
	}
	c.Events.Emit(event.Event{Kind: event.CycleStarted, Workload: name})
	steps := map[string]time.Duration{}
	var stepsMu sync.Mutex
	pl := &pipeline.Pipeline{Project: p, Root: c.Root, Events: func(ev pipeline.Event) {
		step := map[pipeline.Kind]string{pipeline.Built: "build", pipeline.Reused: "build",
			pipeline.Published: "push", pipeline.Deployed: "deploy"}[ev.Kind]
		if step != "" {
			stepsMu.Lock()
			steps[step] = ev.Duration
			stepsMu.Unlock()
		}
		if ev.Kind != pipeline.Failed { // the cycle reports its failure itself
			c.Events.Emit(ev) // one stream: the build, push and deploy too
		}
	}}
	fail := func(err error) {
		if ctx.Err() != nil {
			return // interrupted: the deploy rolled back; Restore follows
		}
		if Unreachable(err) {
			c.unreachable(ctx, name, err, start)
			return
		}
		c.reachable(name)
		c.Events.Emit(event.Event{Kind: event.Failed, Phase: event.PhaseCycle, Workload: name, Error: err.Error() + "; what ran before keeps serving",
			Duration: time.Since(start)})
	}
	images, err := pl.Build(ctx, c.Builds, []project.Workload{*w})
	if err != nil {
		fail(err)
		return
	}
	image := images[0].Pull
	var syncValues map[string]any
	// Live updates reach the pods that run; a workload whose pods come and
	// go on their own (KEDA, the HPA) would start new ones from the
	// release's image, with the code of an edit ago: it rolls out.
	if c.SyncImage != "" && c.Syncer != nil && images[0].Built != nil && w.Scale == nil && w.Autoscale == nil {
		syncValues, err = SyncValues(c.SyncImage, images[0].Built, c.SyncTimeout)
		if err != nil {
			fail(err)
			return
		}
	}
	overrides := c.overrides(name, syncValues)
	vals := pl.Values(w, image, overrides)
	key, err := fingerprint(image, vals)
	if err != nil {
		fail(err)
		return
	}
	c.mu.Lock()
	st := c.live[name]
	// The release's image and values, in pods that run that image (not a
	// version synced since).
	same := c.deployed[name] == key && (st == nil || st.ref == st.pull)
	c.mu.Unlock()
	if !same && c.trySync(ctx, pl, w, st, images[0], overrides, steps, start) {
		return
	}
	if same {
		c.reachable(name)
		c.Events.Emit(event.Event{Kind: event.Unchanged, Workload: name, URL: c.URL(name), Duration: time.Since(start), Steps: steps})
		return
	}
	c.mu.Lock()
	replace := c.deployed[name] == key
	if replace {
		// The release says what it said, but its pods run files dev
		// synced since: only new pods run the release's image.
		if c.gen == nil {
			c.gen = map[string]int{}
		}
		c.gen[name]++
	}
	c.mu.Unlock()
	if replace {
		overrides = c.overrides(name, syncValues)
		vals = pl.Values(w, image, overrides)
		if key, err = fingerprint(image, vals); err != nil {
			fail(err)
			return
		}
	}
	d, err := pl.DeployValues(ctx, c.Releases, w, image, vals)
	if err != nil {
		fail(err)
		return
	}
	c.reachable(name)
	c.mu.Lock()
	if c.deployed == nil {
		c.deployed = map[string]string{}
	}
	c.deployed[name] = key
	delete(c.live, name)
	c.mu.Unlock()
	if syncValues != nil {
		if st, err := newLive(image, images[0].Built); err == nil {
			c.mu.Lock()
			if c.live == nil {
				c.live = map[string]*live{}
			}
			c.live[name] = st
			c.mu.Unlock()
		}
	}
	c.Events.Emit(event.Event{Kind: event.Ready, Workload: name, URL: c.URL(name), Release: d.Release, Revision: d.Revision,
		Duration: time.Since(start), Steps: steps})
}

// overrides are the chart values dev sets for a workload over the user's:
// its chart settings, live updates (sync, when not nil), and the pods'
// generation once dev had to replace them.
func (c *Cluster) overrides(name string, sync map[string]any) map[string]any {
	o := c.Releases.Overrides
	if sync != nil {
		o = chart.Merge(o, sync)
	}
	c.mu.Lock()
	g := c.gen[name]
	c.mu.Unlock()
	if g > 0 {
		o = chart.Merge(o, map[string]any{"podAnnotations": map[string]any{GenerationAnnotation: strconv.Itoa(g)}})
	}
	return o
}

// GenerationAnnotation is the pod annotation dev bumps to replace a
// release's pods when the release itself does not change.
const GenerationAnnotation = "skiff.dev/dev-generation"

// DefaultBackoff is the first wait before dev tries again a workload whose
// registry or cluster it could not reach.
const DefaultBackoff = 2 * time.Second

// maxBackoff bounds the wait between tries.
const maxBackoff = time.Minute

// Unreachable reports whether err says the registry or the cluster could
// not be reached (refused, timed out, no such host), rather than that it
// answered no.
func Unreachable(err error) bool {
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	// Helm and client-go flatten some errors into text.
	msg := err.Error()
	for _, s := range []string{"connection refused", "no such host", "i/o timeout", "network is unreachable", "connection reset by peer"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// unreachable says so the first time (what ran keeps running), and tries
// the workload again after a backoff that doubles.
func (c *Cluster) unreachable(ctx context.Context, name string, err error, start time.Time) {
	c.mu.Lock()
	if c.down == nil {
		c.down = map[string]time.Duration{}
	}
	wait, already := c.down[name]
	switch {
	case !already:
		wait = c.Backoff
		if wait <= 0 {
			wait = DefaultBackoff
		}
	case wait < maxBackoff:
		wait = min(2*wait, maxBackoff)
	}
	c.down[name] = wait
	retry := c.Retry
	c.mu.Unlock()
	if !already {
		msg := err.Error() + "; what ran before keeps serving"
		if retry != nil {
			msg += "; trying again from " + wait.String() + " on, and on every save"
		}
		c.Events.Emit(event.Event{Kind: event.Failed, Phase: event.PhaseCycle, Workload: name, Error: msg, Duration: time.Since(start)})
	}
	if retry != nil {
		t := time.AfterFunc(wait, func() { retry(name) })
		context.AfterFunc(ctx, func() { t.Stop() })
	}
}

// reachable ends a workload's backoff: the registry and cluster answer.
func (c *Cluster) reachable(name string) {
	c.mu.Lock()
	delete(c.down, name)
	c.mu.Unlock()
}

// fingerprint says what a release would run: its image and values.
func fingerprint(image string, vals map[string]any) (string, error) {
	data, err := json.Marshal(vals) // map keys sorted: stable
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(append([]byte(image+"\n"), data...))
	return hex.EncodeToString(sum[:]), nil
}

// Restore leaves the cluster as the loop found it: a release that existed
// is rolled back to the revision it had (or, when that revision is no
// longer in its history, upgraded to what it held); one the loop installed
// is uninstalled. With keep, each release is left as it is. When ctx ends
// first (a second interrupt), Restore returns at once and says, per
// release, what it left. It returns the number of releases left changed.
func (c *Cluster) Restore(ctx context.Context, keep bool, timeout time.Duration) int {
	c.mu.Lock()
	p, before := c.Project, c.before
	c.mu.Unlock()
	if before == nil {
		return 0
	}
	pl := &pipeline.Pipeline{Project: p, Root: c.Root}
	left := 0
	for _, name := range slices.Sorted(maps.Keys(before)) {
		w, ok := p.Workload(name)
		if !ok {
			continue
		}
		rel := pl.Release(w)
		if keep {
			msg := "--keep: left as dev deployed it"
			c.mu.Lock()
			if st := c.live[name]; st != nil && st.ref != st.pull {
				msg += "; its pods run files dev synced into them, a new pod starts from the release's image: `skiff deploy " + name + "` makes the release hold them"
			}
			c.mu.Unlock()
			c.Events.Emit(event.Event{Kind: event.Left, Workload: name, Release: rel, Error: msg})
			left++
			continue
		}
		ev := c.restoreOne(ctx, name, rel, p.Namespace, before[name], timeout)
		if ctx.Err() != nil && ev.Kind != event.Restored && ev.Kind != event.Removed {
			ev = event.Event{Kind: event.Left, Workload: name, Release: rel, Error: "interrupted while restoring it"}
		}
		if ev.Kind == event.Left {
			left++
		}
		if ev.Kind != "" {
			c.Events.Emit(ev)
		}
		if ctx.Err() != nil {
			for _, n := range slices.Sorted(maps.Keys(before)) {
				if n > name {
					c.Events.Emit(event.Event{Kind: event.Left, Workload: n, Error: "interrupted before restoring it"})
					left++
				}
			}
			return left
		}
	}
	return left
}

// restoreOne brings one release back; the event says what it did ("" kind:
// nothing to do). When ctx ends, it stops waiting for the release.
func (c *Cluster) restoreOne(ctx context.Context, name, rel, ns string, was *deploy.Record, timeout time.Duration) event.Event {
	now, err := c.History.Get(ctx, rel, ns)
	var nf *deploy.NotFoundError
	if errors.As(err, &nf) {
		now, err = nil, nil
	}
	if err != nil {
		return event.Event{Kind: event.Left, Workload: name, Release: rel, Error: "reading it: " + err.Error()}
	}
	switch {
	case was == nil && now == nil:
		return event.Event{}
	case was == nil:
		if err := c.History.Uninstall(ctx, rel, ns, timeout); err != nil {
			return event.Event{Kind: event.Left, Workload: name, Release: rel, Error: "uninstalling it: " + err.Error()}
		}
		return event.Event{Kind: event.Removed, Workload: name, Release: rel}
	case now == nil:
		return event.Event{Kind: event.Left, Workload: name, Release: rel, Error: "it was uninstalled meanwhile"}
	case now.Version == was.Version:
		return event.Event{}
	}
	if _, err := c.History.Rollback(ctx, rel, ns, was.Version, timeout); err == nil {
		return event.Event{Kind: event.Restored, Workload: name, Release: rel, Revision: was.Version}
	} else if nr := (*deploy.NoRevisionError)(nil); !errors.As(err, &nr) {
		return event.Event{Kind: event.Left, Workload: name, Release: rel, Error: "rolling it back: " + err.Error()}
	}
	// The revision fell out of Helm's history (dev made many): deploy
	// what it held.
	_, err = c.Releases.Releaser.Deploy(ctx, deploy.Release{Name: rel, Namespace: ns, Chart: was.Chart,
		Values: was.Config, Timeout: timeout, Description: fmt.Sprintf("skiff dev: back to revision %d", was.Version)}, name)
	if err != nil {
		return event.Event{Kind: event.Left, Workload: name, Release: rel, Error: "restoring it: " + err.Error()}
	}
	return event.Event{Kind: event.Restored, Workload: name, Release: rel, Revision: was.Version}
}
