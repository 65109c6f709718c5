package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/project"
)

// DeployOptions are the inputs of `skiff deploy`.
type DeployOptions struct {
	Factory *cmdutil.Factory

	Workloads []string
	NoBuild   bool
	Images    []string // REF, or WORKLOAD=REF
	Values    chartValues
	Timeout   time.Duration
	Insecure  []string
	// Sign and SignKey are build's --sign and --sign-key.
	Sign    bool
	SignKey string
}

// chartValues are the user's chart overrides, as Helm's flags take them.
type chartValues struct {
	Files   []string
	Set     []string
	SetStr  []string
	SetFile []string
}

func (v *chartValues) addFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVarP(&v.Files, "values", "f", nil, "chart values from a YAML file (repeatable)")
	fl.StringArrayVar(&v.Set, "set", nil, "set a chart value: KEY=VALUE, e.g. --set replicas=3 (repeatable)")
	fl.StringArrayVar(&v.SetStr, "set-string", nil, "set a chart value as a string: KEY=VALUE (repeatable)")
	fl.StringArrayVar(&v.SetFile, "set-file", nil, "set a chart value from a file: KEY=PATH (repeatable)")
}

// overrides reads the values the user gave, relative to the working folder.
func (v *chartValues) overrides(f *cmdutil.Factory) (map[string]any, error) {
	m, err := f.ChartValues(v.Files, v.Set, v.SetStr, v.SetFile)
	if err != nil {
		return nil, cmdutil.Usagef("chart values: %v", err)
	}
	return m, nil
}

// NewCmdDeploy builds `skiff deploy`. runF replaces deployRun in tests.
func NewCmdDeploy(f *cmdutil.Factory, runF func(context.Context, *DeployOptions) error) *cobra.Command {
	opts := &DeployOptions{Factory: f}
	cmd := &cobra.Command{
		Use:     "deploy [WORKLOAD...]",
		GroupID: "ship",
		Short:   "Build, push and deploy workloads to Kubernetes, waiting until ready",
		Long: heredoc.Doc(`
			Deploy the named workloads (default: all of the project) to the namespace of
			skiff.yaml (or -n): build and push each image to the project's registry,
			then install or upgrade each workload's Helm release <project>-<workload>,
			in dependency order, and wait until its pods are ready.

			Images are deployed by digest. When a workload does not become ready within
			--timeout (or a pod is stuck in CrashLoopBackOff or ImagePullBackOff), skiff
			shows why, rolls the release back to its last good revision (or removes a
			failed first install) and exits with code 1.

			The chart is skiff's base chart, or the workload's own chart/ folder when it
			has one; -f and --set override its values.

			With signing: in skiff.yaml (or --sign, --sign-key) the images pushed are
			signed and their SBOM and provenance attested. With verify: every image
			(built, --image or --no-build) is checked against its key before the
			cluster is changed, and one that does not verify is refused: see
			docs/supply-chain.md.
		`),
		Example: heredoc.Doc(`
			skiff deploy
			skiff deploy orders --timeout 2m
			skiff deploy orders --image registry.example.com/team/orders@sha256:...
			skiff deploy --no-build --set replicas=3
		`),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Workloads = args
			if err := checkTimeout(opts.Timeout); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return deployRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.NoBuild, "no-build", false, "deploy the image already deployed (e.g. after a config change)")
	fl.StringArrayVar(&opts.Images, "image", nil, "deploy this image instead of building: REF for one workload, or WORKLOAD=REF (repeatable)")
	fl.StringArrayVar(&opts.Insecure, "insecure-registry", nil, "allow plain HTTP to this registry host (loopback hosts always are)")
	fl.BoolVar(&opts.Sign, "sign", false, "sign the images built and attest their SBOM and provenance (default: when skiff.yaml has signing:)")
	fl.StringVar(&opts.SignKey, "sign-key", "", "private key to sign with: a file or env://NAME (implies --sign; default: signing.key of skiff.yaml)")
	opts.Values.addFlags(cmd)
	addTimeoutFlag(cmd, &opts.Timeout)
	cmd.ValidArgsFunction = workloadCompletion(f)
	return cmd
}

// releaseInputs reads what deploy and render share: the selected
// workloads, the user's chart overrides and the --image references.
func releaseInputs(f *cmdutil.Factory, names []string, values chartValues, imageFlags []string) (*projectContext, map[string]any, map[string]string, error) {
	pc, err := loadProjectContext(f, names)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := pc.project.RequireBus(); err != nil {
		return nil, nil, nil, err
	}
	overrides, err := values.overrides(f)
	if err != nil {
		return nil, nil, nil, err
	}
	images, err := parseImages(imageFlags, pc)
	if err != nil {
		return nil, nil, nil, err
	}
	return pc, overrides, images, nil
}

