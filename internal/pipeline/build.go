package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/skiffdev/skiff/internal/build"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/publish"
)

// Destinations of images.
const (
	DestLocal    = engine.DestLocal
	DestRegistry = engine.DestRegistry
	DestLayout   = engine.DestLayout
	DestTarball  = engine.DestTarball
)

// Builds says how the images of a project are built and where they go.
type Builds struct {
	// Builder builds one workload's image.
	Builder build.Interface
	// Publisher stores built images.
	Publisher publish.Interface
	// Dest is the kind of Publisher (DestLocal, ...), for events and for
	// the references deploy uses.
	Dest string
	// Tag is the tag images are published under.
	Tag string
	// Platforms to build for.
	Platforms []v1.Platform
	// Base, when set, is the base of every workload; else each workload's.
	Base string
	// SBOM asks for an SPDX document with each image.
	SBOM bool
	// Getenv reads SOURCE_DATE_EPOCH and the like (nil: none set).
	Getenv func(string) string
	// Jobs bounds the builds that run at once (0: the number of CPUs).
	Jobs int
	// Sign, when set, signs and attests each image pushed to a registry.
	Sign *Signing
	// Check, when set, verifies each image pushed to a registry and warns
	// when it does not verify (dev with verify:).
	Check *ImageVerifier
}

// Image is a built and published workload image.
type Image = engine.Image

// Pipeline runs the steps for one project, resolved for its environment.
type Pipeline struct {
	Project *project.Project
	// Root is the project's folder.
	Root string
	// Events receives every step, one at a time (nil: nowhere).
	Events func(Event)
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Getenv reads the environment's overrides of skiff.yaml's bus files
	// ($SKIFF_NATS_CREDS, $SKIFF_NATS_SIGNING_KEY; nil: os.Getenv).
	Getenv func(string) string

	em emitter
}

func (p *Pipeline) emit(ev Event) { p.em.emit(p.Events, p.Now, ev) }

func (p *Pipeline) since(t time.Time) time.Duration {
	if p.Now != nil {
		return p.Now().Sub(t)
	}
	return time.Since(t)
}

func (p *Pipeline) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// BaseFor picks a workload's base image: the override, else the
// workload's, else the project's for its language, else the language
// default.
func BaseFor(override string, p *project.Project, w project.Workload) string {
	switch {
	case override != "":
		return override
	case w.Base != "":
		return w.Base
	case p.Build.Base[w.Lang] != "":
		return p.Build.Base[w.Lang]
	}
	return build.DefaultBase(w.Lang)
}

// ImageName is the name a workload's image is published under in dest:
// project/workload in the local store, the workload's name elsewhere (a
// registry or tarball adds the project's registry as prefix).
func ImageName(p *project.Project, dest, workload string) string {
	if dest == DestLocal {
		return p.Name + "/" + workload
	}
	return workload
}

// PullRef is the reference by digest of a workload's image as a cluster
// pulls it: REGISTRY/WORKLOAD@DIGEST, or PROJECT/WORKLOAD@DIGEST without a
// registry (render with the local store).
func PullRef(p *project.Project, workload, digest string) string {
	if p.Registry == "" {
		return p.Name + "/" + workload + "@" + digest
	}
	return publish.ImageName(p.Registry, workload) + "@" + digest
}

// Build builds and publishes the images of ws, Jobs at a time, and returns
// them in the order of ws. The first failure stops the builds still
// running and is returned.
func (p *Pipeline) Build(ctx context.Context, b Builds, ws []project.Workload) ([]Image, error) {
	jobs := b.Jobs
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	out := make([]Image, len(ws))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for i, w := range ws {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err // an earlier build failed: start no more
			}
			img, err := p.buildOne(gctx, b, w)
			if err != nil {
				if gctx.Err() == nil || ctx.Err() != nil {
					p.emit(Event{Kind: Failed, Workload: w.Name, Err: err})
				}
				return err
			}
			out[i] = *img
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		// Not Close: a tarball would be written with part of the images.
		return nil, err
	}
	if err := b.Publisher.Close(); err != nil {
		return nil, err
	}
	return out, nil
}

func (p *Pipeline) buildOne(ctx context.Context, b Builds, w project.Workload) (*Image, error) {
	start := p.now()
	dir := filepath.Join(p.Root, filepath.FromSlash(w.Path))
	getenv := b.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	prov, err := build.SourceProvenance(ctx, dir, getenv, "")
	if err != nil {
		return nil, err
	}
	req := build.Request{
		Project: p.Project.Name, Workload: w, Dir: dir,
		Base: BaseFor(b.Base, p.Project, w), Platforms: b.Platforms,
		SBOM: b.SBOM, Epoch: prov.Epoch, Labels: prov.Labels,
	}
	p.emit(Event{Kind: BuildStarted, Workload: w.Name, Lang: w.Lang, Base: req.Base, Platforms: platformStrings(b.Platforms)})
	a, err := b.Builder.Build(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("building %s: %w", w.Name, err)
	}
	kind := Built
	if a.Reused {
		kind = Reused
	}
	p.emit(Event{Kind: kind, Workload: w.Name, Duration: p.since(start), Platforms: a.Platforms, Base: a.Base.Ref})

	pubStart := p.now()
	res, err := b.Publisher.Publish(ctx, a, ImageName(p.Project, b.Dest, w.Name), b.Tag)
	if err != nil {
		return nil, err
	}
	p.emit(Event{Kind: Published, Workload: w.Name, Duration: p.since(pubStart), Reference: res.Reference,
		Digest: res.Digest, Destination: b.Dest, Uploaded: res.Uploaded})
	if err := p.signPushed(ctx, b, w, dir, a, prov.Labels, res.Reference); err != nil {
		return nil, err
	}
	p.warnUnverified(ctx, b, w, res.Reference)
	status := "built"
	if a.Reused {
		status = "reused"
	}
	pull := PullRef(p.Project, w.Name, res.Digest)
	return &Image{Workload: w.Name, Reference: res.Reference, Digest: res.Digest, Platforms: a.Platforms,
		Status: status, Uploaded: res.Uploaded, Base: a.Base.Ref, BaseDigest: a.Base.Digest, SBOM: res.SBOM, Pull: pull,
		Built: a.Image}, nil
}

func platformStrings(ps []v1.Platform) []string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return s
}
