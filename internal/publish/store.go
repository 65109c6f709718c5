package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/gofrs/flock"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/skiffdev/skiff/internal/fsutil"
)

// lockName is the lock file inside an OCI layout that skiff writes. Every
// change to the layout (blobs and index.json) happens while holding it
// exclusively; readers of index.json hold it shared.
const lockName = ".skiff.lock"

// lockRetry is how often a busy lock is tried again.
const lockRetry = 20 * time.Millisecond

// store is an OCI image layout that several skiff processes (and several
// goroutines of one) may update at once. index.json is only ever replaced
// whole (write to a temporary file, rename), so a reader sees the old or
// the new index and never half of one.
type store struct {
	dir string
	lp  layout.Path
	// Repaired is called when index.json was damaged and has been rebuilt
	// from the blobs (nil: not told).
	repaired func(dir string, recovered int)
	// hints are annotations known elsewhere for manifests of the store,
	// restored when the index is rebuilt (nil: none).
	hints func() map[v1.Hash]map[string]string
}

// StoreDamagedError says an OCI layout's index.json cannot be read and
// could not be rebuilt.
type StoreDamagedError struct {
	Dir string
	Err error
}

func (e *StoreDamagedError) Error() string {
	return fmt.Sprintf("the OCI layout %s is damaged (%v) and could not be rebuilt from its blobs; move it away or remove it (`rm -rf %s`), and build again",
		e.Dir, e.Err, e.Dir)
}

func (e *StoreDamagedError) Unwrap() error { return e.Err }

// lock takes the layout's lock at dir (creating dir), exclusive or shared,
// and returns the function that releases it.
func lock(ctx context.Context, dir string, exclusive bool) (func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the OCI layout %s: %w", dir, writeFix(err))
	}
	fl := flock.New(filepath.Join(dir, lockName))
	try := fl.TryRLockContext
	if exclusive {
		try = fl.TryLockContext
	}
	ok, err := try(ctx, lockRetry)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("locking the OCI layout %s: %w", dir, writeFix(err))
	}
	if !ok {
		return nil, fmt.Errorf("locking the OCI layout %s: not acquired", dir)
	}
	return func() { _ = fl.Unlock() }, nil
}

// openStore locks the layout at dir exclusively, creating the layout when
// dir is new or empty, and returns it with its unlock function.
func openStore(ctx context.Context, dir string) (*store, func(), error) {
	if entries, err := os.ReadDir(dir); err == nil {
		if !slices.ContainsFunc(entries, func(e fs.DirEntry) bool { return e.Name() == "index.json" || e.Name() == "oci-layout" }) &&
			slices.ContainsFunc(entries, func(e fs.DirEntry) bool { return e.Name() != lockName }) {
			return nil, nil, fmt.Errorf("%s is not empty and not an OCI image layout (no index.json); choose an empty or new folder", dir)
		}
	}
	unlock, err := lock(ctx, dir, true)
	if err != nil {
		return nil, nil, err
	}
	s := &store{dir: dir, lp: layout.Path(dir)}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); errors.Is(err, fs.ErrNotExist) {
		if _, err := layout.Write(dir, empty.Index); err != nil {
			unlock()
			return nil, nil, fmt.Errorf("creating the OCI layout %s: %w", dir, writeFix(err))
		}
	}
	return s, unlock, nil
}

// index reads index.json. A damaged one is rebuilt from the blobs when the
// store is locked exclusively (write), else reported as damaged.
func (s *store) index(write bool) (*v1.IndexManifest, error) {
	data, err := os.ReadFile(filepath.Join(s.dir, "index.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", s.dir, err)
	}
	var im v1.IndexManifest
	perr := json.Unmarshal(data, &im)
	if perr == nil && im.SchemaVersion == 2 {
		return &im, nil
	}
	if perr == nil {
		perr = fmt.Errorf("index.json has schemaVersion %d", im.SchemaVersion)
	}
	if !write {
		return nil, &StoreDamagedError{Dir: s.dir, Err: fmt.Errorf("index.json: %w", perr)}
	}
	rebuilt, err := s.rebuild()
	if err != nil {
		return nil, &StoreDamagedError{Dir: s.dir, Err: errors.Join(fmt.Errorf("index.json: %w", perr), err)}
	}
	// Keep the damaged file for a post-mortem, then replace it.
	_ = fsutil.WriteFileAtomic(filepath.Join(s.dir, "index.json.damaged"), data, 0o644)
	if err := s.writeIndex(rebuilt); err != nil {
		return nil, err
	}
	if s.repaired != nil {
		s.repaired(s.dir, len(rebuilt.Manifests))
	}
	return rebuilt, nil
}

// writeIndex replaces index.json atomically.
func (s *store) writeIndex(im *v1.IndexManifest) error {
	if im.Manifests == nil {
		im.Manifests = []v1.Descriptor{}
	}
	data, err := json.MarshalIndent(im, "", "   ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(s.dir, "index.json"), data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", s.dir, writeFix(err))
	}
	return nil
}

