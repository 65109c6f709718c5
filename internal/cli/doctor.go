package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/doctor"
	"github.com/skiffdev/skiff/internal/project"
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
			that you may do there what deploy, status, logs and invoke do, for every
			kind of object the project's charts render (access reviews); the
			namespace's Pod Security level; that the nodes' architectures
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
	root, p, err := loadProject(f)
	if err != nil {
		return err
	}
	run := opts.Run
	if run == nil {
		run = doctor.Exec
	}
	kctx := f.Globals.Context
	if kctx == "" {
		kctx = p.Context
	}
	checks := toolchainChecks(p, run)
	checks = append(checks, f.Probes(ctx, doctor.Config{Project: p, Root: root, Kubeconfig: f.Globals.Kubeconfig,
		KubeContext: kctx, Insecure: opts.Insecure})...)

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
