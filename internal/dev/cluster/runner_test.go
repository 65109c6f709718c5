package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"

	"github.com/skiffdev/skiff/internal/build"
	"github.com/skiffdev/skiff/internal/deploy"
	"github.com/skiffdev/skiff/internal/event"
	"github.com/skiffdev/skiff/internal/pipeline"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/publish"
)

// versionBuilder builds an image that differs only when the workload's
// version (set by the test) does; a version starting with "!" fails.
type versionBuilder struct {
	mu      sync.Mutex
	version map[string]string
}

func (b *versionBuilder) Build(_ context.Context, req build.Request) (*build.Artifact, error) {
	b.mu.Lock()
	v := b.version[req.Workload.Name]
	b.mu.Unlock()
	if strings.HasPrefix(v, "!") {
		return nil, errors.New("./main.go:3:1: syntax error")
	}
	img, err := mutate.Config(empty.Image, cfgWithLabel(v))
	if err != nil {
		return nil, err
	}
	return &build.Artifact{Image: img, Platforms: []string{"linux/amd64"}}, nil
}

type nopPublisher struct{}

func (nopPublisher) Publish(_ context.Context, a *build.Artifact, name, tag string) (*publish.Result, error) {
	d, err := a.Digest()
	if err != nil {
		return nil, err
	}
	return &publish.Result{Reference: name + ":" + tag, Digest: d.String()}, nil
}
func (nopPublisher) Close() error { return nil }

// fakeHelm is a cluster's releases: what each holds, revision by revision.
type fakeHelm struct {
	mu   sync.Mutex
	revs map[string][]*release.Release
	// keep bounds the history, as Helm's MaxHistory does (0: all).
	keep  int
	calls []string
	// block, when set, holds Rollback until it is closed.
	block chan struct{}
}

func (h *fakeHelm) record(name string, vals map[string]any, desc string) *release.Release {
	n := 1
	if rs := h.revs[name]; len(rs) > 0 {
		n = rs[len(rs)-1].Version + 1
	}
	rel := &release.Release{Name: name, Namespace: "shop", Version: n, Config: vals,
		Chart: &chart.Chart{Metadata: &chart.Metadata{Name: "skiff"}},
		Info:  &release.Info{Status: release.StatusDeployed, Description: desc}}
	h.revs[name] = append(h.revs[name], rel)
	if h.keep > 0 && len(h.revs[name]) > h.keep {
		h.revs[name] = h.revs[name][1:]
	}
	return rel
}

func (h *fakeHelm) Deploy(_ context.Context, r deploy.Release, _ string) (*deploy.Result, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, "deploy "+r.Name)
	img, _ := r.Values["image"].(map[string]any)
	if ref, _ := img["ref"].(string); strings.Contains(ref, "crash") {
		return nil, errors.New("CrashLoopBackOff; rolled back")
	} else if ref == "unreachable" {
		return nil, errors.New("Kubernetes cluster unreachable: dial tcp 127.0.0.1:6443: connect: connection refused")
	}
	rel := h.record(r.Name, r.Values, r.Description)
	return &deploy.Result{Release: r.Name, Revision: rel.Version}, nil
}

func (h *fakeHelm) LastGoodRelease(ctx context.Context, name, ns string) (*release.Release, error) {
	return h.Get(ctx, name, ns)
}

func (h *fakeHelm) Get(_ context.Context, name, ns string) (*release.Release, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	rs := h.revs[name]
	if len(rs) == 0 {
		return nil, &deploy.NotFoundError{Release: name, Namespace: ns}
	}
	return rs[len(rs)-1], nil
}

