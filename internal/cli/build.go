package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/MakeNowJust/heredoc"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/build"
	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/publish"
)

// BuildOptions are the inputs of `skiff build`.
type BuildOptions struct {
	Factory *cmdutil.Factory

	Workloads []string
	Platforms []string
	Push      bool
	Dest      string
	Base      string
	SBOM      string
	Insecure  []string
	Tag       string
	NoCache   bool
}

// buildResult is what `skiff build` reports per workload.
type buildResult struct {
	Workload  string   `json:"workload"`
	Reference string   `json:"reference"`
	Digest    string   `json:"digest"`
	Platforms []string `json:"platforms"`
	// Status is "built" or "reused" (from the build cache).
	Status     string `json:"status"`
	Uploaded   bool   `json:"uploaded"`
	Base       string `json:"base"`
	BaseDigest string `json:"baseDigest"`
	SBOM       string `json:"sbom,omitempty"`
}

// NewCmdBuild builds `skiff build`. runF replaces buildRun in tests.
func NewCmdBuild(f *cmdutil.Factory, runF func(context.Context, *BuildOptions) error) *cobra.Command {
	opts := &BuildOptions{Factory: f}
	cmd := &cobra.Command{
		Use:     "build [WORKLOAD...]",
		GroupID: "ship",
		Short:   "Build OCI images of workloads, without a container daemon",
		Long: heredoc.Doc(`
			Build the image of each workload named (default: every workload of the
			project around the current folder) with the language's toolchain on
			this machine, on top of a base image, and store it.

			Where images go:
			  (default)          the local OCI layout store in the user cache folder
			                     (SKIFF_CACHE_DIR overrides it)
			  --push             the registry of skiff.yaml, as REGISTRY/WORKLOAD:TAG
			  --dest oci:DIR     an OCI image layout folder
			  --dest tar:FILE    a tarball for docker load or skopeo (one platform)

			Builds are reproducible: the same sources and base give the same digest
			(file times come from SOURCE_DATE_EPOCH or the git commit). Unchanged
			workloads are not rebuilt, and pushes skip what the registry has.
			An SPDX 2.3 SBOM is stored next to each image unless --sbom none.

			-o/--output is the format of the report (table, json or yaml); the
			destination of the images is --dest.
		`),
		Example: heredoc.Doc(`
			skiff build
			skiff build orders --push --platform linux/amd64,linux/arm64
			skiff build hello --base scratch --dest oci:./out
			skiff build --push -o json
		`),
		ValidArgsFunction: workloadCompletion(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Workloads = args
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return buildRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&opts.Platforms, "platform", nil, "platforms to build, e.g. linux/amd64,linux/arm64 (default: build.platforms of skiff.yaml, else linux/"+runtime.GOARCH+")")
	fl.BoolVar(&opts.Push, "push", false, "push to the registry of skiff.yaml")
	fl.StringVar(&opts.Dest, "dest", "", "where to put the images: oci:DIR, tar:FILE or registry (default: the local store)")
	fl.StringVar(&opts.Base, "base", "", "base image for this build, or scratch (default: per workload and language from skiff.yaml)")
	fl.StringVar(&opts.SBOM, "sbom", "spdx", "SBOM format: spdx or none")
	fl.StringArrayVar(&opts.Insecure, "insecure-registry", nil, "registry host allowed over plain HTTP (repeatable; loopback always is)")
	fl.StringVar(&opts.Tag, "tag", "latest", "tag of the images")
	fl.BoolVar(&opts.NoCache, "no-cache", false, "build even when nothing changed (the new image is cached)")
	_ = cmd.RegisterFlagCompletionFunc("sbom", fixedCompletion("spdx", "none"))
	_ = cmd.RegisterFlagCompletionFunc("platform", fixedCompletion("linux/amd64", "linux/arm64", "linux/arm/v7"))
	return cmd
}

// workloadCompletion completes the names of the project's workloads.
func workloadCompletion(f *cmdutil.Factory) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		wd, err := f.WorkDir()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		path, err := project.Find(wd)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		p, err := project.Load(path)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, n := range p.WorkloadNames() {
			if !slices.Contains(args, n) {
				out = append(out, n)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// buildPlan is the validated command line.
type buildPlan struct {
	project   *project.Project
	root      string
	workloads []project.Workload
	platforms []v1.Platform
	destKind  string // local, registry, oci, tar
	destPath  string
}

func planBuild(opts *BuildOptions, wd string) (*buildPlan, error) {
	if opts.SBOM != "spdx" && opts.SBOM != "none" {
		return nil, cmdutil.Usagef("--sbom %q is not a format; use --sbom spdx or --sbom none", opts.SBOM)
	}
	if opts.Tag == "" || strings.ContainsAny(opts.Tag, ":/@ ") || len(opts.Tag) > 128 {
		return nil, cmdutil.Usagef("--tag %q is not a valid tag; use letters, digits, '.', '_' and '-'", opts.Tag)
	}
	plan := &buildPlan{destKind: "local"}
	if opts.Dest != "" {
		kind, path, err := publish.ParseDest(opts.Dest)
		if err != nil {
			return nil, &cmdutil.UsageError{Err: err}
		}
		if opts.Push && kind != "registry" {
			return nil, cmdutil.Usagef("--push and --dest %s both say where images go; use one", opts.Dest)
		}
		plan.destKind, plan.destPath = kind, path
	}
	if opts.Push {
		plan.destKind = "registry"
	}
	manifest, err := project.Find(wd)
	if err != nil {
		return nil, err
	}
	p, err := project.Load(manifest)
	if err != nil {
		return nil, err
	}
	plan.project, plan.root = p, filepath.Dir(manifest)
	if plan.destKind == "registry" && p.Registry == "" {
		return nil, cmdutil.Usagef("%s names no registry to push to; add `registry: HOST/PATH` to it, or use --dest oci:DIR", manifest)
	}
	if plan.destPath != "" && !filepath.IsAbs(plan.destPath) {
		plan.destPath = filepath.Join(wd, plan.destPath)
	}
	if len(opts.Workloads) == 0 {
		plan.workloads = p.Workloads
	}
	for _, n := range opts.Workloads {
		w, ok := p.Workload(n)
		if !ok {
			return nil, cmdutil.Usagef("the project has no workload %q; it has: %s", n, strings.Join(p.WorkloadNames(), ", "))
		}
		if !slices.ContainsFunc(plan.workloads, func(o project.Workload) bool { return o.Name == n }) {
			plan.workloads = append(plan.workloads, *w)
		}
	}
	if len(plan.workloads) == 0 {
		return nil, cmdutil.Usagef("the project has no workloads to build; add one with `skiff add`")
	}
	plats := opts.Platforms
	if len(plats) == 0 {
		plats = p.Build.Platforms
	}
	if len(plats) == 0 {
		plats = []string{"linux/" + runtime.GOARCH}
	}
	seen := map[string]bool{}
	for _, s := range plats {
		pl, err := v1.ParsePlatform(strings.TrimSpace(s))
		if err != nil || pl.OS == "" || pl.Architecture == "" {
			return nil, cmdutil.Usagef("--platform %q is not a platform; use OS/ARCH[/VARIANT] such as linux/amd64 or linux/arm64", s)
		}
		if pl.OS != "linux" {
			return nil, cmdutil.Usagef("--platform %s: skiff builds Linux images only; use linux/ARCH", s)
		}
		if !seen[pl.String()] {
			seen[pl.String()] = true
			plan.platforms = append(plan.platforms, *pl)
		}
	}
	return plan, nil
}

// baseFor picks a workload's base image: the flag, else the workload's,
// else the project's for its language, else the language default.
func baseFor(flag string, p *project.Project, w project.Workload) string {
	switch {
	case flag != "":
		return flag
	case w.Base != "":
		return w.Base
	case p.Build.Base[w.Lang] != "":
		return p.Build.Base[w.Lang]
	}
	return build.DefaultBase(w.Lang)
}

func buildRun(ctx context.Context, opts *BuildOptions) error {
	f := opts.Factory
	wd, err := f.WorkDir()
	if err != nil {
		return err
	}
	plan, err := planBuild(opts, wd)
	if err != nil {
		return err
	}
	results, err := runBuilds(ctx, opts, plan)
	if err != nil {
		return err
	}
	return cmdutil.Write(f.IOStreams.Out, f.Globals.Output, results, func(w io.Writer) error {
		fmt.Fprintln(w, "WORKLOAD\tSTATUS\tPLATFORMS\tREFERENCE\tDIGEST")
		for _, r := range results {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.Workload, r.Status, strings.Join(r.Platforms, ","), r.Reference, r.Digest)
		}
		return nil
	})
}

// runBuilds builds and publishes the planned workloads, printing progress
// to stderr, and returns what it made. deploy uses it too.
func runBuilds(ctx context.Context, opts *BuildOptions, plan *buildPlan) ([]buildResult, error) {
	f := opts.Factory
	cacheDir, err := f.CacheDir()
	if err != nil {
		return nil, err
	}
	info := f.BuildInfo
	regs, err := publish.NewRegistries(publish.RegistryOptions{
		Insecure:  opts.Insecure,
		UserAgent: "skiff/" + info.Version,
	})
	if err != nil {
		return nil, err
	}
	b := &build.Builder{Bases: regs, Version: info.Version, Rebuild: opts.NoCache,
		Cache: &publish.Cache{Dir: cacheDir, Repaired: repairedNotice(f)}}
	var pub publish.Interface
	nameOf := func(w string) string { return w }
	switch plan.destKind {
	case "registry":
		pub = &publish.Registry{Prefix: plan.project.Registry, Client: regs}
	case "oci":
		pub = &publish.Layout{Dir: plan.destPath}
	case "tar":
		pub = &publish.Tarball{File: plan.destPath, Prefix: plan.project.Registry}
	default:
		pub = &publish.Layout{Dir: publish.DefaultStoreDir(cacheDir), Repaired: repairedNotice(f)}
		nameOf = func(w string) string { return plan.project.Name + "/" + w }
	}

	cs := f.IOStreams.ColorScheme()
	errOut := f.IOStreams.ErrOut
	var results []buildResult
	for _, w := range plan.workloads {
		dir := filepath.Join(plan.root, filepath.FromSlash(w.Path))
		prov, err := build.SourceProvenance(ctx, dir, f.Getenv, "")
		if err != nil {
			return nil, err
		}
		req := build.Request{
			Project: plan.project.Name, Workload: w, Dir: dir,
			Base: baseFor(opts.Base, plan.project, w), Platforms: plan.platforms,
			SBOM: opts.SBOM == "spdx", Epoch: prov.Epoch, Labels: prov.Labels,
		}
		fmt.Fprintf(errOut, "Building %s (%s, %s) on %s\n", cs.Bold(w.Name), w.Lang, platformList(plan.platforms), req.Base)
		a, err := b.Build(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("building %s: %w", w.Name, err)
		}
		res, err := pub.Publish(ctx, a, nameOf(w.Name), opts.Tag)
		if err != nil {
			return nil, err
		}
		status := "built"
		if a.Reused {
			status = "reused"
		}
		r := buildResult{Workload: w.Name, Reference: res.Reference, Digest: res.Digest, Platforms: a.Platforms,
			Status: status, Uploaded: res.Uploaded, Base: a.Base.Ref, BaseDigest: a.Base.Digest, SBOM: res.SBOM}
		results = append(results, r)
		what := "built"
		if a.Reused {
			what = "unchanged, reused"
		}
		if !res.Uploaded {
			what += ", " + destName(plan.destKind) + " already up to date"
		}
		fmt.Fprintf(errOut, "%s %s %s: %s (%s)\n", cs.SuccessIcon(), w.Name, what, res.Reference, res.Digest)
	}
	if err := pub.Close(); err != nil {
		return nil, err
	}
	return results, nil
}

func destName(kind string) string {
	switch kind {
	case "registry":
		return "registry"
	case "tar":
		return "tarball"
	case "oci":
		return "layout"
	}
	return "local store"
}

func platformList(ps []v1.Platform) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}
