package publish

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/skiffdev/skiff/internal/build"
	"github.com/skiffdev/skiff/internal/publish/publishtest"
)

// readStoreIndex parses index.json strictly: one JSON document.
func readStoreIndex(t *testing.T, dir string) *v1.IndexManifest {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	must(t, err)
	dec := json.NewDecoder(strings.NewReader(string(data)))
	var im v1.IndexManifest
	must(t, dec.Decode(&im))
	if dec.More() {
		t.Fatalf("index.json holds more than one JSON document:\n%s", data)
	}
	return &im
}

// checkStore validates every image the store's index names.
func checkStore(t *testing.T, dir string) *v1.IndexManifest {
	t.Helper()
	im := readStoreIndex(t, dir)
	lp := layout.Path(dir)
	for _, m := range im.Manifests {
		if isIndex(m.MediaType) {
			root, err := lp.ImageIndex()
			must(t, err)
			idx, err := root.ImageIndex(m.Digest)
			must(t, err)
			if err := validate.Index(idx); err != nil {
				t.Errorf("index %s (%v): %v", m.Digest, m.Annotations, err)
			}
			continue
		}
		img, err := lp.Image(m.Digest)
		must(t, err)
		if strings.HasSuffix(m.Annotations[RefNameAnnotation], ".sbom") {
			// ggcr's validate does not take the SPDX layer of an SBOM
			// image: check its blobs are there.
			mf, err := img.Manifest()
			must(t, err)
			for _, l := range mf.Layers {
				if _, err := os.Stat(filepath.Join(dir, "blobs", l.Digest.Algorithm, l.Digest.Hex)); err != nil {
					t.Errorf("SBOM %v: %v", m.Annotations, err)
				}
			}
			continue
		}
		if err := validate.Image(img); err != nil {
			t.Errorf("image %s (%v): %v", m.Digest, m.Annotations, err)
		}
	}
	return im
}

