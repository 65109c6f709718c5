// Package build turns a workload's sources into an OCI image or image index
// without a container daemon: each language's toolchain runs on the host
// and its output is added as reproducible layers onto a base image.
//
// The package does no registry I/O of its own: base images are read
// through a BaseSource and finished images are returned as values for the
// publish package to store.
package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"

	"github.com/skiffdev/skiff/internal/project"
)

// Scratch is the base reference of an empty base image.
const Scratch = "scratch"

// ErrNoPlatform says a build request names no platform.
var ErrNoPlatform = errors.New("a build needs at least one platform")

// Interface builds images; Builder is the real one.
type Interface interface {
	Build(ctx context.Context, req Request) (*Artifact, error)
}

// Request is what to build.
type Request struct {
	// Project is the project's name.
	Project string
	// Workload is the workload to build.
	Workload project.Workload
	// Dir is the absolute folder of the workload's sources.
	Dir string
	// Base is the base image reference, or Scratch.
	Base string
	// Platforms to build for; one gives an image, several an index.
	Platforms []v1.Platform
	// SBOM asks for an SPDX document of what went into the image.
	SBOM bool
	// Epoch is the time stamped on every file, layer and config.
	Epoch time.Time
	// Labels are added to the image config (OCI annotations from git).
	Labels map[string]string
}

// Artifact is a built image (one platform) or image index (several).
type Artifact struct {
	Image v1.Image
	Index v1.ImageIndex
	// Platforms built, as "os/arch[/variant]".
	Platforms []string
	// Base is the base image used, resolved by digest.
	Base BaseInfo
	// SBOM is the SPDX 2.3 JSON document, or nil.
	SBOM []byte
	// Key identifies the inputs of the build; equal keys give equal images.
	Key string
	// Reused is true when the artifact came from the cache.
	Reused bool
	// Name is the image name of the workload, "project/workload".
	Name string
}

// BaseInfo records which base image an artifact was built on.
type BaseInfo struct {
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
}

// Digest returns the digest of the image or index.
func (a *Artifact) Digest() (v1.Hash, error) {
	if a.Index != nil {
		return a.Index.Digest()
	}
	return a.Image.Digest()
}

// Taggable returns the image or index, whichever the artifact holds.
func (a *Artifact) Taggable() partial.Describable {
	if a.Index != nil {
		return a.Index
	}
	return a.Image
}

// Base is a resolved base image: an image, or an index of images.
type Base struct {
	Ref    string
	Digest v1.Hash
	Image  v1.Image
	Index  v1.ImageIndex
}

// BaseSource reads base images (from a registry, in practice).
type BaseSource interface {
	Base(ctx context.Context, ref string) (*Base, error)
}

// Cache stores artifacts by build key.
type Cache interface {
	// Get returns the artifact stored under key, or nil when there is none.
	Get(ctx context.Context, key string) (*Artifact, error)
	// Put stores the artifact under key.
	Put(ctx context.Context, key string, a *Artifact) error
}

// Builder builds images with the host's toolchains.
type Builder struct {
	// Bases reads base images; needed unless every build uses Scratch.
	Bases BaseSource
	// Cache, when set, skips builds whose inputs did not change.
	Cache Cache
	// Rebuild builds even when Cache has the result, and stores the new one.
	Rebuild bool
	// Env is the environment the toolchains run with (nil: the process's).
	Env []string
	// Version is skiff's version, recorded in the SBOM and the cache key.
	Version string
	// HostCerts and HostZoneinfo, when set, are a CA bundle file and a time
	// zone database folder of this machine copied into a scratch base
	// instead of the embedded CA bundle and the Go toolchain's zoneinfo.zip
	// (which make it the same on every machine).
	HostCerts, HostZoneinfo string
}

// langBuilder is what each language adds to an image.
type langBuilder interface {
	// toolchain describes the tools (and their settings) used, for the
	// cache key.
	toolchain(ctx context.Context) (string, error)
	// inputs lists what the build reads outside the workload folder, for
	// the cache key.
	inputs(ctx context.Context, req Request) ([]input, error)
	// build runs the toolchain and returns what to add to the base; src
	// says which files of the workload folder are sources.
	build(ctx context.Context, req Request, src *sourceFilter) (*langOutput, error)
}

// langOutput is the result of a language builder.
type langOutput struct {
	// Layers are added on top of the base for every platform.
	Layers []v1.Layer
	// PlatformLayers are added after Layers, per platform (key: "os/arch").
	PlatformLayers map[string][]v1.Layer
	Entrypoint     []string
	Env            []string
	// Packages go into the SBOM.
	Packages []Package
}

func (b *Builder) env() []string {
	if b.Env != nil {
		return b.Env
	}
	return os.Environ()
}

