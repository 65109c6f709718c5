package publish

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// DefaultKeep is how many cached images of each workload prune keeps.
const DefaultKeep = 3

// StoreInfo describes the local store and build cache.
type StoreInfo struct {
	Dir string `json:"dir"`
	// Size is the bytes of every blob.
	Size int64 `json:"size"`
	// Images are the named images (NAME:TAG), SBOMs excluded.
	Images []string `json:"images"`
	// Cached is the number of build results the cache remembers.
	Cached int `json:"cached"`
	// Blobs is the number of blobs (layers, configs, manifests, SBOMs).
	Blobs int `json:"blobs"`
}

// Info reads what the store holds.
func (c *Cache) Info(ctx context.Context) (*StoreInfo, error) {
	dir := DefaultStoreDir(c.Dir)
	info := &StoreInfo{Dir: dir, Images: []string{}}
	im, err := c.readIndex(ctx, dir)
	if err != nil {
		return nil, err
	}
	for _, m := range im.Manifests {
		if n := m.Annotations[RefNameAnnotation]; n != "" && !strings.HasSuffix(n, ".sbom") {
			info.Images = append(info.Images, n)
		}
		if m.Annotations[cacheAnnotation] != "" {
			info.Cached++
		}
	}
	sort.Strings(info.Images)
	s := &store{dir: dir}
	hashes, err := s.blobs()
	if err != nil {
		return nil, err
	}
	for _, h := range hashes {
		if fi, err := os.Stat(filepath.Join(dir, "blobs", h.Algorithm, h.Hex)); err == nil {
			info.Blobs++
			info.Size += fi.Size()
		}
	}
	return info, nil
}

// PruneOptions say what prune keeps besides every named image.
type PruneOptions struct {
	// Keep is how many of the newest cached images of each workload stay
	// (0: none; the CLI's default is DefaultKeep).
	Keep int
	// Protect lists digests that stay whatever their age (e.g. the images
	// deployed releases run).
	Protect []v1.Hash
}

// PruneResult says what prune removed.
type PruneResult struct {
	RemovedImages int   `json:"removedImages"`
	RemovedBlobs  int   `json:"removedBlobs"`
	Freed         int64 `json:"freed"`
	KeptImages    int   `json:"keptImages"`
}

// Prune forgets all but the newest Keep cached images of each workload
// (those used by a build count as new) and
// removes every blob no kept image (or its SBOM) needs. Named images
// (NAME:TAG) are always kept. It holds the store's lock throughout, so it
// may run beside builds.
func (c *Cache) Prune(ctx context.Context, opts PruneOptions) (*PruneResult, error) {
	keep := max(opts.Keep, 0)
	dir := DefaultStoreDir(c.Dir)
	res := &PruneResult{}
	if _, err := os.Stat(filepath.Join(dir, "index.json")); errors.Is(err, fs.ErrNotExist) {
		return res, nil
	}
	s, unlock, err := c.openStore(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	im, err := s.index(true)
	if err != nil {
		return nil, err
	}
	protected := map[v1.Hash]bool{}
	for _, h := range opts.Protect {
		protected[h] = true
	}

	// Cached entries by workload, newest first (index order breaks ties:
	// later entries were stored later).
	type entry struct {
		pos  int
		desc v1.Descriptor
	}
	groups := map[string][]entry{}
	keepPos := map[int]bool{}
	var sboms []entry
	for i, m := range im.Manifests {
		name := m.Annotations[RefNameAnnotation]
		switch {
		case name != "" && strings.HasSuffix(name, ".sbom"):
			sboms = append(sboms, entry{i, m})
		case name != "" || protected[m.Digest] || m.Annotations[cacheWorkloadAnnotation] == "":
			// Named, protected, or of no known workload (a rebuilt index,
			// an older skiff): kept; prune cannot tell what it belongs to.
			keepPos[i] = true
		default:
			w := m.Annotations[cacheWorkloadAnnotation]
			groups[w] = append(groups[w], entry{i, m})
		}
	}
	for _, g := range groups {
		sort.SliceStable(g, func(a, b int) bool {
			sa, sb := g[a].desc.Annotations[cacheStoredAnnotation], g[b].desc.Annotations[cacheStoredAnnotation]
			if sa != sb {
				return sa > sb
			}
			return g[a].pos > g[b].pos
		})
		for i, e := range g {
			if i < keep {
				keepPos[e.pos] = true
			}
		}
	}
	keptDigest := map[v1.Hash]bool{}
	for i := range keepPos {
		keptDigest[im.Manifests[i].Digest] = true
	}
	// An SBOM stays with its image: its tag is "sha256-<hex>.sbom".
	for _, e := range sboms {
		name := e.desc.Annotations[RefNameAnnotation]
		tag := name[strings.LastIndexByte(name, ':')+1:]
		if h, err := v1.NewHash(strings.Replace(strings.TrimSuffix(tag, ".sbom"), "-", ":", 1)); err == nil && keptDigest[h] {
			keepPos[e.pos] = true
		}
	}

	var kept []v1.Descriptor
	for i, m := range im.Manifests {
		if keepPos[i] {
			kept = append(kept, m)
		} else if m.Annotations[RefNameAnnotation] == "" {
			res.RemovedImages++
		}
	}
	res.KeptImages = len(kept)
	needed := s.reachable(kept)

	// Key files of forgotten images go; those kept keep their SBOM blob.
	keys, err := c.keys()
	if err != nil {
		return nil, err
	}
	var staleKeys []string
	for key, e := range keys {
		h, err := v1.NewHash(e.Digest)
		if err != nil || !keptDigest[h] {
			staleKeys = append(staleKeys, c.keyFile(key))
			continue
		}
		if sh, err := v1.NewHash(e.SBOM); err == nil {
			needed[sh] = true
		}
	}

	// The index first: a crash after it leaves unused blobs, never an
	// image whose blobs are gone.
	im.Manifests = kept
	if err := s.writeIndex(im); err != nil {
		return nil, err
	}
	for _, p := range staleKeys {
		_ = os.Remove(p)
	}
	hashes, err := s.blobs()
	if err != nil {
		return nil, err
	}
	for _, h := range hashes {
		if needed[h] {
			continue
		}
		p := filepath.Join(dir, "blobs", h.Algorithm, h.Hex)
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		if err := os.Remove(p); err != nil {
			return nil, writeFix(err)
		}
		res.RemovedBlobs++
		res.Freed += fi.Size()
	}
	return res, nil
}