// TestConcurrentWritersKeepTheStoreValid is the scenario of four builds of
// four workloads at once on one cache folder, ten rounds: every write
// lands and the store stays one valid index.
func TestConcurrentWritersKeepTheStoreValid(t *testing.T) {
	cacheDir := t.TempDir()
	ctx := context.Background()
	const workers, rounds = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				// Each writer has its own values, as separate processes do.
				cache := &Cache{Dir: cacheDir}
				store := &Layout{Dir: DefaultStoreDir(cacheDir)}
				a := publishtest.Artifact(t)
				a.Name = fmt.Sprintf("p/w%d", w)
				key := fmt.Sprintf("key-%d-%d", w, r)
				if err := cache.Put(ctx, key, a); err != nil {
					errs <- err
					return
				}
				if _, err := store.Publish(ctx, a, a.Name, "latest"); err != nil {
					errs <- err
					return
				}
				got, err := cache.Get(ctx, key)
				if err != nil || got == nil {
					errs <- fmt.Errorf("Get(%s) = %v, %v right after Put", key, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	im := checkStore(t, DefaultStoreDir(cacheDir))
	named, cached := 0, 0
	for _, m := range im.Manifests {
		if n := m.Annotations[RefNameAnnotation]; n != "" && !strings.HasSuffix(n, ".sbom") {
			named++
		}
		if m.Annotations[cacheAnnotation] != "" {
			cached++
		}
	}
	if named != workers || cached != workers*rounds {
		t.Errorf("store has %d named images and %d cached ones; want %d and %d", named, cached, workers, workers*rounds)
	}
}

func TestDamagedIndexIsRebuiltFromTheBlobs(t *testing.T) {
	cacheDir := t.TempDir()
	ctx := context.Background()
	var repaired []int
	cache := &Cache{Dir: cacheDir, Repaired: func(_ string, n int) { repaired = append(repaired, n) }}
	a := publishtest.Artifact(t)
	must(t, cache.Put(ctx, "k1", a))
	b := publishtest.Artifact(t)
	must(t, cache.Put(ctx, "k2", b))
	dir := DefaultStoreDir(cacheDir)
	index := filepath.Join(dir, "index.json")
	data, err := os.ReadFile(index)
	must(t, err)
	// What two unsynchronised writers used to leave: two documents.
	must(t, os.WriteFile(index, append(data, data...), 0o644))

	got, err := cache.Get(ctx, "k1")
	if err != nil || got == nil {
		t.Fatalf("Get after damage = %v, %v; want the image, repaired", got, err)
	}
	if len(repaired) != 1 || repaired[0] != 2 {
		t.Errorf("Repaired calls = %v, want one with the 2 images", repaired)
	}
	wantDigest, _ := a.Digest()
	if d, _ := got.Digest(); d != wantDigest {
		t.Errorf("Get returned %s, want %s", d, wantDigest)
	}
	checkStore(t, dir)
	if _, err := os.Stat(index + ".damaged"); err != nil {
		t.Errorf("the damaged index was not kept aside: %v", err)
	}
	// And the store takes new images again.
	if _, err := (&Layout{Dir: dir}).Publish(ctx, publishtest.Artifact(t), "p/w", "latest"); err != nil {
		t.Fatal(err)
	}
	checkStore(t, dir)
}

func TestUnrepairableStoreNamesTheFix(t *testing.T) {
	cacheDir := t.TempDir()
	ctx := context.Background()
	cache := &Cache{Dir: cacheDir}
	must(t, cache.Put(ctx, "k1", publishtest.Artifact(t)))
	dir := DefaultStoreDir(cacheDir)
	must(t, os.WriteFile(filepath.Join(dir, "index.json"), []byte("{"), 0o644))
	// Blobs that cannot be listed: the index cannot be rebuilt.
	blobs := filepath.Join(dir, "blobs", "sha256")
	must(t, os.Rename(blobs, blobs+".moved"))
	must(t, os.WriteFile(blobs, []byte("not a folder"), 0o644))
	_, err := cache.Get(ctx, "k1")
	if err == nil || !strings.Contains(err.Error(), "is damaged") || !strings.Contains(err.Error(), "rm -rf "+dir) {
		t.Fatalf("Get = %v; want a damaged-store error naming the fix", err)
	}
}

// sharedBaseArtifact is an image of base's layers plus one of its own.
func sharedBaseArtifact(t *testing.T, base v1.Image) *build.Artifact {
	t.Helper()
	top, err := random.Layer(128, "application/vnd.oci.image.layer.v1.tar+gzip")
	must(t, err)
	img, err := mutate.AppendLayers(base, top)
	must(t, err)
	return &build.Artifact{Image: img, Platforms: []string{"linux/amd64"}, SBOM: []byte(fmt.Sprintf(`{"n":%q}`, t.Name()+time.Now().String()))}
}

func TestPruneKeepsTheNewestAndEveryBlobTheyNeed(t *testing.T) {
	cacheDir := t.TempDir()
	ctx := context.Background()
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cache := &Cache{Dir: cacheDir, Now: func() time.Time { clock = clock.Add(time.Minute); return clock }}
	dir := DefaultStoreDir(cacheDir)
	base, err := random.Image(512, 2)
	must(t, err)
	var orders []*build.Artifact
	for i := range 5 {
		a := sharedBaseArtifact(t, base)
		a.Name = "p/orders"
		must(t, cache.Put(ctx, fmt.Sprintf("orders-%d", i), a))
		orders = append(orders, a)
	}
	// The oldest orders image is still the named one (p/orders:latest).
	_, err = (&Layout{Dir: dir}).Publish(ctx, orders[0], "p/orders", "latest")
	must(t, err)
	pay := sharedBaseArtifact(t, base)
	pay.Name = "p/payments"
	must(t, cache.Put(ctx, "payments-0", pay))

	before, err := cache.Info(ctx)
	must(t, err)
	res, err := cache.Prune(ctx, PruneOptions{Keep: 2})
	must(t, err)
	after, err := cache.Info(ctx)
	must(t, err)
	if res.RemovedImages != 3 || res.RemovedBlobs == 0 || after.Size >= before.Size {
		t.Errorf("prune = %+v, size %d -> %d; want 3 images and their own blobs removed", res, before.Size, after.Size)
	}
	checkStore(t, dir)
	// Kept: orders 3 and 4 (newest), orders 0 (named), payments 0. Every
	// one of them is whole, from the cache and from the layout.
	for _, key := range []string{"orders-3", "orders-4", "payments-0"} {
		a, err := cache.Get(ctx, key)
		if err != nil || a == nil {
			t.Fatalf("Get(%s) after prune = %v, %v", key, a, err)
		}
		if err := validate.Image(a.Image); err != nil {
			t.Errorf("%s after prune: %v", key, err)
		}
		if a.SBOM == nil {
			t.Errorf("%s lost its SBOM", key)
		}
	}
	for _, key := range []string{"orders-1", "orders-2"} {
		if a, err := cache.Get(ctx, key); err != nil || a != nil {
			t.Errorf("Get(%s) after prune = %v, %v; want a miss", key, a, err)
		}
	}
	d0, _ := orders[0].Digest()
	img, err := layout.Path(dir).Image(d0)
	must(t, err)
	if err := validate.Image(img); err != nil {
		t.Errorf("the named image lost blobs: %v", err)
	}
	// Its SBOM stays listed with it.
	if _, ok := refDigest(readStoreIndex(t, dir), "p/orders:"+SBOMTag(d0)); !ok {
		t.Error("the named image's SBOM was pruned")
	}
	// A second prune has nothing left to do.
	res, err = cache.Prune(ctx, PruneOptions{Keep: 2})
	must(t, err)
	if res.RemovedImages != 0 || res.RemovedBlobs != 0 {
		t.Errorf("second prune = %+v, want nothing removed", res)
	}
}

func TestPruneKeepsProtectedDigests(t *testing.T) {
	cacheDir := t.TempDir()
	ctx := context.Background()
	cache := &Cache{Dir: cacheDir}
	old := publishtest.Artifact(t)
	old.Name = "p/w"
	must(t, cache.Put(ctx, "old", old))
	for i := range 3 {
		a := publishtest.Artifact(t)
		a.Name = "p/w"
		must(t, cache.Put(ctx, fmt.Sprint("new", i), a))
	}
	d, _ := old.Digest()
	_, err := cache.Prune(ctx, PruneOptions{Keep: 1, Protect: []v1.Hash{d}})
	must(t, err)
	if a, err := cache.Get(ctx, "old"); err != nil || a == nil {
		t.Fatalf("the protected image was pruned: %v, %v", a, err)
	}
	if a, _ := cache.Get(ctx, "new0"); a != nil {
		t.Error("an old unprotected image was kept")
	}
}

// A build that reused an old image (an older branch checked out) keeps it
// through a prune that runs after: the use counts as new.
func TestPruneKeepsWhatABuildJustUsed(t *testing.T) {
	cacheDir := t.TempDir()
	ctx := context.Background()
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cache := &Cache{Dir: cacheDir, Now: func() time.Time { clock = clock.Add(time.Minute); return clock }}
	for i := range 4 {
		a := publishtest.Artifact(t)
		a.Name = "p/w"
		must(t, cache.Put(ctx, fmt.Sprint("k", i), a))
	}
	if a, err := cache.Get(ctx, "k0"); err != nil || a == nil {
		t.Fatalf("Get(k0) = %v, %v", a, err)
	}
	_, err := cache.Prune(ctx, PruneOptions{Keep: 2})
	must(t, err)
	for key, kept := range map[string]bool{"k0": true, "k3": true, "k1": false, "k2": false} {
		a, err := cache.Get(ctx, key)
		must(t, err)
		if (a != nil) != kept {
			t.Errorf("after prune, %s cached = %v, want %v", key, a != nil, kept)
		}
	}
	checkStore(t, DefaultStoreDir(cacheDir))
}
