package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"helm.sh/helm/v3/pkg/release"

	"github.com/skiffdev/skiff/internal/build"
	"github.com/skiffdev/skiff/internal/deploy"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/publish"
)

// gateBuilder holds every build until the test releases it, counting how
// many run at once.
type gateBuilder struct {
	arrived  chan string
	release  chan struct{}
	inflight atomic.Int32
	max      atomic.Int32
	fail     string // workload whose build fails
}

func (b *gateBuilder) Build(ctx context.Context, req build.Request) (*build.Artifact, error) {
	n := b.inflight.Add(1)
	defer b.inflight.Add(-1)
	for {
		m := b.max.Load()
		if n <= m || b.max.CompareAndSwap(m, n) {
			break
		}
	}
	b.arrived <- req.Workload.Name
	select {
	case <-b.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if req.Workload.Name == b.fail {
		return nil, errors.New("compile error")
	}
	img, err := random.Image(64, 1)
	if err != nil {
		return nil, err
	}
	return &build.Artifact{Image: img, Platforms: []string{"linux/amd64"}, Reused: req.Workload.Name == "b"}, nil
}

// memPublisher records what it was given.
type memPublisher struct {
	mu     sync.Mutex
	names  []string
	closed bool
}

func (p *memPublisher) Publish(_ context.Context, a *build.Artifact, name, tag string) (*publish.Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.names = append(p.names, name+":"+tag)
	d, _ := a.Digest()
	return &publish.Result{Reference: "mem:" + name + ":" + tag, Digest: d.String(), Uploaded: true}, nil
}

func (p *memPublisher) Close() error { p.closed = true; return nil }

func testProject(t *testing.T) *project.Project {
	t.Helper()
	p, err := project.Parse([]byte(`apiVersion: skiff.dev/v1alpha1
name: shop
registry: registry.example.com/acme
workloads:
  - {name: a, kind: service, lang: go, dependsOn: [c]}
  - {name: b, kind: service, lang: go}
  - {name: c, kind: service, lang: go}
  - {name: d, kind: function, lang: go, dependsOn: [a]}
`))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// events collects a pipeline's events.
type events struct {
	mu  sync.Mutex
	all []Event
}

func (e *events) add(ev Event) { e.mu.Lock(); e.all = append(e.all, ev); e.mu.Unlock() }

func (e *events) of(workload string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var kinds []string
	for _, ev := range e.all {
		if ev.Workload == workload {
			kinds = append(kinds, string(ev.Kind))
		}
	}
	return strings.Join(kinds, " ")
}

func TestBuildRunsIndependentWorkloadsAtOnceBoundedByJobs(t *testing.T) {
	p := testProject(t)
	ev := &events{}
	pl := &Pipeline{Project: p, Root: t.TempDir(), Events: ev.add}
	b := &gateBuilder{arrived: make(chan string, 4), release: make(chan struct{})}
	pub := &memPublisher{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	type result struct {
		images []Image
		err    error
	}
	done := make(chan result, 1)
	go func() {
		imgs, err := pl.Build(ctx, Builds{Builder: b, Publisher: pub, Dest: DestRegistry, Tag: "latest",
			Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}}, Jobs: 2}, p.Order())
		done <- result{imgs, err}
	}()
	// Two builds are held at once: they run concurrently.
	for range 2 {
		select {
		case <-b.arrived:
		case <-ctx.Done():
			t.Fatal("two builds never ran at once")
		}
	}
	close(b.release)
	for range 2 {
		<-b.arrived
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := b.max.Load(); got != 2 {
		t.Errorf("at most %d builds ran at once, want 2 (--jobs 2)", got)
	}
	// Results in the order asked (dependency order), whatever finished first.
	var names []string
	for _, img := range r.images {
		names = append(names, img.Workload)
		if !strings.HasPrefix(img.Pull, "registry.example.com/acme/"+img.Workload+"@sha256:") {
			t.Errorf("%s: pull reference %s", img.Workload, img.Pull)
		}
	}
	if got := strings.Join(names, ","); got != "c,a,b,d" {
		t.Errorf("images in order %s, want c,a,b,d", got)
	}
	if got := ev.of("b"); got != "build-started reused published" {
		t.Errorf("events of b: %s", got)
	}
	if got := ev.of("a"); got != "build-started built published" {
		t.Errorf("events of a: %s", got)
	}
	if !pub.closed {
		t.Error("the publisher was not closed")
	}
}

func TestBuildStopsAtTheFirstFailure(t *testing.T) {
	p := testProject(t)
	ev := &events{}
	pl := &Pipeline{Project: p, Root: t.TempDir(), Events: ev.add}
	b := &gateBuilder{arrived: make(chan string, 4), release: make(chan struct{}), fail: "c"}
	close(b.release)
	pub := &memPublisher{}
	_, err := pl.Build(context.Background(), Builds{Builder: b, Publisher: pub, Dest: DestLocal,
		Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}}, Jobs: 1}, p.Order())
	if err == nil || !strings.Contains(err.Error(), "building c: compile error") {
		t.Fatalf("err = %v, want c's compile error", err)
	}
	if got := ev.of("c"); got != "build-started failed" {
		t.Errorf("events of c: %s", got)
	}
	for _, w := range []string{"a", "b", "d"} {
		if got := ev.of(w); got != "" {
			t.Errorf("%s was built after c failed (jobs 1): %s", w, got)
		}
	}
	if pub.closed {
		t.Error("the publisher was closed after a failure (a tarball would be written half)")
	}
}

