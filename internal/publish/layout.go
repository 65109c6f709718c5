package publish

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"

	"github.com/skiffdev/skiff/internal/build"
)

// RefNameAnnotation names a manifest in an OCI layout's index.json.
const RefNameAnnotation = "org.opencontainers.image.ref.name"

// Layout publishes into an OCI image layout folder. Each artifact is
// recorded in index.json under the ref name "NAME:TAG" (replacing an older
// one of that name) and its SBOM under "NAME:sha256-<hex>.sbom".
type Layout struct {
	Dir string
}

// openLayout opens the layout at dir, creating it when missing.
func openLayout(dir string) (layout.Path, error) {
	if p, err := layout.FromPath(dir); err == nil {
		return p, nil
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return "", fmt.Errorf("%s is not empty and not an OCI image layout (no index.json); choose an empty or new folder", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating the OCI layout %s: %w", dir, writeFix(err))
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return "", fmt.Errorf("creating the OCI layout %s: %w", dir, writeFix(err))
	}
	return p, nil
}

func writeFix(err error) error {
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
		return fmt.Errorf("%w; choose a writable folder", err)
	}
	return err
}

// Publish writes a into the layout.
func (p *Layout) Publish(_ context.Context, a *build.Artifact, imageName, tag string) (*Result, error) {
	lp, err := openLayout(p.Dir)
	if err != nil {
		return nil, err
	}
	d, err := a.Digest()
	if err != nil {
		return nil, err
	}
	refName := imageName + ":" + tag
	// skopeo and the containers tools read "oci:DIR:REFNAME"; the digest
	// is its own field.
	res := &Result{Reference: "oci:" + p.Dir + ":" + refName, Digest: d.String()}
	sbomRef := imageName + ":" + SBOMTag(d)
	old, had := refDigest(lp, refName)
	if had && old == d {
		if _, ok := refDigest(lp, sbomRef); a.SBOM == nil || ok {
			if a.SBOM != nil {
				res.SBOM = "oci:" + p.Dir + ":" + sbomRef
			}
			return res, nil
		}
	}
	res.Uploaded = true
	// The SBOM of the image this one replaces goes with it.
	if had && old != d {
		if err := lp.RemoveDescriptors(match.Annotation(RefNameAnnotation, imageName+":"+SBOMTag(old))); err != nil {
			return nil, fmt.Errorf("updating %s: %w", p.Dir, writeFix(err))
		}
	}
	if err := replace(lp, a.Image, a.Index, refName); err != nil {
		return nil, fmt.Errorf("writing %s into %s: %w", refName, p.Dir, writeFix(err))
	}
	if a.SBOM != nil {
		img, err := sbomImage(a.SBOM)
		if err != nil {
			return nil, err
		}
		if err := replace(lp, img, nil, sbomRef); err != nil {
			return nil, fmt.Errorf("writing the SBOM of %s into %s: %w", refName, p.Dir, writeFix(err))
		}
		res.SBOM = "oci:" + p.Dir + ":" + sbomRef
	}
	return res, nil
}

// refDigest returns the digest recorded under refName in the layout.
func refDigest(lp layout.Path, refName string) (v1.Hash, bool) {
	idx, err := lp.ImageIndex()
	if err != nil {
		return v1.Hash{}, false
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return v1.Hash{}, false
	}
	for _, m := range im.Manifests {
		if m.Annotations[RefNameAnnotation] == refName {
			return m.Digest, true
		}
	}
	return v1.Hash{}, false
}

// replace records img or idx in the layout under refName, dropping what
// had that name before.
func replace(lp layout.Path, img v1.Image, idx v1.ImageIndex, refName string) error {
	m := match.Annotation(RefNameAnnotation, refName)
	opt := layout.WithAnnotations(map[string]string{RefNameAnnotation: refName})
	if idx != nil {
		return lp.ReplaceIndex(idx, m, opt)
	}
	return lp.ReplaceImage(img, m, opt)
}

// Close does nothing.
func (p *Layout) Close() error { return nil }

// DefaultStoreDir is the local OCI layout used when no destination is
// given, under cacheDir (os.UserCacheDir()/skiff or SKIFF_CACHE_DIR).
func DefaultStoreDir(cacheDir string) string { return filepath.Join(cacheDir, "oci") }
