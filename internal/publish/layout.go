package publish

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/skiffdev/skiff/internal/build"
)

// RefNameAnnotation names a manifest in an OCI layout's index.json.
const RefNameAnnotation = "org.opencontainers.image.ref.name"

// Layout publishes into an OCI image layout folder. Each artifact is
// recorded in index.json under the ref name "NAME:TAG" (replacing an older
// one of that name) and its SBOM under "NAME:sha256-<hex>.sbom".
type Layout struct {
	Dir string
	// Repaired is told when the layout's index.json was damaged and has
	// been rebuilt from its blobs (nil: not told).
	Repaired func(dir string, recovered int)
}

func writeFix(err error) error {
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
		return fmt.Errorf("%w; choose a writable folder", err)
	}
	return err
}

// Publish writes a into the layout. Concurrent publishers, in this process
// or others, take turns on the layout's lock.
func (p *Layout) Publish(ctx context.Context, a *build.Artifact, imageName, tag string) (*Result, error) {
	s, unlock, err := openStore(ctx, p.Dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	s.repaired = p.Repaired
	d, err := a.Digest()
	if err != nil {
		return nil, err
	}
	refName := imageName + ":" + tag
	// skopeo and the containers tools read "oci:DIR:REFNAME"; the digest
	// is its own field.
	res := &Result{Reference: "oci:" + p.Dir + ":" + refName, Digest: d.String()}
	sbomRef := imageName + ":" + SBOMTag(d)
	im, err := s.index(true)
	if err != nil {
		return nil, err
	}
	old, had := refDigest(im, refName)
	if had && old == d {
		if _, ok := refDigest(im, sbomRef); a.SBOM == nil || ok {
			if a.SBOM != nil {
				res.SBOM = "oci:" + p.Dir + ":" + sbomRef
			}
			return res, nil
		}
	}
	res.Uploaded = true
	// The SBOM of the image this one replaces goes with it.
	oldSBOM := ""
	if had && old != d {
		oldSBOM = imageName + ":" + SBOMTag(old)
	}
	if err := s.put(a.Image, a.Index, map[string]string{RefNameAnnotation: refName}, func(m v1.Descriptor) bool {
		n := m.Annotations[RefNameAnnotation]
		return n == refName || (oldSBOM != "" && n == oldSBOM)
	}); err != nil {
		return nil, fmt.Errorf("writing %s into %s: %w", refName, p.Dir, writeFix(err))
	}
	if a.SBOM != nil {
		img, err := SBOMImage(a.SBOM)
		if err != nil {
			return nil, err
		}
		if err := s.put(img, nil, map[string]string{RefNameAnnotation: sbomRef}, func(m v1.Descriptor) bool {
			return m.Annotations[RefNameAnnotation] == sbomRef
		}); err != nil {
			return nil, fmt.Errorf("writing the SBOM of %s into %s: %w", refName, p.Dir, writeFix(err))
		}
		res.SBOM = "oci:" + p.Dir + ":" + sbomRef
	}
	return res, nil
}

// refDigest returns the digest recorded under refName in the index.
func refDigest(im *v1.IndexManifest, refName string) (v1.Hash, bool) {
	for _, m := range im.Manifests {
		if m.Annotations[RefNameAnnotation] == refName {
			return m.Digest, true
		}
	}
	return v1.Hash{}, false
}

// Close does nothing.
func (p *Layout) Close() error { return nil }

// DefaultStoreDir is the local OCI layout used when no destination is
// given, under cacheDir (os.UserCacheDir()/skiff or SKIFF_CACHE_DIR).
func DefaultStoreDir(cacheDir string) string { return filepath.Join(cacheDir, "oci") }
