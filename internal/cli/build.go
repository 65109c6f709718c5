package cli

import (
	"context"
	"errors"
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
	"github.com/skiffdev/skiff/internal/engine"
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
	Jobs      int
	Force     bool
	// Sign signs pushed images even without signing: in skiff.yaml;
	// SignKey is the key (a file or env://NAME) instead of signing.key.
	Sign    bool
	SignKey string
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

			Pushed images are signed, and their SBOM and SLSA provenance attested,
			when skiff.yaml has signing: {key: ...} or with --sign (and --sign-key);
			the key's password comes from $SKIFF_SIGNING_PASSWORD or a prompt. See
			docs/supply-chain.md.

			-o/--output is the format of the report (table, json or yaml); the
			destination of the images is --dest.
		`),
		Example: heredoc.Doc(`
			skiff build
			skiff build orders --push --platform linux/amd64,linux/arm64
			skiff build hello --base scratch --dest oci:./out
			skiff build --push -o json
			skiff build --push --sign-key skiff.key
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
	fl.IntVar(&opts.Jobs, "jobs", 0, "workloads built at once (default: the number of CPUs)")
	fl.BoolVar(&opts.NoCache, "no-cache", false, "build even when nothing changed (the new image is cached)")
	fl.BoolVar(&opts.Force, "force", false, "replace a --dest tar:FILE (or the SBOM beside it) that skiff did not write")
	fl.BoolVar(&opts.Sign, "sign", false, "sign the pushed images and attest their SBOM and provenance (default: when skiff.yaml has signing:)")
	fl.StringVar(&opts.SignKey, "sign-key", "", "private key to sign with: a file or env://NAME (implies --sign; default: signing.key of skiff.yaml)")
	_ = cmd.RegisterFlagCompletionFunc("sbom", fixedCompletion("spdx", "none"))
	_ = cmd.RegisterFlagCompletionFunc("platform", fixedCompletion("linux/amd64", "linux/arm64", "linux/arm/v7"))
	return cmd
}

// workloadCompletion completes the names of the project's workloads.
func workloadCompletion(f *cmdutil.Factory) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		_, p, err := loadProject(f)
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

// envCompletion completes the names of the project's environments.
func envCompletion(f *cmdutil.Factory) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		_, p, err := readManifest(f)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return p.EnvironmentNames(), cobra.ShellCompDirectiveNoFileComp
	}
}

// buildPlan is the validated command line.
type buildPlan struct {
	pc        *projectContext
	platforms []v1.Platform
	destKind  string // engine.DestLocal, DestRegistry, DestLayout, DestTarball
	destPath  string
}