func (h *fakeHelm) Rollback(ctx context.Context, name, ns string, revision int, _ time.Duration) (int, error) {
	if h.block != nil {
		// A release that does not get ready: the wait ends with ctx.
		select {
		case <-h.block:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, fmt.Sprintf("rollback %s %d", name, revision))
	for _, r := range h.revs[name] {
		if r.Version == revision {
			return h.record(name, r.Config, "Rollback").Version, nil
		}
	}
	return 0, &deploy.NoRevisionError{Release: name, Revision: revision}
}

func (h *fakeHelm) Uninstall(_ context.Context, name, ns string, _ time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, "uninstall "+name)
	delete(h.revs, name)
	return nil
}

func (h *fakeHelm) callList() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.calls, ", ")
}

func newTestCluster(t *testing.T, h *fakeHelm, b *versionBuilder) (*Cluster, *[]event.Event) {
	t.Helper()
	p, err := project.Parse([]byte("apiVersion: skiff.dev/v1alpha1\nname: shop\nregistry: r.example.com/acme\nnamespace: shop\n" +
		"workloads:\n  - {name: front, kind: function, lang: go}\n  - {name: back, kind: service, lang: go}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []event.Event
	c := &Cluster{Project: p, Root: t.TempDir(), History: h,
		Builds:   pipeline.Builds{Builder: b, Publisher: nopPublisher{}, Dest: pipeline.DestRegistry, Tag: "dev"},
		Releases: pipeline.Releases{Releaser: h, Overrides: ChartSettings()},
		URLs:     map[string]string{"front": "http://127.0.0.1:18080"},
		Events: &event.Emitter{Sink: func(ev event.Event) {
			mu.Lock()
			defer mu.Unlock()
			if !loopKinds[ev.Kind] {
				return // the pipeline's, within a cycle
			}
			events = append(events, ev)
		}}}
	return c, &events
}

// loopKinds are the loop's own events; a cycle on the cluster also passes
// on the pipeline's (build, push, deploy).
var loopKinds = map[event.Kind]bool{event.Watching: true, event.CycleStarted: true, event.Ready: true, event.Unchanged: true, event.Failed: true,
	event.Exited: true, event.ManifestError: true, event.Stopped: true, event.Restored: true, event.Removed: true, event.Left: true}

func kinds(events []event.Event) string {
	var s []string
	for _, ev := range events {
		s = append(s, string(ev.Kind)+" "+ev.Workload)
	}
	return strings.Join(s, ", ")
}

func TestClusterCycleDeploysWhatChangedAndKeepsWhatRunsOnFailure(t *testing.T) {
	h := &fakeHelm{revs: map[string][]*release.Release{}}
	b := &versionBuilder{version: map[string]string{"front": "1"}}
	c, events := newTestCluster(t, h, b)
	ctx := context.Background()

	loop := c.Events.Sink
	var all []string
	c.Events.Sink = func(ev event.Event) { all = append(all, string(ev.Kind)); loop(ev) }
	c.Cycle(ctx, "front")
	last := (*events)[len(*events)-1]
	if last.Kind != event.Ready || last.Revision != 1 || last.URL != "http://127.0.0.1:18080" {
		t.Fatalf("first cycle: %+v", last)
	}
	// One stream: the cycle's build, push and deploy are in it.
	if got := strings.Join(all, " "); got != "cycle-started build-started built published deploy-started deployed ready" {
		t.Errorf("the first cycle's events: %s", got)
	}
	c.Events.Sink = loop
	if rel, _ := h.Get(context.Background(), "shop-front", "shop"); rel.Config["terminationGracePeriodSeconds"] != 2 {
		t.Errorf("dev's chart settings are not in the values: %v", rel.Config)
	}
	// Nothing changed (a save that restored the file): no new revision.
	c.Cycle(ctx, "front")
	if last := (*events)[len(*events)-1]; last.Kind != event.Unchanged {
		t.Fatalf("a cycle with nothing new: %s", kinds(*events))
	}
	// A compile error: said, nothing deployed.
	b.version["front"] = "!broken"
	c.Cycle(ctx, "front")
	last = (*events)[len(*events)-1]
	if last.Kind != event.Failed || !strings.Contains(last.Error, "syntax error") || !strings.Contains(last.Error, "keeps serving") {
		t.Fatalf("a failed build: %+v", last)
	}
	// A version that crashes: deploy's error is shown.
	b.version["front"] = "2"
	c.Releases.Overrides = map[string]any{"image": map[string]any{"ref": "crash"}}
	c.Cycle(ctx, "front")
	if last := (*events)[len(*events)-1]; last.Kind != event.Failed || !strings.Contains(last.Error, "CrashLoopBackOff") {
		t.Fatalf("a crashing version: %+v", last)
	}
	// A manifest edit that changes only the values: deployed, same image.
	c.Releases.Overrides = ChartSettings()
	b.version["front"] = "1"
	np := *c.Project
	np.Workloads = append([]project.Workload(nil), c.Project.Workloads...)
	np.Workloads[0].Env = map[string]string{"GREETING": "Hi"}
	c.SetProject(&np)
	c.Cycle(ctx, "front")
	if last := (*events)[len(*events)-1]; last.Kind != event.Ready || last.Revision != 2 {
		t.Fatalf("a values-only change: %s", kinds(*events))
	}
	if got := h.callList(); got != "deploy shop-front, deploy shop-front, deploy shop-front" {
		t.Errorf("helm calls: %s", got)
	}
}

func TestRestoreLeavesTheClusterAsFound(t *testing.T) {
	h := &fakeHelm{revs: map[string][]*release.Release{}}
	for range 3 {
		h.record("shop-back", map[string]any{"replicas": 2}, "skiff deploy")
	}
	c, events := newTestCluster(t, h, &versionBuilder{version: map[string]string{"front": "1", "back": "1"}})
	if err := c.Snapshot(context.Background(), []string{"front", "back"}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c.Cycle(ctx, "front")
	c.Cycle(ctx, "back")
	*events = nil
	if left := c.Restore(ctx, false, time.Minute); left != 0 {
		t.Fatalf("%d left: %s", left, kinds(*events))
	}
	if got := h.callList(); !strings.HasSuffix(got, "rollback shop-back 3, uninstall shop-front") {
		t.Errorf("helm calls: %s", got)
	}
	if rel, _ := h.Get(context.Background(), "shop-back", "shop"); rel.Config["replicas"] != 2 || rel.Config["probes"] != nil {
		t.Errorf("back after restore holds %v", rel.Config)
	}
	if got := kinds(*events); got != "restored back, removed front" {
		t.Errorf("events: %s", got)
	}
}

func TestRestoreWhenTheRevisionLeftHelmsHistory(t *testing.T) {
	h := &fakeHelm{revs: map[string][]*release.Release{}, keep: 2}
	h.record("shop-back", map[string]any{"replicas": 2}, "skiff deploy")
	b := &versionBuilder{version: map[string]string{"back": "1"}}
	c, _ := newTestCluster(t, h, b)
	if err := c.Snapshot(context.Background(), []string{"back"}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1", "2", "3"} {
		b.version["back"] = v
		c.Cycle(context.Background(), "back")
	}
	if left := c.Restore(context.Background(), false, time.Minute); left != 0 {
		t.Fatal("not restored")
	}
	rel, _ := h.Get(context.Background(), "shop-back", "shop")
	if rel.Config["replicas"] != 2 || rel.Config["probes"] != nil || !strings.Contains(rel.Info.Description, "back to revision 1") {
		t.Errorf("back after restore: %v (%s)", rel.Config, rel.Info.Description)
	}
}

func TestRestoreKeepsOrIsCutShort(t *testing.T) {
	h := &fakeHelm{revs: map[string][]*release.Release{}}
	h.record("shop-back", nil, "skiff deploy")
	h.record("shop-front", nil, "skiff deploy")
	c, events := newTestCluster(t, h, &versionBuilder{version: map[string]string{"front": "1", "back": "1"}})
	if err := c.Snapshot(context.Background(), []string{"front", "back"}); err != nil {
		t.Fatal(err)
	}
	c.Cycle(context.Background(), "front")
	c.Cycle(context.Background(), "back")
	*events = nil
	if left := c.Restore(context.Background(), true, time.Minute); left != 2 || kinds(*events) != "left back, left front" {
		t.Fatalf("--keep: %d left: %s", left, kinds(*events))
	}
	// A second interrupt while the first rollback hangs: both said left.
	*events = nil
	h.block = make(chan struct{})
	defer close(h.block)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() { done <- c.Restore(ctx, false, time.Minute) }()
	cancel()
	if left := <-done; left != 2 || kinds(*events) != "left back, left front" {
		t.Fatalf("interrupted: %d left: %s", left, kinds(*events))
	}
}

func cfgWithLabel(v string) v1.Config { return v1.Config{Labels: map[string]string{"v": v}} }

// flakyPublisher cannot reach its registry the first failures times.
type flakyPublisher struct {
	nopPublisher
	failures int
}

func (p *flakyPublisher) Publish(ctx context.Context, a *build.Artifact, name, tag string) (*publish.Result, error) {
	if p.failures > 0 {
		p.failures--
		return nil, fmt.Errorf("pushing %s: %w", name, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
	}
	return p.nopPublisher.Publish(ctx, a, name, tag)
}

func TestAnUnreachableRegistryIsSaidOnceAndTriedAgain(t *testing.T) {
	h := &fakeHelm{revs: map[string][]*release.Release{}}
	c, events := newTestCluster(t, h, &versionBuilder{version: map[string]string{"front": "1"}})
	pub := &flakyPublisher{failures: 2}
	c.Builds.Publisher = pub
	c.Backoff = time.Millisecond
	retries := make(chan string, 4)
	c.SetRetry(func(n string) { retries <- n })
	ctx := context.Background()

	c.Cycle(ctx, "front")
	if got := kinds(*events); got != "cycle-started front, failed front" || !strings.Contains((*events)[1].Error, "trying again from 1ms on") {
		t.Fatalf("first failure: %s %+v", got, *events)
	}
	<-retries
	c.Cycle(ctx, "front") // still unreachable: not said again
	if got := kinds(*events); got != "cycle-started front, failed front, cycle-started front" {
		t.Fatalf("second failure: %s", got)
	}
	if c.down["front"] != 2*time.Millisecond {
		t.Errorf("backoff after two failures: %s", c.down["front"])
	}
	<-retries
	c.Cycle(ctx, "front")
	if last := (*events)[len(*events)-1]; last.Kind != event.Ready {
		t.Fatalf("once reachable: %s", kinds(*events))
	}
	if _, down := c.down["front"]; down {
		t.Error("the backoff outlived the recovery")
	}
	// An answer that is a no (a compile error) is not retried on a timer.
	c.Cycle(ctx, "nosuch")
	select {
	case n := <-retries:
		t.Errorf("retried %s", n)
	default:
	}
	// The cluster unreachable after a good push: said once too.
	b := c.Builds.Builder.(*versionBuilder)
	for i, v := range []string{"2", "3"} {
		b.version["front"] = v
		c.Releases.Overrides = map[string]any{"image": map[string]any{"ref": "unreachable"}}
		n := len(*events)
		c.Cycle(ctx, "front")
		if failed := kinds((*events)[n:]); failed != []string{"cycle-started front, failed front", "cycle-started front"}[i] {
			t.Errorf("cluster unreachable, cycle %d: %s", i+1, failed)
		}
		<-retries
	}
	if !Unreachable(fmt.Errorf("Kubernetes cluster unreachable: Get \"https://x\": dial tcp 127.0.0.1:1: connect: connection refused")) || Unreachable(errors.New("syntax error")) {
		t.Error("Unreachable misjudges")
	}
}