// fakeReleaser deploys in memory, failing one workload.
type fakeReleaser struct {
	order []string
	fail  string
	last  map[string]*release.Release
}

func (r *fakeReleaser) Deploy(_ context.Context, rel deploy.Release, workload string) (*deploy.Result, error) {
	r.order = append(r.order, workload)
	if workload == r.fail {
		return nil, fmt.Errorf("release %s did not become ready", rel.Name)
	}
	return &deploy.Result{Release: rel.Name, Namespace: rel.Namespace, Revision: 1}, nil
}

func (r *fakeReleaser) LastGoodRelease(_ context.Context, name, namespace string) (*release.Release, error) {
	if rel, ok := r.last[name]; ok {
		return rel, nil
	}
	return nil, &deploy.NotFoundError{Release: name, Namespace: namespace}
}

func TestDeployGoesInDependencyOrderAndStopsAtAFailure(t *testing.T) {
	p := testProject(t)
	ev := &events{}
	pl := &Pipeline{Project: p, Root: t.TempDir(), Events: ev.add}
	r := &fakeReleaser{fail: "a"}
	images := map[string]string{"a": "x@sha256:a", "b": "x@sha256:b", "c": "x@sha256:c", "d": "x@sha256:d"}
	got, err := pl.Deploy(context.Background(), Releases{Releaser: r, Timeout: time.Minute}, p.Order(), images)
	if err == nil {
		t.Fatal("deploy of a failed and nothing said so")
	}
	if strings.Join(r.order, ",") != "c,a" || len(got) != 1 || got[0].Workload != "c" {
		t.Errorf("deployed %v (results %+v), want c then a, stopping there", r.order, got)
	}
	if e := ev.of("a"); e != "deploy-started failed" {
		t.Errorf("events of a: %s", e)
	}
	if e := ev.of("c"); e != "deploy-started deployed" {
		t.Errorf("events of c: %s", e)
	}
}