func (b *Builder) lang(l string) (langBuilder, error) {
	switch l {
	case project.LangGo:
		return &goBuilder{env: b.env()}, nil
	case project.LangNode, project.LangTypeScript:
		return &nodeBuilder{env: b.env(), typescript: l == project.LangTypeScript}, nil
	case project.LangPython:
		return &pythonBuilder{env: b.env()}, nil
	}
	return nil, fmt.Errorf("skiff cannot build workloads in %q; supported languages: %s", l, strings.Join(project.Langs(), ", "))
}

// Build builds the request's workload, or returns the cached artifact when
// none of its inputs changed.
func (b *Builder) Build(ctx context.Context, req Request) (*Artifact, error) {
	if len(req.Platforms) == 0 {
		return nil, fmt.Errorf("no platform to build %s for: %w", req.Workload.Name, ErrNoPlatform)
	}
	// A workload folder may be a symlink: walk the folder it points at.
	dir, err := filepath.EvalSymlinks(req.Dir)
	if err != nil {
		return nil, fmt.Errorf("the sources of %s are not at %s (%v); fix the workload's path in skiff.yaml", req.Workload.Name, req.Dir, err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("the sources of %s are not at %s; fix the workload's path in skiff.yaml", req.Workload.Name, req.Dir)
	}
	req.Dir = dir
	lb, err := b.lang(req.Workload.Lang)
	if err != nil {
		return nil, err
	}
	src, err := loadSourceFilter(req.Dir, req.Workload.Lang)
	if err != nil {
		return nil, err
	}
	// A scratch base is made from host files: fingerprint them for the
	// cache key and build it only when the image must be built.
	var base *Base
	baseID := ""
	if isScratch(req.Base) {
		if baseID, err = b.scratchFingerprint(ctx, req); err != nil {
			return nil, err
		}
	} else {
		if base, err = b.resolveBase(ctx, req); err != nil {
			return nil, err
		}
		baseID = base.Digest.String()
	}
	key := ""
	if b.Cache != nil {
		key, err = b.key(ctx, req, lb, src, baseID)
		if err != nil {
			return nil, err
		}
		var a *Artifact
		if !b.Rebuild {
			if a, err = b.Cache.Get(ctx, key); err != nil {
				return nil, err
			}
		}
		if a != nil {
			a.Reused = true
			a.Key = key
			a.Name = req.Project + "/" + req.Workload.Name
			return a, nil
		}
	}
	if base == nil {
		if base, err = b.resolveBase(ctx, req); err != nil {
			return nil, err
		}
	}
	out, err := lb.build(ctx, req, src)
	if err != nil {
		return nil, err
	}
	a, err := assemble(ctx, req, base, out)
	if err != nil {
		return nil, err
	}
	a.Key = key
	a.Name = req.Project + "/" + req.Workload.Name
	if req.SBOM {
		if a.SBOM, err = sbom(req, a, out.Packages, b.Version); err != nil {
			return nil, err
		}
	}
	if b.Cache != nil {
		if err := b.Cache.Put(ctx, key, a); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// key hashes every input of a build: the workload folder's sources as the
// build sees them, and what the build reads outside it.
func (b *Builder) key(ctx context.Context, req Request, lb langBuilder, filter *sourceFilter, baseID string) (string, error) {
	tc, err := lb.toolchain(ctx)
	if err != nil {
		return "", err
	}
	src, err := hashTree(req.Dir, filter.build)
	if err != nil {
		return "", fmt.Errorf("reading the sources of %s: %w", req.Workload.Name, err)
	}
	ins, err := lb.inputs(ctx, req)
	if err != nil {
		return "", err
	}
	outside, err := hashInputs(req.Dir, ins)
	if err != nil {
		return "", fmt.Errorf("reading what %s is built from outside its folder: %w", req.Workload.Name, err)
	}
	plats := make([]string, len(req.Platforms))
	for i, p := range req.Platforms {
		plats[i] = p.String()
	}
	in := struct {
		Format    int
		Skiff     string
		Project   string
		Workload  imageFields
		Toolchain string
		Sources   string
		Outside   string
		Base      string
		Platforms []string
		SBOM      bool
		Epoch     int64
		Labels    map[string]string
	}{4, b.Version, req.Project, imageFieldsOf(req.Workload), tc, src, outside, baseID, plats, req.SBOM, req.Epoch.Unix(), req.Labels}
	data, err := json.Marshal(in)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// imageFields are the fields of a workload that go into its image. The
// others (env, config, replicas, resources, dependsOn, probes...) are
// given to the workload by its chart: changing them redeploys the same
// image.
type imageFields struct {
	Name string
	Lang string
	Path string
	Port int
}

func imageFieldsOf(w project.Workload) imageFields {
	return imageFields{Name: w.Name, Lang: w.Lang, Path: w.Path, Port: w.Port}
}

// envValues returns the values of the variables whose names start with
// one of prefixes, sorted, for cache keys.
func envValues(env []string, prefixes ...string) string {
	var out []string
	for _, kv := range env {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				out = append(out, kv)
				break
			}
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}