func deployRun(ctx context.Context, opts *DeployOptions) error {
	f := opts.Factory
	pc, overrides, given, err := releaseInputs(f, opts.Workloads, opts.Values, opts.Images)
	if err != nil {
		return err
	}
	s, err := pc.session(ctx, f, newProgress(f).event)
	if err != nil {
		return err
	}
	defer s.Close()
	// Before building or changing anything: the engines scale needs, and
	// the event bus.
	if err := s.Preflight(ctx, pc.workloads); err != nil {
		return preflightErr(err)
	}
	images, toBuild, err := s.Plan(ctx, pc.workloads, given, opts.NoBuild)
	var none *engine.NoDeployedImageError
	if errors.As(err, &none) {
		return fmt.Errorf("--no-build: %s has no deployed image to reuse; deploy it once without --no-build, or pass --image", none.Workload)
	}
	if err != nil {
		return err
	}
	if len(toBuild) > 0 {
		if pc.project.Registry == "" {
			return cmdutil.Manifestf("skiff.yaml names no registry the cluster can pull from%s; add `registry: HOST/PATH`, or pass --image", envSuffix(pc.project))
		}
		bopts := BuildOptions{Push: true, Insecure: opts.Insecure, Sign: opts.Sign, SignKey: opts.SignKey}
		if err := buildImages(ctx, f, pc, toBuild, bopts, images); err != nil {
			return err
		}
	}
	if err := verifyDeployed(ctx, f, pc, images, opts.Insecure); err != nil {
		return err
	}
	if err := s.EnsureNamespace(ctx); err != nil {
		return err
	}
	pull, err := s.EnsurePullSecret(ctx, pc.workloads, pullOptions(f, opts.Insecure))
	if err != nil {
		return err
	}
	results, err := s.Deploy(ctx, engine.DeployOptions{Overrides: overrides, PullSecret: pull, Timeout: opts.Timeout}, pc.workloads, images)
	if err != nil {
		return err
	}
	return printDeployed(f, results)
}

// preflightErr makes a missing relay image a usage error: skiff.yaml
// must say which.
func preflightErr(err error) error {
	var mr *engine.MissingRelayImageError
	if errors.As(err, &mr) {
		return &cmdutil.UsageError{Err: err}
	}
	return err
}

func pullOptions(f *cmdutil.Factory, insecure []string) engine.PullOptions {
	return engine.PullOptions{Insecure: insecure, UserAgent: "skiff/" + f.BuildInfo.Version}
}

// printDeployed prints deploy's summary: a hint on stderr, the table (or
// JSON) on stdout.
func printDeployed(f *cmdutil.Factory, results []engine.Deployment) error {
	if len(results) > 0 && (f.Globals.Output == "" || f.Globals.Output == cmdutil.FormatTable) {
		fmt.Fprintf(f.IOStreams.ErrOut, "Reach it from here with `skiff invoke %s`, follow it with `skiff logs -f %s`; in the cluster at its endpoint below.\n",
			results[0].Workload, results[0].Workload)
	}
	// The URL column only when a workload is exposed.
	public := slices.ContainsFunc(results, func(r engine.Deployment) bool { return r.URL != "" })
	return cmdutil.Write(f.IOStreams.Out, f.Globals.Output, results, func(out io.Writer) error {
		fmt.Fprint(out, "WORKLOAD\tRELEASE\tREVISION\tREADY\tIMAGE\tENDPOINT")
		if public {
			fmt.Fprint(out, "\tURL")
		}
		fmt.Fprintln(out)
		for _, r := range results {
			fmt.Fprintf(out, "%s\t%s\t%d\t%s\t%s\t%s", r.Workload, r.Release, r.Revision, r.Ready, shortImage(r.Image), r.Endpoint)
			if public {
				fmt.Fprintf(out, "\t%s", cmp.Or(r.URL, "-"))
			}
			fmt.Fprintln(out)
		}
		return nil
	})
}

// parseImages reads --image values: one bare REF for a single workload, or
// WORKLOAD=REF. Every reference must be by digest.
func parseImages(flags []string, pc *projectContext) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range flags {
		name, ref, ok := strings.Cut(v, "=")
		if !ok {
			if len(pc.workloads) != 1 {
				return nil, cmdutil.Usagef("--image %s: name the workload (--image WORKLOAD=REF) when deploying more than one", v)
			}
			name, ref = pc.workloads[0].Name, v
		}
		if _, ok := pc.project.Workload(name); !ok {
			return nil, cmdutil.Usagef("--image %s: the project has no workload %q", v, name)
		}
		if !strings.Contains(ref, "@sha256:") {
			return nil, cmdutil.Usagef("--image %s: deploy by digest (REPO@sha256:...), never a floating tag", ref)
		}
		out[name] = ref
	}
	return out, nil
}

// buildImages builds the named workloads (pushing them with bopts.Push,
// signing them as bopts.Sign and SignKey say; Insecure: the registries
// allowed plain HTTP) and records each one's reference by digest in images.
func buildImages(ctx context.Context, f *cmdutil.Factory, pc *projectContext, ws []project.Workload, bopts BuildOptions, images map[string]string) error {
	names := make([]string, len(ws))
	for i, w := range ws {
		names[i] = w.Name
	}
	b := &BuildOptions{Factory: f, Workloads: names, Push: bopts.Push, SBOM: "spdx", Tag: "latest", Insecure: bopts.Insecure,
		Sign: bopts.Sign, SignKey: bopts.SignKey}
	plan, err := planBuild(b, pc)
	if err != nil {
		return err
	}
	results, err := runBuilds(ctx, b, plan, ws)
	if err != nil {
		return err
	}
	for _, r := range results {
		images[r.Workload] = r.Pull
	}
	return nil
}
