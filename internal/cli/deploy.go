package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/MakeNowJust/heredoc"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/spf13/cobra"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/getter"
	"helm.sh/helm/v3/pkg/release"

	"github.com/skiffdev/skiff/internal/bus"
	"github.com/skiffdev/skiff/internal/chart"
	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/deploy"
	"github.com/skiffdev/skiff/internal/kube"
	"github.com/skiffdev/skiff/internal/pipeline"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/publish"
	"github.com/skiffdev/skiff/internal/relay"
	"github.com/skiffdev/skiff/internal/target"
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
func (v *chartValues) overrides() (map[string]any, error) {
	opts := values.Options{ValueFiles: v.Files, Values: v.Set, StringValues: v.SetStr, FileValues: v.SetFile}
	m, err := opts.MergeValues(getter.Providers{})
	if err != nil {
		return nil, cmdutil.Usagef("chart values: %v", err)
	}
	return m, nil
}

// NewCmdDeploy builds `skiff deploy`.
func NewCmdDeploy(f *cmdutil.Factory) *cobra.Command {
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
			return deployRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.NoBuild, "no-build", false, "deploy the image already deployed (e.g. after a config change)")
	fl.StringArrayVar(&opts.Images, "image", nil, "deploy this image instead of building: REF for one workload, or WORKLOAD=REF (repeatable)")
	fl.StringArrayVar(&opts.Insecure, "insecure-registry", nil, "allow plain HTTP to this registry host (loopback hosts always are)")
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
	overrides, err := values.overrides()
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
	kc, d, err := connect(ctx, f, pc)
	if err != nil {
		return err
	}
	// Before building or changing anything: the engines scale needs, and
	// the event bus.
	if err := pc.targets(kc, d).CheckEngines(ctx, pc.workloads); err != nil {
		return err
	}
	if err := checkEventBus(ctx, kc, pc); err != nil {
		return err
	}
	d.Wait = releaseWait(kc, d, pc)
	pl := pc.pipeline(f)
	images, toBuild, err := pl.Plan(d, pc.workloads, given, opts.NoBuild)
	var none *pipeline.NoDeployedImageError
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
		if err := buildImages(ctx, f, pc, toBuild, true, opts.Insecure, images); err != nil {
			return err
		}
	}
	if err := ensureNamespace(ctx, kc, pc, f.IOStreams.ErrOut); err != nil {
		return err
	}
	pull, err := ensurePullSecret(ctx, f, kc, pc, opts.Insecure, f.IOStreams.ErrOut)
	if err != nil {
		return err
	}
	overrides = withPullSecret(overrides, pull)
	results, err := pl.Deploy(ctx, releases(ctx, kc, d, pc, overrides, opts.Timeout), pc.workloads, images)
	if err != nil {
		return err
	}
	return printDeployed(f, results)
}

// checkEventBus checks, for a project with events, that there is a relay
// image to run and that the bus answers and can hold its events
// (JetStream on): deploy and dev do it before they change anything.
func checkEventBus(ctx context.Context, kc *kube.Client, pc *projectContext) error {
	p := pc.project
	if p.Events == nil {
		return nil
	}
	if p.Events.RelayImage == "" {
		return cmdutil.Usagef("skiff.yaml has events, and this build of skiff pins no skiff-relay image (a release does); " +
			"set events.relayImage to one you pushed (docs/events.md says how to build it)")
	}
	conn, err := bus.Dial(ctx, kc, p.Events.Bus)
	if err != nil {
		return fmt.Errorf("%w; deploy changed nothing: start the bus, or fix events.bus in skiff.yaml", err)
	}
	defer conn.Close()
	if _, err := conn.Check(ctx); err != nil {
		return fmt.Errorf("%w; deploy changed nothing: run nats-server with --jetstream", err)
	}
	return nil
}

// eventBus readies the project's bus for each workload a release
// deploys, over one connection made again after it dropped, so a long
// `skiff dev` outlives a restart of the bus.
type eventBus struct {
	project *project.Project
	bus     *bus.Redialer
}

// Subscribe creates the project's streams and w's consumers, and removes
// the consumers of triggers w no longer has.
func (b *eventBus) Subscribe(ctx context.Context, w *project.Workload) error {
	plan, err := relay.PlanFor(b.project, w)
	if err != nil {
		return err
	}
	return b.bus.Do(ctx, func(conn *bus.Conn) error {
		return relay.Subscribe(ctx, conn.JS, w.Name, plan, relay.DefaultConcurrency)
	})
}

// ensureNamespace creates the project's namespace when it is missing, and
// says so on w.
func ensureNamespace(ctx context.Context, kc *kube.Client, pc *projectContext, w io.Writer) error {
	created, err := kc.EnsureNamespace(ctx, pc.namespace)
	if created {
		fmt.Fprintf(w, "Created namespace %s\n", pc.namespace)
	}
	return err
}

// releases is how the pipeline deploys to the cluster of kc.
func releases(ctx context.Context, kc *kube.Client, d *deploy.Deployer, pc *projectContext, overrides map[string]any, timeout time.Duration) pipeline.Releases {
	var eb pipeline.Subscriber
	if pc.project.Events != nil {
		r := &bus.Redialer{KC: kc, URL: pc.project.Events.Bus}
		context.AfterFunc(ctx, r.Close)
		eb = &eventBus{project: pc.project, bus: r}
	}
	return pipeline.Releases{Releaser: d, Overrides: overrides, Timeout: timeout, Bus: eb,
		Readiness: func(ctx context.Context, w *project.Workload) (*pipeline.Readiness, error) {
			st, err := target.Read(ctx, d, pc.targets(kc, d).For(w), pc.namespace)
			if err != nil {
				return nil, err
			}
			return &pipeline.Readiness{Ready: st.Ready, Desired: st.Desired, Endpoint: st.Endpoint}, nil
		}}
}