func TestPlanReusesDeployedImagesOrSaysWhichIsMissing(t *testing.T) {
	p := testProject(t)
	pl := &Pipeline{Project: p}
	r := &fakeReleaser{last: map[string]*release.Release{
		"shop-a": {Config: map[string]any{"image": map[string]any{"ref": "x/a@sha256:1"}}},
	}}
	a, _ := p.Workload("a")
	b, _ := p.Workload("b")
	images, toBuild, err := pl.Plan(context.Background(), r, []project.Workload{*a, *b}, map[string]string{"b": "x/b@sha256:2"}, true)
	if err != nil || images["a"] != "x/a@sha256:1" || images["b"] != "x/b@sha256:2" || len(toBuild) != 0 {
		t.Fatalf("Plan = %v, %v, %v", images, toBuild, err)
	}
	_, _, err = pl.Plan(context.Background(), r, []project.Workload{*b}, nil, true)
	var none *NoDeployedImageError
	if !errors.As(err, &none) || none.Workload != "b" {
		t.Fatalf("Plan without a deployed b = %v", err)
	}
	_, toBuild, _ = pl.Plan(context.Background(), r, []project.Workload{*a, *b}, nil, false)
	if len(toBuild) != 2 {
		t.Errorf("without reuse, %d to build, want 2", len(toBuild))
	}
}

// fakeBus records the workloads it readied the bus for, in the order of
// the releases.
type fakeBus struct {
	r    *fakeReleaser
	fail string
	log  []string
}

func (b *fakeBus) Subscribe(_ context.Context, w *project.Workload) error {
	b.log = append(b.log, fmt.Sprintf("bus %s (%d releases before)", w.Name, len(b.r.order)))
	if w.Name == b.fail {
		return errors.New("no JetStream")
	}
	return nil
}

// TestDeployReadiesTheBusFirst: each workload's consumers exist before its
// release, so no event published while its pods start is lost; a bus that
// fails stops the deploy before that release.
func TestDeployReadiesTheBusFirst(t *testing.T) {
	p := testProject(t)
	pl := &Pipeline{Project: p}
	r := &fakeReleaser{}
	b := &fakeBus{r: r}
	ws := p.Order()
	if _, err := pl.Deploy(context.Background(), Releases{Releaser: r, Bus: b}, ws, map[string]string{}); err != nil {
		t.Fatal(err)
	}
	for i, w := range ws {
		if want := fmt.Sprintf("bus %s (%d releases before)", w.Name, i); b.log[i] != want {
			t.Errorf("step %d: %s, want %s", i, b.log[i], want)
		}
	}
	r2 := &fakeReleaser{}
	b2 := &fakeBus{r: r2, fail: ws[1].Name}
	_, err := pl.Deploy(context.Background(), Releases{Releaser: r2, Bus: b2}, ws, map[string]string{})
	if err == nil || !strings.Contains(err.Error(), "no JetStream") || !strings.Contains(err.Error(), ws[1].Name) {
		t.Fatalf("deploy with a failing bus = %v", err)
	}
	if len(r2.order) != 1 {
		t.Errorf("releases after the bus failed: %v, want only %s's", r2.order, ws[0].Name)
	}
}

func TestValuesOfAnEnvironment(t *testing.T) {
	top, err := project.Parse([]byte(`apiVersion: skiff.dev/v1alpha1
name: shop
workloads:
  - {name: orders, kind: service, lang: go, env: {LOG_LEVEL: info, A: "1"}}
environments:
  prod:
    namespace: shop-prod
    values: {podAnnotations: {team: shop}}
    workloads:
      orders: {replicas: 3, env: {LOG_LEVEL: warn}, resources: {cpu: 500m, memory: 256Mi}}
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := top.ForEnv("prod")
	if err != nil {
		t.Fatal(err)
	}
	pl := &Pipeline{Project: p}
	w, _ := p.Workload("orders")
	v := pl.Values(w, "img@sha256:1", map[string]any{"replicas": 5})
	env := v["env"].(map[string]any)
	res := v["resources"].(map[string]any)
	if v["replicas"] != 5 || env["LOG_LEVEL"] != "warn" || env["A"] != "1" ||
		res["requests"].(map[string]any)["cpu"] != "500m" || res["limits"].(map[string]any)["memory"] != "256Mi" ||
		v["podAnnotations"].(map[string]any)["team"] != "shop" {
		t.Errorf("values = %v", v)
	}
	if pl.Release(w) != "shop-orders" || p.Namespace != "shop-prod" {
		t.Errorf("release %s in %s", pl.Release(w), p.Namespace)
	}
}
