package cluster

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"helm.sh/helm/v3/pkg/release"

	"github.com/skiffdev/skiff/internal/build"
	"github.com/skiffdev/skiff/internal/devsync"
	"github.com/skiffdev/skiff/internal/event"
	"github.com/skiffdev/skiff/internal/project"
)

// appBuilder builds an image of a base layer and an app layer whose one
// file holds the workload's version; a version starting with "!" fails.
type appBuilder struct {
	mu      sync.Mutex
	version map[string]string
	// base changes the base layer (a new base image).
	base string
}

func (b *appBuilder) Build(_ context.Context, req build.Request) (*build.Artifact, error) {
	b.mu.Lock()
	v, base := b.version[req.Workload.Name], b.base
	b.mu.Unlock()
	if strings.HasPrefix(v, "!") {
		return nil, errors.New("./main.go:3:1: syntax error")
	}
	bl, err := crane.Layer(map[string][]byte{"etc/base": []byte(base)})
	if err != nil {
		return nil, err
	}
	al, err := crane.Layer(map[string][]byte{"app/fn": []byte(v)})
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, bl, al)
	if err != nil {
		return nil, err
	}
	img, err = mutate.Config(img, cfgWithEntrypoint("/app/fn"))
	if err != nil {
		return nil, err
	}
	return &build.Artifact{Image: img, Platforms: []string{"linux/amd64"}}, nil
}

func cfgWithEntrypoint(cmd ...string) v1.Config { return v1.Config{Entrypoint: cmd} }

// fakePods is the running pods of a release: the version of their app
// folder, as the supervisor keeps it. err, when set, is the answer to
// the next sync.
type fakePods struct {
	mu      sync.Mutex
	version map[string]string // release: version (the image reference)
	files   map[string]string // release: the content of app/fn
	err     error
	syncs   int
}

func (f *fakePods) Sync(_ context.Context, _, rel string, patch []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncs++
	if err := f.err; err != nil {
		f.err = nil
		return err
	}
	tr := tar.NewReader(bytes.NewReader(patch))
	h, err := tr.Next()
	if err != nil {
		return err
	}
	var m struct{ From, To string }
	if err := json.NewDecoder(tr).Decode(&m); err != nil || h.Name != ".skiff-sync.json" {
		return errors.New("not a patch")
	}
	if m.From != f.version[rel] {
		return ErrStale
	}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if h.Name == "fn" {
			data, _ := io.ReadAll(tr)
			f.files[rel] = string(data)
		}
	}
	f.version[rel] = m.To
	return nil
}

// rolledOut is what a rollout does to the fake pods: new ones, from the
// release's image.
func (f *fakePods) rolledOut(h *fakeHelm, rel, content string) {
	r, _ := h.Get(context.Background(), rel, "shop")
	img, _ := r.Config["image"].(map[string]any)
	f.mu.Lock()
	f.version[rel], _ = img["ref"].(string)
	f.files[rel] = content
	f.mu.Unlock()
}