// planBuild validates the build flags against the project; pc is the
// project when the caller has loaded it already (nil: load it).
func planBuild(opts *BuildOptions, pc *projectContext) (*buildPlan, error) {
	if opts.SBOM != "spdx" && opts.SBOM != "none" {
		return nil, cmdutil.Usagef("--sbom %q is not a format; use --sbom spdx or --sbom none", opts.SBOM)
	}
	if opts.Tag == "" || strings.ContainsAny(opts.Tag, ":/@ ") || len(opts.Tag) > 128 {
		return nil, cmdutil.Usagef("--tag %q is not a valid tag; use letters, digits, '.', '_' and '-'", opts.Tag)
	}
	if opts.Jobs < 0 {
		return nil, cmdutil.Usagef("--jobs %d: use 1 or more, or 0 for the number of CPUs", opts.Jobs)
	}
	plan := &buildPlan{destKind: engine.DestLocal}
	if opts.Dest != "" {
		kind, path, err := publish.ParseDest(opts.Dest)
		if err != nil {
			return nil, &cmdutil.UsageError{Err: err}
		}
		if opts.Push && kind != engine.DestRegistry {
			return nil, cmdutil.Usagef("--push and --dest %s both say where images go; use one", opts.Dest)
		}
		plan.destKind, plan.destPath = kind, path
	}
	if opts.Push {
		plan.destKind = engine.DestRegistry
	}
	wd, err := opts.Factory.WorkDir()
	if err != nil {
		return nil, err
	}
	if pc == nil {
		if pc, err = loadProjectContext(opts.Factory, opts.Workloads); err != nil {
			return nil, err
		}
	}
	plan.pc = pc
	p := pc.project
	if plan.destKind == engine.DestRegistry && p.Registry == "" {
		return nil, cmdutil.Manifestf("%s names no registry to push to%s; add `registry: HOST/PATH` to it, or use --dest oci:DIR",
			filepath.Join(pc.root, project.FileName), envSuffix(p))
	}
	if (opts.Sign || opts.SignKey != "") && plan.destKind != engine.DestRegistry {
		return nil, cmdutil.Usagef("--sign signs images pushed to a registry; add --push")
	}
	if (opts.Sign || opts.SignKey != "") && opts.SignKey == "" && p.Signing == nil {
		return nil, cmdutil.Usagef("--sign: no key to sign with; pass --sign-key FILE, or add `signing: {key: skiff.key}` to skiff.yaml (create a pair with `skiff keys generate`)")
	}
	if plan.destPath != "" && !filepath.IsAbs(plan.destPath) {
		plan.destPath = filepath.Join(wd, plan.destPath)
	}
	if len(pc.workloads) == 0 {
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

// envSuffix names the environment of a resolved project in a message.
func envSuffix(p *project.Project) string {
	if p.Env == "" {
		return ""
	}
	return " for environment " + p.Env
}

func buildRun(ctx context.Context, opts *BuildOptions) error {
	f := opts.Factory
	plan, err := planBuild(opts, nil)
	if err != nil {
		return err
	}
	results, err := runBuilds(ctx, opts, plan, plan.pc.workloads)
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

// runBuilds builds and publishes ws through the pipeline, its progress on
// stderr. deploy and render use it too.
func runBuilds(ctx context.Context, opts *BuildOptions, plan *buildPlan, ws []project.Workload) ([]engine.Image, error) {
	cfg, err := buildConfig(opts.Factory, opts, plan)
	if err != nil {
		return nil, err
	}
	b, err := opts.Factory.Builder(cfg)
	if err != nil {
		return nil, adviseBuild(err)
	}
	images, err := b.Build(ctx, ws)
	return images, adviseBuild(err)
}

// buildConfig is how the builds of a plan run and where they go.
func buildConfig(f *cmdutil.Factory, opts *BuildOptions, plan *buildPlan) (engine.BuildConfig, error) {
	cacheDir, err := f.CacheDir()
	if err != nil {
		return engine.BuildConfig{}, err
	}
	cfg := engine.BuildConfig{
		Project: plan.pc.project, Root: plan.pc.root, Events: newProgress(f).event,
		Dest: plan.destKind, DestPath: plan.destPath, Force: opts.Force, Tag: opts.Tag, Platforms: plan.platforms,
		Base: opts.Base, SBOM: opts.SBOM == "spdx", NoCache: opts.NoCache, Jobs: opts.Jobs,
		Insecure: opts.Insecure, UserAgent: "skiff/" + f.BuildInfo.Version, Version: f.BuildInfo.Version,
		CacheDir: cacheDir, Getenv: f.Getenv, Pushing: pushingNotice(f), Repaired: repairedNotice(f),
	}
	if plan.destKind == engine.DestRegistry && (opts.Sign || opts.SignKey != "" || plan.pc.project.Signing != nil) {
		if cfg.SigningKey, err = signingKey(f, opts.SignKey, plan.pc); err != nil {
			return engine.BuildConfig{}, err
		}
	}
	return cfg, nil
}

// pushingNotice says on stderr which image is being pushed (the wait that
// follows is the registry's), except with -o json|yaml.
func pushingNotice(f *cmdutil.Factory) func(string) {
	if o := f.Globals.Output; o == cmdutil.FormatJSON || o == cmdutil.FormatYAML {
		return nil
	}
	return func(ref string) { fmt.Fprintf(f.IOStreams.ErrOut, "Pushing %s...\n", ref) }
}

// adviseBuild adds to the pipeline's errors the flags that fix them.
func adviseBuild(err error) error {
	var tarball *publish.TarballPlatformsError
	var plain *publish.PlainHTTPError
	var runtime *build.NeedsRuntimeError
	var foreign *publish.ForeignFileError
	switch {
	case errors.As(err, &foreign):
		return fmt.Errorf("%w; choose another file, or pass --force to replace it", err)
	case errors.As(err, &tarball):
		return fmt.Errorf("%w; use --dest oci:DIR for several platforms, or one --platform", err)
	case errors.As(err, &plain):
		return fmt.Errorf("%w; pass --insecure-registry %s if that registry has no TLS", err, plain.Host)
	case errors.As(err, &runtime):
		return fmt.Errorf("%w (or pass --base)", err)
	}
	return err
}

func destName(kind string) string {
	switch kind {
	case engine.DestRegistry:
		return "registry"
	case engine.DestTarball:
		return "tarball"
	case engine.DestLayout:
		return "layout"
	}
	return "local store"
}
