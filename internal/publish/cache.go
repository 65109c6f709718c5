package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/skiffdev/skiff/internal/build"
	"github.com/skiffdev/skiff/internal/fsutil"
)

// Annotations of the manifests the cache keeps in the layout: the build
// key, the image name of the workload ("project/workload") and when it was
// stored (RFC 3339), which `skiff cache prune` keeps the newest of.
const (
	cacheAnnotation         = "dev.skiff.cache.key"
	cacheWorkloadAnnotation = "dev.skiff.cache.workload"
	cacheStoredAnnotation   = "dev.skiff.cache.stored"
)

// storedFormat stamps cache entries: fixed width, so that the text order
// is the time order.
const storedFormat = "2006-01-02T15:04:05.000000000Z"

// Cache keeps built artifacts in an OCI layout (the local store) and
// remembers which build key produced which digest, so an unchanged
// workload is not built again. It implements build.Cache. Several skiff
// processes may share one cache folder.
type Cache struct {
	// Dir is the cache folder: the layout is Dir/oci, the keys Dir/keys.
	Dir string
	// Repaired is told when the store's index.json was damaged and has
	// been rebuilt from its blobs (nil: not told).
	Repaired func(dir string, recovered int)
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

type cacheEntry struct {
	Digest    string         `json:"digest"`
	Index     bool           `json:"index"`
	Platforms []string       `json:"platforms"`
	Base      build.BaseInfo `json:"base"`
	SBOM      string         `json:"sbom,omitempty"`
}

func (c *Cache) keyFile(key string) string { return filepath.Join(c.Dir, "keys", key+".json") }

// keys reads every key file: the entry of each build key.
func (c *Cache) keys() (map[string]cacheEntry, error) {
	dir := filepath.Join(c.Dir, "keys")
	files, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]cacheEntry{}
	for _, f := range files {
		key, ok := strings.CutSuffix(f.Name(), ".json")
		if !ok {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, f.Name()))
		var e cacheEntry
		if err == nil && json.Unmarshal(data, &e) == nil {
			out[key] = e
		}
	}
	return out, nil
}

// store opens the cache's layout handle (unlocked) with its hooks.
func (c *Cache) store(dir string) *store {
	return &store{dir: dir, lp: layout.Path(dir), repaired: c.Repaired, hints: func() map[v1.Hash]map[string]string {
		keys, _ := c.keys()
		out := map[v1.Hash]map[string]string{}
		for key, e := range keys {
			if h, err := v1.NewHash(e.Digest); err == nil {
				out[h] = map[string]string{cacheAnnotation: key}
			}
		}
		return out
	}}
}

