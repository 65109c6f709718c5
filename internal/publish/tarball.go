package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/skiffdev/skiff/internal/build"
)

// Tarball publishes into a tarball in the format of `docker save`, which
// `docker load` and skopeo (docker-archive:FILE:NAME:TAG) read. Every
// artifact published goes into the one file, written by Close. A tarball
// holds single-platform images only. Each SBOM is written next to the
// file, also by Close, as SBOMFile says.
type Tarball struct {
	File string
	// Prefix is put before image names in the tags (the project's registry).
	Prefix string
	// Force replaces File (and the SBOM files) even when they are not an
	// image tarball (an SBOM): someone else's files.
	Force bool

	mu    sync.Mutex // Publish may be called from several goroutines
	refs  map[name.Reference]v1.Image
	sboms map[string][]byte // file name -> document
}

// SBOMFile is where the SBOM of the image named imageName goes next to
// the tarball file: FILE without its extension, "-", the image name with
// '/' replaced by '-', ".spdx.json" (app.tar, orders: app-orders.spdx.json).
func SBOMFile(file, imageName string) string {
	return strings.TrimSuffix(file, filepath.Ext(file)) + "-" + strings.ReplaceAll(imageName, "/", "-") + ".spdx.json"
}

// TarballPlatformsError says a multi-platform image was given to a tarball.
type TarballPlatformsError struct {
	Image     string
	Platforms []string
}

func (e *TarballPlatformsError) Error() string {
	return fmt.Sprintf("a tarball holds one platform, and %s was built for %s", e.Image, strings.Join(e.Platforms, ", "))
}

// ForeignFileError says a file is in the way that skiff did not write.
type ForeignFileError struct {
	File string
	// Not is what the file is not, e.g. "an image tarball".
	Not string
}

func (e *ForeignFileError) Error() string {
	return fmt.Sprintf("%s exists and is not %s; it was left as it was", e.File, e.Not)
}

// replaceable returns a ForeignFileError when file exists and is not what
// skiff writes there (is tells).
func replaceable(file, not string, is func(string) bool) error {
	if _, err := os.Lstat(file); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if !is(file) {
		return &ForeignFileError{File: file, Not: not}
	}
	return nil
}

func isImageTarball(file string) bool {
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(file) })
	return err == nil && len(m) > 0
}

func isSBOM(file string) bool {
	data, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	var doc struct {
		SPDXVersion string `json:"spdxVersion"`
	}
	return json.Unmarshal(data, &doc) == nil && doc.SPDXVersion != ""
}

// CheckFile returns a ForeignFileError when File exists and is not an
// image tarball (unless Force): a check before anything is built.
func (p *Tarball) CheckFile() error {
	if p.Force {
		return nil
	}
	return replaceable(p.File, "an image tarball", isImageTarball)
}

// Publish adds a to the tarball; Close writes it.
func (p *Tarball) Publish(_ context.Context, a *build.Artifact, imageName, tag string) (*Result, error) {
	if a.Index != nil {
		return nil, &TarballPlatformsError{Image: imageName, Platforms: a.Platforms}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.Force {
		if err := p.CheckFile(); err != nil {
			return nil, err
		}
		if a.SBOM != nil {
			if err := replaceable(SBOMFile(p.File, imageName), "an SBOM", isSBOM); err != nil {
				return nil, err
			}
		}
	}
	ref := ImageName(p.Prefix, imageName) + ":" + tag
	t, err := name.NewTag(ref)
	if err != nil {
		return nil, fmt.Errorf("%q is not a valid tag: %w", ref, err)
	}
	if p.refs == nil {
		p.refs = map[name.Reference]v1.Image{}
		p.sboms = map[string][]byte{}
	}
	p.refs[t] = a.Image
	d, err := a.Digest()
	if err != nil {
		return nil, err
	}
	// skopeo reads "docker-archive:FILE:NAME:TAG"; the digest is its own
	// field.
	res := &Result{Reference: "docker-archive:" + p.File + ":" + ref, Digest: d.String(), Uploaded: !p.has(t, a.Image)}
	if a.SBOM != nil {
		f := SBOMFile(p.File, imageName)
		p.sboms[f] = a.SBOM
		res.SBOM = f
	}
	return res, nil
}

// has reports whether the tarball already on disk holds img under tag t.
// A docker-archive keeps no manifest, so the config and the layers are
// compared.
func (p *Tarball) has(t name.Tag, img v1.Image) bool {
	old, err := tarball.ImageFromPath(p.File, &t)
	if err != nil {
		return false
	}
	digests := func(img v1.Image) ([]v1.Hash, error) {
		cfg, err := img.ConfigName()
		if err != nil {
			return nil, err
		}
		layers, err := img.Layers()
		if err != nil {
			return nil, err
		}
		out := []v1.Hash{cfg}
		for _, l := range layers {
			d, err := l.Digest()
			if err != nil {
				return nil, err
			}
			out = append(out, d)
		}
		return out, nil
	}
	have, err := digests(old)
	if err != nil {
		return false
	}
	want, err := digests(img)
	return err == nil && slices.Equal(have, want)
}

// Close writes the tarball, through a temporary file renamed into place
// so a failure leaves no partial file, then the SBOM files. The entries of
// the images' blobs are in go-containerregistry's order, which is not
// fixed when the tarball holds several images (manifest.json is sorted).
func (p *Tarball) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
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
	files := make([]string, 0, len(p.sboms))
	for f := range p.sboms {
		files = append(files, f)
	}
	slices.Sort(files)
	for _, f := range files {
		if err := os.WriteFile(f, p.sboms[f], 0o644); err != nil {
			return fmt.Errorf("writing the SBOM %s: %w", f, writeFix(err))
		}
	}
	return nil
}
