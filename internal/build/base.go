package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/skiffdev/skiff/internal/project"
)

// DefaultBase returns the base image used for a language when neither the
// command line nor skiff.yaml names one. Short names resolve like
// Docker's: on Docker Hub, in the library namespace.
func DefaultBase(lang string) string {
	switch lang {
	case project.LangNode, project.LangTypeScript:
		return "node:20-slim"
	case project.LangPython:
		return "python:3.11-slim"
	}
	return Scratch
}

// resolveBase returns the base image of a request, with the layers that
// make scratch usable for a static binary.
func (b *Builder) resolveBase(ctx context.Context, req Request) (*Base, error) {
	if isScratch(req.Base) {
		if err := checkScratch(req); err != nil {
			return nil, err
		}
		return b.scratchBase(ctx, req)
	}
	if b.Bases == nil {
		return nil, errors.New("no base image source configured")
	}
	base, err := b.Bases.Base(ctx, req.Base)
	if err != nil {
		return nil, err
	}
	return base, nil
}

func isScratch(ref string) bool { return ref == Scratch || ref == "" }

// NeedsRuntimeError says a workload cannot run on an empty base.
type NeedsRuntimeError struct{ Workload, Lang string }

func (e *NeedsRuntimeError) Error() string {
	return fmt.Sprintf("%s is a %s workload and needs a base image with the %s runtime, not scratch; set build.base.%s in skiff.yaml",
		e.Workload, e.Lang, runtimeName(e.Lang), e.Lang)
}

func checkScratch(req Request) error {
	if req.Workload.Lang != project.LangGo {
		return &NeedsRuntimeError{Workload: req.Workload.Name, Lang: req.Workload.Lang}
	}
	return nil
}

// scratchFingerprint identifies the scratch base cheaply for the cache
// key: from the embedded bundle and the toolchain's zoneinfo.zip, or, when
// host files replace them, from their names, sizes and times.
func (b *Builder) scratchFingerprint(ctx context.Context, req Request) (string, error) {
	if err := checkScratch(req); err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "scratch v2 %d\n", req.Epoch.Unix())
	if b.HostCerts == "" && b.HostZoneinfo == "" {
		id, err := osFilesID(ctx, b.env())
		if err != nil {
			return "", err
		}
		fmt.Fprintln(h, id)
	}
	for _, root := range []string{b.HostCerts, b.HostZoneinfo} {
		if root == "" {
			continue
		}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%s %v %d %d\n", p, info.Mode(), info.Size(), info.ModTime().UnixNano())
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("reading %s for the scratch base: %w", root, err)
		}
	}
	return "scratch:" + hex.EncodeToString(h.Sum(nil)), nil
}

func runtimeName(lang string) string {
	if lang == project.LangPython {
		return "Python"
	}
	return "Node.js"
}

// scratchBase is an empty image with what a static binary needs from the
// operating system: CA certificates for TLS, the time zone database, an
// /etc/passwd naming the non-root user, and a writable /tmp. It plays the
// part of a distroless static image.
func (b *Builder) scratchBase(ctx context.Context, req Request) (*Base, error) {
	lw := newLayerWriter(req.Epoch)
	lw.File("/etc/passwd", []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"), 0o644)
	lw.File("/etc/group", []byte("root:x:0:\nnonroot:x:65532:\n"), 0o644)
	lw.Dir("/home/nonroot", 0o700, NonRootID, NonRootID)
	lw.Dir("/tmp", 0o777|fs.ModeSticky, RootID, RootID)
	if certs := b.HostCerts; certs != "" {
		if _, err := os.Stat(certs); err != nil {
			return nil, fmt.Errorf("the scratch base's CA certificates %s cannot be read: %w", certs, err)
		}
		lw.HostFile("/etc/ssl/certs/ca-certificates.crt", certs, 0o644)
	} else {
		lw.File("/etc/ssl/certs/ca-certificates.crt", caBundle(), 0o644)
	}
	if zoneinfo := b.HostZoneinfo; zoneinfo != "" {
		err := lw.Tree("/usr/share/zoneinfo", zoneinfo, func(rel string, _ fs.DirEntry) bool {
			return rel == "right" || rel == "localtime"
		})
		if err != nil {
			return nil, fmt.Errorf("copying the time zone database from %s: %w", zoneinfo, err)
		}
	} else {
		zones, _, err := goZoneinfo(ctx, b.env())
		if err != nil {
			return nil, err
		}
		for _, z := range zones {
			lw.File("/usr/share/zoneinfo/"+z.name, z.data, 0o644)
		}
	}
	layer, err := lw.Layer(types.OCILayer)
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: req.Epoch}, CreatedBy: "skiff: scratch with CA certificates, time zones, nonroot user", Comment: "skiff",
	}})
	if err != nil {
		return nil, err
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	return &Base{Ref: Scratch, Digest: d, Image: img}, nil
}

// platformImage picks the image of base for platform p.
func platformImage(base *Base, p v1.Platform) (v1.Image, error) {
	if base.Index == nil {
		cf, err := base.Image.ConfigFile()
		if err != nil {
			return nil, fmt.Errorf("reading the config of base image %s: %w", base.Ref, err)
		}
		if base.Ref == Scratch || cf.OS == "" || (cf.OS == p.OS && cf.Architecture == p.Architecture) {
			return base.Image, nil
		}
		return nil, fmt.Errorf("base image %s is for %s/%s only, not %s; use a multi-platform base or drop the platform", base.Ref, cf.OS, cf.Architecture, p)
	}
	im, err := base.Index.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading base index %s: %w", base.Ref, err)
	}
	var have []string
	for _, d := range im.Manifests {
		if d.Platform == nil {
			continue
		}
		have = append(have, d.Platform.String())
		if d.Platform.OS == p.OS && d.Platform.Architecture == p.Architecture && (p.Variant == "" || d.Platform.Variant == p.Variant) {
			img, err := base.Index.Image(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("reading the %s image of base %s: %w", p, base.Ref, err)
			}
			return img, nil
		}
	}
	return nil, fmt.Errorf("base image %s has no %s image (it has: %s); use another base or drop the platform", base.Ref, p, strings.Join(have, ", "))
}