// Get returns the artifact built with key, or nil. A key whose image is no
// longer in the store (pruned) is a miss; a damaged store is repaired or
// reported, never taken for a miss.
func (c *Cache) Get(ctx context.Context, key string) (*build.Artifact, error) {
	data, err := os.ReadFile(c.keyFile(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the build cache: %w; remove %s to reset it", err, c.Dir)
	}
	var e cacheEntry
	if json.Unmarshal(data, &e) != nil {
		return nil, nil // key files are written whole: this one is not skiff's
	}
	h, err := v1.NewHash(e.Digest)
	if err != nil {
		return nil, nil
	}
	dir := DefaultStoreDir(c.Dir)
	if found, err := c.touch(ctx, dir, key, h); err != nil || !found {
		return nil, err
	}
	lp := layout.Path(dir)
	a := &build.Artifact{Platforms: e.Platforms, Base: e.Base}
	if e.Index {
		root, err := lp.ImageIndex()
		if err != nil {
			return nil, err
		}
		if a.Index, err = root.ImageIndex(h); err != nil {
			return nil, nil // its blobs are gone: build it again
		}
	} else if a.Image, err = lp.Image(h); err != nil {
		return nil, nil
	}
	if e.SBOM != "" {
		sh, err := v1.NewHash(e.SBOM)
		if err != nil {
			return nil, nil
		}
		rc, err := lp.Blob(sh)
		if err != nil {
			return nil, nil // pruned: build again
		}
		a.SBOM, err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
	}
	return a, nil
}

// touch finds the store's entry of a build key and marks it used now, so
// that a prune running after this keeps it for the build that uses it.
func (c *Cache) touch(ctx context.Context, dir, key string, h v1.Hash) (bool, error) {
	if _, err := os.Stat(filepath.Join(dir, "index.json")); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	s, unlock, err := c.openStore(ctx, dir)
	if err != nil {
		return false, err
	}
	defer unlock()
	im, err := s.index(true)
	if err != nil {
		return false, err
	}
	i := slices.IndexFunc(im.Manifests, func(d v1.Descriptor) bool { return d.Digest == h && d.Annotations[cacheAnnotation] == key })
	if i < 0 {
		// A rebuilt index may hold the image without its key.
		return slices.ContainsFunc(im.Manifests, func(d v1.Descriptor) bool { return d.Digest == h }), nil
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	ann := maps.Clone(im.Manifests[i].Annotations)
	ann[cacheStoredAnnotation] = now().UTC().Format(storedFormat)
	im.Manifests[i].Annotations = ann
	return true, s.writeIndex(im)
}

// readIndex reads the store's index under a shared lock, repairing it
// under an exclusive one when it is damaged.
func (c *Cache) readIndex(ctx context.Context, dir string) (*v1.IndexManifest, error) {
	if _, err := os.Stat(filepath.Join(dir, "index.json")); errors.Is(err, fs.ErrNotExist) {
		return &v1.IndexManifest{}, nil
	}
	unlock, err := lock(ctx, dir, false)
	if err != nil {
		return nil, err
	}
	im, err := c.store(dir).index(false)
	unlock()
	var damaged *StoreDamagedError
	if !errors.As(err, &damaged) {
		return im, err
	}
	s, unlock, err := c.openStore(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return s.index(true)
}

// openStore is openStore with the cache's hooks.
func (c *Cache) openStore(ctx context.Context, dir string) (*store, func(), error) {
	s, unlock, err := openStore(ctx, dir)
	if err != nil {
		return nil, nil, err
	}
	cs := c.store(dir)
	s.repaired, s.hints = cs.repaired, cs.hints
	return s, unlock, nil
}

// Put stores a under key.
func (c *Cache) Put(ctx context.Context, key string, a *build.Artifact) error {
	fail := func(err error) error {
		return fmt.Errorf("writing the build cache in %s: %w; set SKIFF_CACHE_DIR to a writable folder", c.Dir, err)
	}
	s, unlock, err := c.openStore(ctx, DefaultStoreDir(c.Dir))
	if err != nil {
		return fail(err)
	}
	defer unlock()
	d, err := a.Digest()
	if err != nil {
		return err
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	ann := map[string]string{cacheAnnotation: key, cacheStoredAnnotation: now().UTC().Format(storedFormat)}
	if a.Name != "" {
		ann[cacheWorkloadAnnotation] = a.Name
	}
	if err := s.put(a.Image, a.Index, ann, func(m v1.Descriptor) bool { return m.Annotations[cacheAnnotation] == key }); err != nil {
		return fail(err)
	}
	e := cacheEntry{Digest: d.String(), Index: a.Index != nil, Platforms: a.Platforms, Base: a.Base}
	if a.SBOM != nil {
		sh, _, err := v1.SHA256(bytes.NewReader(a.SBOM))
		if err != nil {
			return err
		}
		if err := s.writeBlob(sh, io.NopCloser(bytes.NewReader(a.SBOM))); err != nil {
			return fail(err)
		}
		e.SBOM = sh.String()
	}
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.keyFile(key)), 0o755); err != nil {
		return fail(err)
	}
	if err := fsutil.WriteFileAtomic(c.keyFile(key), data, 0o644); err != nil {
		return fail(err)
	}
	return nil
}
