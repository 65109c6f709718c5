package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/dev"
	"github.com/skiffdev/skiff/internal/project"
)

// DevOptions are the inputs of `skiff dev`.
type DevOptions struct {
	Factory   *cmdutil.Factory
	Workloads []string
	Local     bool
}

// NewCmdDev builds `skiff dev`. runF replaces devRun in tests.
func NewCmdDev(f *cmdutil.Factory, runF func(context.Context, *DevOptions) error) *cobra.Command {
	opts := &DevOptions{Factory: f}
	cmd := &cobra.Command{
		Use:     "dev [WORKLOAD...]",
		GroupID: "ship",
		Short:   "The inner loop: save a file, see the new code answer",
		Long: heredoc.Doc(`
			Run the named workloads (default: all of the project) and keep them
			current: watch their sources (what their build reads: .skiffignore and
			.gitignore are honoured; .git, node_modules, virtualenvs and build outputs
			are not watched) and skiff.yaml; when a burst of saves settles, rebuild
			only the workloads whose files changed, restart them and wait until they
			answer their readiness path. A skiff.yaml edit restarts every workload.

			With --local the workloads run on this machine, as skiff run runs them:
			Go is built with go build, TypeScript with npm run build, Node.js and
			Python restart. A compile error is shown in full and the version that ran
			before keeps serving; the next save tries again. Each workload answers on
			its port, printed at start; their logs go to stdout, prefixed by the
			workload's name; the loop's events to stderr (one JSON object a line with
			-o json). Ctrl-C stops them all.

			The same loop on the cluster (build, push, upgrade, logs and port-forwards
			that follow rollouts) is not in this version: use --local, or skiff deploy.
		`),
		Example: heredoc.Doc(`
			skiff dev --local
			skiff dev --local orders payments
			skiff dev --local -o json
		`),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Workloads = args
			if !opts.Local {
				return cmdutil.Usagef("skiff dev runs on this machine only in this version: use skiff dev --local (on the cluster, skiff deploy)")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return devRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Local, "local", false, "run the workloads on this machine, without a cluster")
	cmd.ValidArgsFunction = workloadCompletion(f)
	return cmd
}

func devRun(ctx context.Context, opts *DevOptions) error {
	f := opts.Factory
	pc, err := loadProjectContext(f, opts.Workloads)
	if err != nil {
		return err
	}
	if err := checkPorts(pc.workloads); err != nil {
		return err
	}
	bin, err := os.MkdirTemp("", "skiff-dev-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	names := make([]string, len(pc.workloads))
	for i, w := range pc.workloads {
		names[i] = w.Name
	}
	s := &dev.Session{
		Manifest:  filepath.Join(pc.root, project.FileName),
		Workloads: names,
		Load: func() (*project.Project, error) {
			_, p, err := loadProject(f)
			return p, err
		},
		Local: &dev.Local{Project: pc.project, Root: pc.root, Logs: f.IOStreams.Out, BinDir: bin, Events: devPrinter(f)},
	}
	fmt.Fprintf(f.IOStreams.ErrOut, "Watching %s — Ctrl-C stops\n", strings.Join(names, ", "))
	return s.Run(ctx)
}

// checkPorts refuses two workloads on one port: on this machine, each
// listens on its own.
func checkPorts(ws []project.Workload) error {
	seen := map[int]string{}
	for _, w := range ws {
		if other, ok := seen[w.Port]; ok {
			return cmdutil.Usagef("%s and %s both listen on port %d; on this machine each needs its own: give one another port in skiff.yaml", other, w.Name, w.Port)
		}
		seen[w.Port] = w.Name
	}
	return nil
}

// devPrinter renders the loop's events on stderr: a line each, or JSON
// lines with -o json.
func devPrinter(f *cmdutil.Factory) func(dev.Event) {
	errOut := f.IOStreams.ErrOut
	cs := f.IOStreams.ColorScheme()
	return func(ev dev.Event) {
		if o := f.Globals.Output; o == cmdutil.FormatJSON || o == cmdutil.FormatYAML {
			if data, err := json.Marshal(ev); err == nil {
				fmt.Fprintf(errOut, "%s\n", data)
			}
			return
		}
		switch ev.Kind {
		case dev.Watching:
			fmt.Fprintf(errOut, "  %s  %s\n", cs.Bold(ev.Workload), ev.URL)
		case dev.CycleStarted:
			fmt.Fprintf(errOut, "Building %s...\n", ev.Workload)
		case dev.Ready:
			fmt.Fprintf(errOut, "%s %s ready in %s at %s\n", cs.SuccessIcon(), ev.Workload, ev.Duration.Round(time.Millisecond), ev.URL)
		case dev.Failed:
			fmt.Fprintf(errOut, "%s %s: %s\n", cs.FailureIcon(), ev.Workload, ev.Error)
			if out := strings.TrimRight(ev.Output, "\n"); out != "" {
				fmt.Fprintf(errOut, "  %s\n", strings.ReplaceAll(out, "\n", "\n  "))
			}
		case dev.Exited:
			fmt.Fprintf(errOut, "%s %s: %s\n", cs.WarningIcon(), ev.Workload, ev.Error)
		case dev.ManifestError:
			fmt.Fprintf(errOut, "%s %s\n", cs.FailureIcon(), ev.Error)
		case dev.Stopped:
			fmt.Fprintf(errOut, "Stopped %s\n", ev.Workload)
		}
	}
}
