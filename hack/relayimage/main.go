// Command relayimage builds the skiff-relay image (cmd/skiff-relay) from
// this checkout with skiff's own pipeline and builder, as `skiff build`
// builds a Go workload: a static binary on scratch, reproducible (file
// times from SOURCE_DATE_EPOCH or the commit), with an SBOM; it pushes it
// to a registry and prints its reference by digest. A release pins that
// reference in skiff (SKIFF_RELAY_IMAGE, docs/events.md); the e2e tests
// deploy the one they build.
//
//	go run ./hack/relayimage --registry REGISTRY/PATH [--tag TAG] [--platform linux/amd64,linux/arm64]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/skiffdev/skiff/internal/build"
	"github.com/skiffdev/skiff/internal/pipeline"
	"github.com/skiffdev/skiff/internal/project"
	registries "github.com/skiffdev/skiff/internal/publish/registry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ref, err := run(ctx, os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "relayimage:", err)
		os.Exit(1)
	}
	fmt.Println(ref)
}

func run(ctx context.Context, args []string) (string, error) {
	fs := flag.NewFlagSet("relayimage", flag.ContinueOnError)
	registry := fs.String("registry", "", "where to push: REGISTRY/PATH (the image is REGISTRY/PATH/skiff-relay)")
	tag := fs.String("tag", "dev", "the tag, moved once everything is pushed")
	platforms := fs.String("platform", "linux/amd64", "the platforms, comma-separated")
	root := fs.String("root", ".", "the checkout of skiff")
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if *registry == "" {
		return "", errors.New("--registry is required")
	}
	dir, err := filepath.Abs(*root)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(dir, "cmd", "skiff-relay", "main.go")); err != nil {
		return "", fmt.Errorf("%s is not a checkout of skiff (no cmd/skiff-relay): pass --root", dir)
	}
	var plats []v1.Platform
	for _, s := range strings.Split(*platforms, ",") {
		p, err := v1.ParsePlatform(strings.TrimSpace(s))
		if err != nil {
			return "", err
		}
		plats = append(plats, *p)
	}
	regs, err := registries.New(registries.Options{UserAgent: "skiff-relayimage"})
	if err != nil {
		return "", err
	}
	// The relay as a Go workload of a project of its own.
	w := project.Workload{Name: "skiff-relay", Kind: project.KindService, Lang: project.LangGo, Path: "cmd/skiff-relay"}
	pl := &pipeline.Pipeline{Project: &project.Project{Name: "skiff", Registry: *registry, Workloads: []project.Workload{w}}, Root: dir}
	imgs, err := pl.Build(ctx, pipeline.Builds{
		Builder:   &build.Builder{},
		Publisher: &registries.Publisher{Prefix: *registry, Client: regs},
		Dest:      pipeline.DestRegistry,
		Tag:       *tag,
		Platforms: plats,
		Base:      build.Scratch,
		SBOM:      true,
		Getenv:    os.Getenv,
	}, []project.Workload{w})
	if err != nil {
		return "", err
	}
	return imgs[0].Pull, nil
}
