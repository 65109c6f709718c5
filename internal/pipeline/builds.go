package pipeline

import (
	"context"

	"github.com/skiffdev/skiff/internal/build"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/publish"
	"github.com/skiffdev/skiff/internal/publish/registry"
)

// NewBuilds makes the builder and the publisher cfg asks for: bases read
// from registries, images to the registry, a layout, a tarball or the
// local store, the build cache in cfg.CacheDir.
func NewBuilds(cfg engine.BuildConfig) (*Builds, error) {
	regs, err := registry.New(registry.Options{Insecure: cfg.Insecure, UserAgent: cfg.UserAgent})
	if err != nil {
		return nil, err
	}
	p := cfg.Project
	var pub publish.Interface
	switch cfg.Dest {
	case DestRegistry:
		pub = &registry.Publisher{Prefix: p.Registry, Client: regs, Pushing: cfg.Pushing}
	case DestLayout:
		pub = &publish.Layout{Dir: cfg.DestPath, Repaired: cfg.Repaired}
	case DestTarball:
		tb := &publish.Tarball{File: cfg.DestPath, Prefix: p.Registry, Force: cfg.Force}
		if err := tb.CheckFile(); err != nil {
			return nil, err
		}
		pub = tb
	default:
		pub = &publish.Layout{Dir: publish.DefaultStoreDir(cfg.CacheDir), Repaired: cfg.Repaired}
	}
	b := &Builds{
		Builder: &build.Builder{Bases: regs, Version: cfg.Version, Rebuild: cfg.NoCache,
			Cache: &publish.Cache{Dir: cfg.CacheDir, Repaired: cfg.Repaired}},
		Publisher: pub, Dest: cfg.Dest, Tag: cfg.Tag, Platforms: cfg.Platforms,
		Base: cfg.Base, SBOM: cfg.SBOM, Getenv: cfg.Getenv, Jobs: cfg.Jobs,
	}
	if cfg.SigningKey != nil {
		b.Sign = NewSigning(cfg.SigningKey, regs, cfg.Version)
	}
	if cfg.CheckKey != nil {
		b.Check = NewImageVerifier(cfg.CheckKey, regs, nil)
	}
	return b, nil
}

// Builder returns the engine.Builder of cfg: NewBuilds's, run by the
// project's pipeline.
func Builder(cfg engine.BuildConfig) (engine.Builder, error) {
	b, err := NewBuilds(cfg)
	if err != nil {
		return nil, err
	}
	return &builder{pl: &Pipeline{Project: cfg.Project, Root: cfg.Root, Events: cfg.Events}, b: b}, nil
}

type builder struct {
	pl *Pipeline
	b  *Builds
}

func (b *builder) Build(ctx context.Context, ws []project.Workload) ([]Image, error) {
	return b.pl.Build(ctx, *b.b, ws)
}
