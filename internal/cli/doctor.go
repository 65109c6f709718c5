package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/MakeNowJust/heredoc"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/doctor"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/publish"
)

// DoctorOptions are the inputs of `skiff doctor`.
type DoctorOptions struct {
	Factory  *cmdutil.Factory
	Insecure []string
	// Run runs a program (tests pass fakes); nil: doctor.Exec.
	Run doctor.Runner
}

// NewCmdDoctor builds `skiff doctor`.
func NewCmdDoctor(f *cmdutil.Factory, runF func(*DoctorOptions) error) *cobra.Command {
	opts := &DoctorOptions{Factory: f}
	cmd := &cobra.Command{
		Use:     "doctor",
		GroupID: "ship",
		Short:   "Check that builds and deploys of the project will work, before they fail",
		Long: heredoc.Doc(`
			Check, all at once, what the project's builds and deploys need (in the
			selected --env): each workload language's toolchain; that the registry's
			credentials may push (a blob upload started and cancelled, nothing pushed);
			that the cluster answers within 5 s, and its version, context and namespace;
			that you may do what deploy, status, logs and invoke do there (access
			reviews); the namespace's Pod Security level; that the nodes' architectures
			are among build.platforms; and KEDA and its HTTP add-on when a workload uses
			scale.

			Each check prints one line and, when it fails, how to fix it. The exit code is
			1 when a check fails (warnings do not), so doctor can gate CI; -o json prints
			every result.
		`),
		Example: heredoc.Doc(`
			skiff doctor
			skiff doctor -e prod -o json
		`),
		Args: maxArgs(0, "none: it checks the whole project"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return doctorRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringArrayVar(&opts.Insecure, "insecure-registry", nil, "allow plain HTTP to this registry host (loopback hosts always are)")
	return cmd
}

func doctorRun(ctx context.Context, opts *DoctorOptions) error {
	f := opts.Factory
	_, p, err := loadProject(f)
	if err != nil {
		return err
	}
	run := opts.Run
	if run == nil {
		run = doctor.Exec
	}
	checks := toolchainChecks(p, run)
	checks = append(checks, registryChecks(p, opts.Insecure)...)
	checks = append(checks, clusterChecks(f, p)...)

	stop := f.IOStreams.StartProgress(fmt.Sprintf("checking toolchains, registry and cluster (%d checks)", len(checks)))
	results := doctor.Run(ctx, 2*doctor.Reach, checks)
	stop()
	if err := printDoctor(f, results); err != nil {
		return err
	}
	if doctor.Failed(results) {
		return &cmdutil.SilentError{Code: cmdutil.ExitFailure}
	}
	return nil
}

// toolchainChecks checks each language the workloads are written in.
func toolchainChecks(p *project.Project, run doctor.Runner) []doctor.Check {
	byLang := map[string][]string{}
	for _, w := range p.Workloads {
		byLang[w.Lang] = append(byLang[w.Lang], w.Name)
	}
	var checks []doctor.Check
	for _, lang := range project.Langs() {
		if ws := byLang[lang]; len(ws) > 0 {
			checks = append(checks, doctor.Toolchain(lang, ws, run))
		}
	}
	return checks
}

// registryChecks check the push to and the pulls from the project's
// registry, parsed once.
func registryChecks(p *project.Project, insecure []string) []doctor.Check {
	if p.Registry == "" {
		return []doctor.Check{{Name: "registry", Run: func(context.Context) doctor.Result {
			return doctor.Result{Status: doctor.Warn, Detail: "skiff.yaml names no registry: builds go to the local store, and deploy has nothing to pull",
				Fix: "add `registry: HOST/PATH` to skiff.yaml (or to the environment)"}
		}}}
	}
	repo := publish.ImageName(p.Registry, p.Workloads[0].Name)
	regs, err := publish.NewRegistries(publish.RegistryOptions{Insecure: insecure})
	var ref name.Reference
	if err == nil {
		ref, err = regs.ParseReference(repo)
	}
	if err != nil {
		return []doctor.Check{{Name: "registry", Run: func(context.Context) doctor.Result {
			return doctor.Result{Status: doctor.Fail, Detail: err.Error(), Fix: "fix `registry:` in skiff.yaml"}
		}}}
	}
	host := ref.Context().RegistryStr()
	return []doctor.Check{
		doctor.Registry(ref.Context(), authn.DefaultKeychain, nil, publish.CredentialSource),
		// The nodes will be able to pull the images.
		doctor.PullAccess(repo, p.RegistryAuth,
			func(ctx context.Context) (bool, error) { return regs.AnonymousPull(ctx, repo) },
			func() error { _, err := publish.DockerConfigJSON(host, authn.DefaultKeychain); return err }),
	}
}

// clusterChecks are the checks that need the cluster.
func clusterChecks(f *cmdutil.Factory, p *project.Project) []doctor.Check {
	kctx := f.Globals.Context
	if kctx == "" {
		kctx = p.Context
	}
	return doctor.ClusterChecks(p, f.Globals.Kubeconfig, kctx, deployAccess(p))
}

// deployAccess is what deploy (through Helm), status, logs and invoke do
// in the project's namespace, for the objects skiff's chart renders.
func deployAccess(p *project.Project) []doctor.Access {
	var out []doctor.Access
	add := func(group, resource string, verbs ...string) {
		for _, v := range verbs {
			out = append(out, doctor.Access{Group: group, Resource: resource, Verb: v, Namespaced: true})
		}
	}
	write := []string{"get", "create", "patch", "delete"}
	add("apps", "deployments", append(write, "list", "watch")...)
	add("", "services", write...)
	add("", "configmaps", write...)
	add("", "serviceaccounts", write...)
	add("", "secrets", "get", "list", "create", "update", "delete") // Helm's release records, skiff secret
	add("", "pods", "list", "watch")
	add("", "pods/log", "get")
	add("", "pods/portforward", "create")
	add("", "events", "list")
	var hpa, pdb, scale, live, schedules bool
	for _, w := range p.Workloads {
		live = live || w.LiveConfig
		schedules = schedules || slices.ContainsFunc(w.Triggers, func(t project.Trigger) bool { return t.Schedule != "" })
		hpa = hpa || w.Autoscale != nil
		scale = scale || w.Scale != nil
		pdb = pdb || (w.Replicas != nil && *w.Replicas > 1 && w.Scale == nil) || (w.Autoscale != nil && w.Autoscale.Min > 1) || (w.Scale != nil && w.Scale.Min > 1)
	}
	if live {
		// A Role and RoleBinding let the pods watch their ConfigMap. To
		// create the Role, the user must hold what it grants (RBAC's
		// escalation check): get, above, and watch on configmaps.
		add("rbac.authorization.k8s.io", "roles", write...)
		add("rbac.authorization.k8s.io", "rolebindings", write...)
		add("", "configmaps", "watch")
	}
	if hpa {
		add("autoscaling", "horizontalpodautoscalers", write...)
	}
	if pdb {
		add("policy", "poddisruptionbudgets", write...)
	}
	if schedules {
		// A schedule is a CronJob in the release.
		add("batch", "cronjobs", write...)
	}
	if scale {
		add("keda.sh", "scaledobjects", append(write, "list", "watch")...)
		add("http.keda.sh", "interceptorroutes", append(write, "list", "watch")...)
	}
	return out
}

// printDoctor prints one line per check, and the fix under a failed or
// warned one; JSON and YAML print the results.
func printDoctor(f *cmdutil.Factory, rs []doctor.Result) error {
	cs := f.IOStreams.ColorScheme()
	return cmdutil.Write(f.IOStreams.Out, f.Globals.Output, rs, func(out io.Writer) error {
		fmt.Fprintln(out, "CHECK\tRESULT\tDETAIL")
		for _, r := range rs {
			status := string(r.Status)
			switch r.Status {
			case doctor.OK:
				status = cs.Green(status)
			case doctor.Fail:
				status = cs.Red(status)
			case doctor.Warn:
				status = cs.Yellow(status)
			}
			fmt.Fprintf(out, "%s\t%s\t%s\n", r.Check, status, r.Detail)
			if r.Fix != "" && r.Status != doctor.OK {
				fmt.Fprintf(out, "\t\tfix: %s\n", strings.TrimSpace(r.Fix))
			}
		}
		return nil
	})
}