// manifestHead is enough of a manifest or index to walk a layout.
type manifestHead struct {
	MediaType types.MediaType `json:"mediaType"`
	Config    v1.Descriptor   `json:"config"`
	Layers    []v1.Descriptor `json:"layers"`
	Manifests []v1.Descriptor `json:"manifests"`
}

func isManifest(mt types.MediaType) bool {
	return mt == types.OCIManifestSchema1 || mt == types.DockerManifestSchema2
}

func isIndex(mt types.MediaType) bool {
	return mt == types.OCIImageIndex || mt == types.DockerManifestList
}

// maxManifestBlob bounds the blobs read as manifests while walking.
const maxManifestBlob = 4 << 20

// readHead reads a blob as a manifest or index; ok is false for anything
// else (layers, configs, SBOMs).
func (s *store) readHead(h v1.Hash) (head manifestHead, size int64, ok bool) {
	p := filepath.Join(s.dir, "blobs", h.Algorithm, h.Hex)
	fi, err := os.Stat(p)
	if err != nil || fi.Size() > maxManifestBlob {
		return head, 0, false
	}
	data, err := os.ReadFile(p)
	if err != nil || json.Unmarshal(data, &head) != nil {
		return head, 0, false
	}
	return head, fi.Size(), isManifest(head.MediaType) || isIndex(head.MediaType)
}

// blobs lists the digests of every blob in the layout.
func (s *store) blobs() ([]v1.Hash, error) {
	dir := filepath.Join(s.dir, "blobs", "sha256")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []v1.Hash
	for _, e := range entries {
		if h, err := v1.NewHash("sha256:" + e.Name()); err == nil && !e.IsDir() {
			out = append(out, h)
		}
	}
	return out, nil
}

// rebuild makes an index of every manifest and index in the blobs that no
// other index includes. Their ref names are lost: a build records them
// again.
func (s *store) rebuild() (*v1.IndexManifest, error) {
	hashes, err := s.blobs()
	if err != nil {
		return nil, err
	}
	var tops []v1.Descriptor
	child := map[v1.Hash]bool{}
	for _, h := range hashes {
		head, size, ok := s.readHead(h)
		if !ok {
			continue
		}
		tops = append(tops, v1.Descriptor{MediaType: head.MediaType, Digest: h, Size: size})
		for _, m := range head.Manifests {
			child[m.Digest] = true
		}
	}
	var hints map[v1.Hash]map[string]string
	if s.hints != nil {
		hints = s.hints()
	}
	im := &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}}
	for _, d := range tops {
		if !child[d.Digest] {
			d.Annotations = hints[d.Digest]
			im.Manifests = append(im.Manifests, d)
		}
	}
	return im, nil
}

// reachable returns every blob the descriptors need, transitively.
func (s *store) reachable(descs []v1.Descriptor) map[v1.Hash]bool {
	keep := map[v1.Hash]bool{}
	var walk func(h v1.Hash)
	walk = func(h v1.Hash) {
		if keep[h] {
			return
		}
		keep[h] = true
		head, _, ok := s.readHead(h)
		if !ok {
			return
		}
		if head.Config.Digest.Hex != "" {
			keep[head.Config.Digest] = true
		}
		for _, l := range head.Layers {
			keep[l.Digest] = true
		}
		for _, m := range head.Manifests {
			walk(m.Digest)
		}
	}
	for _, d := range descs {
		walk(d.Digest)
	}
	return keep
}

// put writes an image or index and records it in index.json under the
// annotations, replacing every entry for which drop is true.
func (s *store) put(img v1.Image, idx v1.ImageIndex, annotations map[string]string, drop func(v1.Descriptor) bool) error {
	var what describable = img
	write := func() error { return s.lp.WriteImage(img) }
	if idx != nil {
		what, write = idx, func() error { return s.lp.WriteIndex(idx) }
	}
	if err := write(); err != nil {
		return err
	}
	desc, err := descriptorOf(what)
	if err != nil {
		return err
	}
	desc.Annotations = annotations
	im, err := s.index(true)
	if err != nil {
		return err
	}
	kept := im.Manifests[:0]
	for _, m := range im.Manifests {
		if !drop(m) {
			kept = append(kept, m)
		}
	}
	im.Manifests = append(kept, desc)
	return s.writeIndex(im)
}

// writeBlob stores data as a blob.
func (s *store) writeBlob(h v1.Hash, r io.ReadCloser) error {
	return s.lp.WriteBlob(h, r)
}

type describable interface {
	Digest() (v1.Hash, error)
	MediaType() (types.MediaType, error)
	Size() (int64, error)
}

func descriptorOf(d describable) (v1.Descriptor, error) {
	h, err := d.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := d.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	size, err := d.Size()
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Digest: h, Size: size}, nil
}
