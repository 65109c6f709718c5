package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"

	"github.com/skiffdev/skiff/internal/build"
)

// cacheAnnotation marks the manifests the cache keeps in the layout.
const cacheAnnotation = "dev.skiff.cache.key"

// Cache keeps built artifacts in an OCI layout (the local store) and
// remembers which build key produced which digest, so an unchanged
// workload is not built again. It implements build.Cache.
type Cache struct {
	// Dir is the cache folder: the layout is Dir/oci, the keys Dir/keys.
	Dir string
}

type cacheEntry struct {
	Digest    string         `json:"digest"`
	Index     bool           `json:"index"`
	Platforms []string       `json:"platforms"`
	Base      build.BaseInfo `json:"base"`
	SBOM      string         `json:"sbom,omitempty"`
}

func (c *Cache) keyFile(key string) string { return filepath.Join(c.Dir, "keys", key+".json") }

// Get returns the artifact built with key, or nil.
func (c *Cache) Get(_ context.Context, key string) (*build.Artifact, error) {
	data, err := os.ReadFile(c.keyFile(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the build cache: %w; remove %s to reset it", err, c.Dir)
	}
	var e cacheEntry
	if json.Unmarshal(data, &e) != nil {
		return nil, nil // a damaged entry is a miss
	}
	lp, err := layout.FromPath(DefaultStoreDir(c.Dir))
	if err != nil {
		return nil, nil
	}
	h, err := v1.NewHash(e.Digest)
	if err != nil {
		return nil, nil
	}
	a := &build.Artifact{Platforms: e.Platforms, Base: e.Base}
	if e.Index {
		root, err := lp.ImageIndex()
		if err != nil {
			return nil, nil
		}
		idx, err := root.ImageIndex(h)
		if err != nil {
			return nil, nil
		}
		a.Index = idx
	} else {
		img, err := lp.Image(h)
		if err != nil {
			return nil, nil
		}
		a.Image = img
	}
	if e.SBOM != "" {
		sh, err := v1.NewHash(e.SBOM)
		if err != nil {
			return nil, nil
		}
		rc, err := lp.Blob(sh)
		if err != nil {
			return nil, nil
		}
		a.SBOM, err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, nil
		}
	}
	return a, nil
}

// Put stores a under key.
func (c *Cache) Put(_ context.Context, key string, a *build.Artifact) error {
	fail := func(err error) error {
		return fmt.Errorf("writing the build cache in %s: %w; set SKIFF_CACHE_DIR to a writable folder", c.Dir, err)
	}
	lp, err := openLayout(DefaultStoreDir(c.Dir))
	if err != nil {
		return fail(err)
	}
	d, err := a.Digest()
	if err != nil {
		return err
	}
	m := match.Annotation(cacheAnnotation, key)
	opt := layout.WithAnnotations(map[string]string{cacheAnnotation: key})
	if a.Index != nil {
		err = lp.ReplaceIndex(a.Index, m, opt)
	} else {
		err = lp.ReplaceImage(a.Image, m, opt)
	}
	if err != nil {
		return fail(err)
	}
	e := cacheEntry{Digest: d.String(), Index: a.Index != nil, Platforms: a.Platforms, Base: a.Base}
	if a.SBOM != nil {
		sh, _, err := v1.SHA256(bytes.NewReader(a.SBOM))
		if err != nil {
			return err
		}
		if err := lp.WriteBlob(sh, io.NopCloser(bytes.NewReader(a.SBOM))); err != nil {
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
	if err := os.WriteFile(c.keyFile(key), data, 0o644); err != nil {
		return fail(err)
	}
	return nil
}