// ensurePullSecret keeps the project's pull Secret in its namespace when
// its pods need one to pull from the registry (registryAuth pull-secret,
// or auto and the registry refuses an anonymous pull), from the
// credentials skiff pushes with, for that registry alone. It returns the
// Secret's name, or "" when the pods need none. The Secret is not part of
// any release; delete --all removes it.
func ensurePullSecret(ctx context.Context, f *cmdutil.Factory, kc *kube.Client, pc *projectContext, insecure []string, w io.Writer) (string, error) {
	p := pc.project
	if p.Registry == "" || p.RegistryAuth == project.RegistryAuthNone || len(pc.workloads) == 0 {
		return "", nil
	}
	regs, err := publish.NewRegistries(publish.RegistryOptions{Insecure: insecure, UserAgent: "skiff/" + f.BuildInfo.Version})
	if err != nil {
		return "", err
	}
	repo := publish.ImageName(p.Registry, pc.workloads[0].Name)
	ref, err := regs.ParseReference(repo)
	if err != nil {
		return "", err
	}
	host := ref.Context().RegistryStr()
	if p.RegistryAuth == project.RegistryAuthAuto {
		open, err := regs.AnonymousPull(ctx, repo)
		if err != nil {
			// The images may come from elsewhere (--image, --no-build): say
			// so, and let the nodes pull as they can.
			fmt.Fprintf(w, "warning: could not ask %s whether pods may pull without credentials (%v); deploying without a pull secret; set registryAuth in skiff.yaml to decide\n", host, err)
			return "", nil
		}
		if open {
			return "", nil
		}
	}
	data, err := publish.DockerConfigJSON(host, authn.DefaultKeychain)
	if err != nil {
		return "", err
	}
	name := chart.PullSecretName(p)
	labels := map[string]string{"app.kubernetes.io/part-of": p.Name, "app.kubernetes.io/managed-by": "skiff"}
	changed, err := kc.ApplyPullSecret(ctx, pc.namespace, name, labels, data)
	if err != nil {
		return "", fmt.Errorf("keeping the pull secret %s/%s: %w", pc.namespace, name, err)
	}
	if changed {
		fmt.Fprintf(w, "%s wants credentials to pull: pods pull with Secret %s/%s (from your credentials for %s)\n", host, pc.namespace, name, host)
	}
	return name, nil
}

// withPullSecret lays the pull Secret's name (none: "") under the user's
// chart values.
func withPullSecret(values map[string]any, pull string) map[string]any {
	if pull == "" {
		return values
	}
	return chart.Merge(map[string]any{"image": map[string]any{"pullSecret": pull}}, values)
}

// releaseWait is how deploy waits for a release to be ready: a scaled
// workload's Deployment rolled out, KEDA's ScaledObject and the add-on's
// route Ready, and, if it sits at zero pods, a wake-up through the
// interceptor that proves the new version answers; any other release as
// Helm waits. A failure rolls the release back, as any failed deploy.
func releaseWait(kc *kube.Client, d *deploy.Deployer, pc *projectContext) func(context.Context, *release.Release) error {
	return func(ctx context.Context, rel *release.Release) error {
		for _, w := range pc.workloads {
			if pc.release(&w) != rel.Name {
				continue
			}
			s, ok := pc.targets(kc, d).For(&w).(*target.Scaled)
			if !ok {
				break
			}
			if err := target.WaitRolledOut(ctx, kc.Clientset, rel); err != nil {
				return err
			}
			if err := s.WaitReady(ctx); err != nil {
				return err
			}
			return s.WakeIfIdle(ctx, kc)
		}
		return d.HelmWait(ctx, rel)
	}
}

// printDeployed prints deploy's summary: a hint on stderr, the table (or
// JSON) on stdout.
func printDeployed(f *cmdutil.Factory, results []pipeline.Deployment) error {
	if len(results) > 0 {
		fmt.Fprintf(f.IOStreams.ErrOut, "Reach it from here with `skiff invoke %s`, follow it with `skiff logs -f %s`; in the cluster at its endpoint below.\n",
			results[0].Workload, results[0].Workload)
	}
	return cmdutil.Write(f.IOStreams.Out, f.Globals.Output, results, func(out io.Writer) error {
		fmt.Fprintln(out, "WORKLOAD\tRELEASE\tREVISION\tREADY\tIMAGE\tENDPOINT")
		for _, r := range results {
			fmt.Fprintf(out, "%s\t%s\t%d\t%s\t%s\t%s\n", r.Workload, r.Release, r.Revision, r.Ready, shortImage(r.Image), r.Endpoint)
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

// buildImages builds the named workloads (pushing them when push is set)
// and records each one's reference by digest in images.
func buildImages(ctx context.Context, f *cmdutil.Factory, pc *projectContext, ws []project.Workload, push bool, insecure []string, images map[string]string) error {
	names := make([]string, len(ws))
	for i, w := range ws {
		names[i] = w.Name
	}
	bopts := &BuildOptions{Factory: f, Workloads: names, Push: push, SBOM: "spdx", Tag: "latest", Insecure: insecure}
	plan, err := planBuild(bopts, pc)
	if err != nil {
		return err
	}
	results, err := runBuilds(ctx, bopts, plan, ws)
	if err != nil {
		return err
	}
	for _, r := range results {
		images[r.Workload] = r.Pull
	}
	return nil
}
