package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/event"
	"github.com/skiffdev/skiff/internal/hostrun"
	"github.com/skiffdev/skiff/internal/project"
)

// RunOptions are the inputs of `skiff run`.
type RunOptions struct {
	Factory *cmdutil.Factory
	// Workload is the one named ("": the only one, or asked for).
	Workload string
	// Port is the port it listens on (0: its own).
	Port int
}

// NewCmdRun builds `skiff run`. runF replaces runRun in tests.
func NewCmdRun(f *cmdutil.Factory, runF func(context.Context, *RunOptions) error) *cobra.Command {
	opts := &RunOptions{Factory: f}
	cmd := &cobra.Command{
		Use:     "run [WORKLOAD]",
		GroupID: "observe",
		Short:   "Run a workload on this machine, without containers",
		Long: heredoc.Doc(`
			Run a workload with its language's toolchain (go build, node, python3), with
			the env and config of skiff.yaml, PORT set to its port, and the <NAME>_URL of
			each workload it depends on pointing at a local instance (start those with
			skiff run in other terminals). Ctrl-C stops it the way Kubernetes would:
			SIGTERM, then SIGKILL after 10 seconds.
		`),
		Example: heredoc.Doc(`
			skiff run hello
			skiff run orders --port 9000
			skiff invoke hello --local --path '/?name=Ada'
		`),
		Args: maxArgs(1, "the workload"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Port < 0 || opts.Port > 65535 {
				return cmdutil.Usagef("--port %d is out of range; use 1 to 65535", opts.Port)
			}
			opts.Workload = firstArg(args)
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().IntVar(&opts.Port, "port", 0, "port to listen on (default: the workload's)")
	cmd.ValidArgsFunction = workloadCompletion(f)
	return cmd
}

func runRun(ctx context.Context, opts *RunOptions) error {
	f, port := opts.Factory, opts.Port
	var args []string
	if opts.Workload != "" {
		args = []string{opts.Workload}
	}
	pc, err := loadProjectContext(f, args)
	if err != nil {
		return err
	}
	w, err := pickWorkload(pc, strings.Join(args, ""))
	if err != nil {
		return cmdutil.Usagef("name the workload to run: %s", strings.Join(pc.project.WorkloadNames(), ", "))
	}
	if port == 0 {
		port = w.Port
	}
	bin, err := os.MkdirTemp("", "skiff-run-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	plan, err := hostrun.NewPlan(pc.project, w, pc.root, bin, port)
	if err != nil {
		return err
	}
	errOut := f.IOStreams.ErrOut
	cs := f.IOStreams.ColorScheme()
	for _, d := range plan.Missing {
		fmt.Fprintf(errOut, "%s %s is not running locally; start it with `skiff run %s` for %s_URL to answer\n",
			cs.Yellow("!"), d, d, project.EnvName(d))
	}
	fmt.Fprintf(errOut, "Running %s (%s) on http://127.0.0.1:%d — Ctrl-C stops it\n", cs.Bold(w.Name), w.Lang, port)
	err = plan.Run(ctx, f.IOStreams.Out, errOut, &event.Emitter{Sink: func(ev event.Event) { fmt.Fprintln(errOut, ev.Message) }})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