func TestClusterCycleSyncsTheAppFolderIntoRunningPods(t *testing.T) {
	h := &fakeHelm{revs: map[string][]*release.Release{}}
	b := &appBuilder{version: map[string]string{"front": "v1"}, base: "debian"}
	c, events := newTestCluster(t, h, &versionBuilder{})
	c.Builds.Builder = b
	pods := &fakePods{version: map[string]string{}, files: map[string]string{}}
	c.SyncImage, c.Syncer = "r.example.com/skiff-relay@sha256:1", pods
	ctx := context.Background()
	last := func() event.Event { return (*events)[len(*events)-1] }
	deploys := func() int { return strings.Count(h.callList(), "deploy shop-front") }

	// The first cycle rolls out, with the supervisor in the values.
	c.Cycle(ctx, "front")
	if last().Kind != event.Ready || deploys() != 1 {
		t.Fatalf("first cycle: %s", kinds(*events))
	}
	rel, _ := h.Get(context.Background(), "shop-front", "shop")
	sv, _ := rel.Config["dev"].(map[string]any)["sync"].(map[string]any)
	if sv["enabled"] != true || sv["image"] != c.SyncImage || len(sv["command"].([]any)) != 1 {
		t.Fatalf("dev.sync values: %v", rel.Config["dev"])
	}
	pods.rolledOut(h, "shop-front", "v1")

	// A code change: synced into the pods, no rollout.
	b.version["front"] = "v2"
	c.Cycle(ctx, "front")
	if ev := last(); ev.Kind != event.Ready || deploys() != 1 || pods.files["shop-front"] != "v2" {
		t.Fatalf("a code change: %s; deploys %d; pods run %q", kinds(*events), deploys(), pods.files["shop-front"])
	}
	if _, ok := last().Steps["sync"]; !ok {
		t.Errorf("the ready event of a sync has no sync step: %+v", last())
	}
	// The same code again (a save that changed nothing): unchanged.
	c.Cycle(ctx, "front")
	if last().Kind != event.Unchanged || pods.syncs != 1 {
		t.Fatalf("no change: %s, %d syncs", kinds(*events), pods.syncs)
	}
	// Back to the release's own image: a sync too (the pods run v2).
	b.version["front"] = "v1"
	c.Cycle(ctx, "front")
	if last().Kind != event.Ready || deploys() != 1 || pods.files["shop-front"] != "v1" {
		t.Fatalf("back to v1: %s; pods run %q", kinds(*events), pods.files["shop-front"])
	}

	// A version that does not get ready in a pod: shown with its output,
	// no rollout, and the next edit is synced from what the pods run.
	b.version["front"] = "v3"
	pods.err = &SyncError{Pod: "front-1", Result: devsync.Result{Error: "the new version exited with status 1 before it was ready", Output: "listen tcp: bad port"}}
	c.Cycle(ctx, "front")
	if ev := last(); ev.Kind != event.Failed || !strings.Contains(ev.Error, "status 1") || ev.Output != "listen tcp: bad port" || deploys() != 1 {
		t.Fatalf("a failed sync: %+v; deploys %d", ev, deploys())
	}
	b.version["front"] = "v4"
	c.Cycle(ctx, "front")
	if last().Kind != event.Ready || deploys() != 1 || pods.files["shop-front"] != "v4" {
		t.Fatalf("after a failed sync: %s; pods run %q", kinds(*events), pods.files["shop-front"])
	}

	// Pods that started since (a crash, an eviction) run the release's
	// image: the patch does not fit, so dev rolls out.
	pods.rolledOut(h, "shop-front", "v1")
	b.version["front"] = "v5"
	c.Cycle(ctx, "front")
	if last().Kind != event.Ready || deploys() != 2 {
		t.Fatalf("stale pods: %s; deploys %d", kinds(*events), deploys())
	}
	pods.rolledOut(h, "shop-front", "v5")

	// A failure that some pods kept: the next change rolls out.
	b.version["front"] = "v6"
	pods.err = &SyncError{Pod: "front-2", Result: devsync.Result{Error: "not ready"}, Kept: 1}
	c.Cycle(ctx, "front")
	b.version["front"] = "v7"
	c.Cycle(ctx, "front")
	if last().Kind != event.Ready || deploys() != 3 {
		t.Fatalf("after a partly kept version: %s; deploys %d", kinds(*events), deploys())
	}
	pods.rolledOut(h, "shop-front", "v7")

	// A new base image is more than the app folder: a rollout.
	b.base = "debian-2"
	b.version["front"] = "v8"
	c.Cycle(ctx, "front")
	if last().Kind != event.Ready || deploys() != 4 {
		t.Fatalf("a new base: %s; deploys %d", kinds(*events), deploys())
	}
	pods.rolledOut(h, "shop-front", "v8")

	// A values change (skiff.yaml's env): a rollout.
	np := *c.Project
	np.Workloads = append(np.Workloads[:0:0], c.Project.Workloads...)
	np.Workloads[0].Env = map[string]string{"GREETING": "Hi"}
	c.SetProject(&np)
	c.Cycle(ctx, "front")
	if last().Kind != event.Ready || deploys() != 5 {
		t.Fatalf("a values change: %s; deploys %d", kinds(*events), deploys())
	}
	pods.rolledOut(h, "shop-front", "v8")

	// Pods that run synced files, then an edit back to the release's own
	// image that cannot be synced: the rollout must replace the pods,
	// though the image and values are the release's.
	b.version["front"] = "v8b"
	c.Cycle(ctx, "front")
	b.version["front"] = "v8"
	pods.err = ErrStale
	c.Cycle(ctx, "front")
	rel, _ = h.Get(context.Background(), "shop-front", "shop")
	ann, _ := rel.Config["podAnnotations"].(map[string]any)
	if last().Kind != event.Ready || deploys() != 6 || ann[GenerationAnnotation] != "1" {
		t.Fatalf("back to the release's image after a sync: %s; deploys %d; annotations %v", kinds(*events), deploys(), ann)
	}
	pods.rolledOut(h, "shop-front", "v8")
	c.Cycle(ctx, "front") // the same again: the generation stays
	if last().Kind != event.Unchanged {
		t.Fatalf("after the replacing rollout: %s", kinds(*events))
	}

	// --keep after a sync says the pods run files the release lacks.
	b.version["front"] = "v9"
	c.Cycle(ctx, "front")
	if deploys() != 6 {
		t.Fatalf("v9 rolled out: %s", h.callList())
	}
	c.before = map[string]*release.Release{"front": nil}
	c.Restore(ctx, true, 0)
	if ev := last(); ev.Kind != event.Left || !strings.Contains(ev.Error, "skiff deploy front") {
		t.Errorf("--keep after a sync: %+v", ev)
	}
}

// A workload whose pods come and go on their own (scale, autoscale) is
// never synced: a new pod would run the code of an edit ago.
func TestClusterCycleRollsOutAScaledWorkload(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(w *project.Workload)
	}{
		{"scale", func(w *project.Workload) { w.Scale = &project.Scale{} }},
		{"autoscale", func(w *project.Workload) { w.Autoscale = &project.Autoscale{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &fakeHelm{revs: map[string][]*release.Release{}}
			b := &appBuilder{version: map[string]string{"front": "v1"}}
			c, events := newTestCluster(t, h, &versionBuilder{})
			c.Builds.Builder = b
			pods := &fakePods{version: map[string]string{}, files: map[string]string{}}
			c.SyncImage, c.Syncer = "r.example.com/skiff-relay@sha256:1", pods
			np := *c.Project
			np.Workloads = append(np.Workloads[:0:0], c.Project.Workloads...)
			tc.set(&np.Workloads[0])
			c.SetProject(&np)
			ctx := context.Background()
			c.Cycle(ctx, "front")
			pods.rolledOut(h, "shop-front", "v1")
			b.version["front"] = "v2"
			c.Cycle(ctx, "front")
			if last := (*events)[len(*events)-1]; last.Kind != event.Ready || last.Revision != 2 || pods.syncs != 0 {
				t.Fatalf("an edit of a scaled workload: %s; %d syncs", kinds(*events), pods.syncs)
			}
			if rel, _ := h.Get(context.Background(), "shop-front", "shop"); rel.Config["dev"] != nil {
				t.Errorf("dev.sync in a scaled workload's values: %v", rel.Config["dev"])
			}
		})
	}
}
