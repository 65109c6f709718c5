package publish

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/skiffdev/skiff/internal/build"
)

// Tarball publishes into a tarball in the format of `docker save`, which
// `docker load` and skopeo (docker-archive:FILE) read. Every artifact
// published goes into the one file, written by Close. A tarball holds
// single-platform images only. Each SBOM is written next to the file as
// FILE-NAME.spdx.json.
type Tarball struct {
	File string
	// Prefix is put before image names in the tags (the project's registry).
	Prefix string

	refs map[name.Reference]v1.Image
}

// Publish adds a to the tarball and writes its SBOM.
func (p *Tarball) Publish(_ context.Context, a *build.Artifact, imageName, tag string) (*Result, error) {
	if a.Index != nil {
		return nil, fmt.Errorf("a tarball holds one platform, and %s was built for %s; use --dest oci:DIR for several platforms, or one --platform",
			imageName, strings.Join(a.Platforms, ", "))
	}
	ref := ImageName(p.Prefix, imageName) + ":" + tag
	t, err := name.NewTag(ref)
	if err != nil {
		return nil, fmt.Errorf("%q is not a valid tag: %w", ref, err)
	}
	if p.refs == nil {
		p.refs = map[name.Reference]v1.Image{}
	}
	p.refs[t] = a.Image
	d, err := a.Digest()
	if err != nil {
		return nil, err
	}
	res := &Result{Reference: "tar:" + p.File + ":" + ref + "@" + d.String(), Digest: d.String(), Uploaded: true}
	if a.SBOM != nil {
		f := strings.TrimSuffix(p.File, filepath.Ext(p.File)) + "-" + strings.ReplaceAll(imageName, "/", "-") + ".spdx.json"
		if err := os.WriteFile(f, a.SBOM, 0o644); err != nil {
			return nil, fmt.Errorf("writing the SBOM of %s: %w", imageName, writeFix(err))
		}
		res.SBOM = f
	}
	return res, nil
}

// Close writes the tarball, through a temporary file renamed into place
// so a failure leaves no partial file.
func (p *Tarball) Close() error {
	if len(p.refs) == 0 {
		return nil
	}
	dir := filepath.Dir(p.File)
	tmp, err := os.CreateTemp(dir, ".skiff-*.tar")
	if err != nil {
		return fmt.Errorf("writing %s: %w", p.File, writeFix(err))
	}
	werr := tarball.MultiRefWrite(p.refs, tmp)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", p.File, writeFix(err))
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), p.File); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", p.File, writeFix(err))
	}
	return nil
}
