package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/tui"
)

// DashOptions are the inputs of `skiff dash`.
type DashOptions struct {
	Workloads []string
	LogLines  int
	Timeout   time.Duration
}

// NewCmdDash builds `skiff dash`. runF replaces dashRun in tests.
func NewCmdDash(f *cmdutil.Factory, runF func(context.Context, *DashOptions) error) *cobra.Command {
	opts := &DashOptions{}
	cmd := &cobra.Command{
		Use:     "dash [WORKLOAD...]",
		GroupID: "observe",
		Short:   "Open the interactive dashboard: status, logs, events and actions",
		Long: heredoc.Doc(`
			Open a terminal dashboard of the project's workloads (or the named ones):
			their state, revision, ready pods, restarts, image and endpoint (the
			public URL of an exposed one), updated live from the cluster; the live
			logs, recent events and release history of the selected one; and actions
			on it: roll back to a revision, restart, delete, port-forward and invoke.

			Press ? in the dashboard for its keys; docs/dash.md lists them too.
			skiff dash needs a terminal: in scripts use ` + "`skiff status`" + ` and ` + "`skiff logs`" + `.
		`),
		Example: heredoc.Doc(`
			skiff dash
			skiff dash orders payments --log-lines 20000
		`),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Workloads = args
			if opts.LogLines < 100 {
				return cmdutil.Usagef("--log-lines %d is too few; keep at least 100 lines per workload", opts.LogLines)
			}
			if err := checkTimeout(opts.Timeout); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return dashRun(cmd.Context(), f, opts)
		},
	}
	cmd.Flags().IntVar(&opts.LogLines, "log-lines", tui.DefaultLogLines, "log lines kept in memory per workload")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", DefaultTimeout, "how long a rollback or delete waits for the workload")
	cmd.ValidArgsFunction = workloadCompletion(f)
	return cmd
}

func dashRun(ctx context.Context, f *cmdutil.Factory, opts *DashOptions) error {
	ios := f.IOStreams
	if !ios.IsStdoutTTY() {
		return errors.New("skiff dash needs a terminal; use `skiff status` and `skiff logs` in scripts")
	}
	pc, err := loadProjectContext(f, opts.Workloads)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Helm may not write over the screen; the session's events go to the
	// dashboard, which shows them.
	sink, activity := tui.NewActivity(ctx)
	sess, err := pc.sessionWith(ctx, f, sink, nil)
	if err != nil {
		return err
	}
	defer sess.Close()
	backend, err := f.Dashboard(sess, tui.ClusterConfig{Namespace: pc.namespace, Workloads: pc.workloads, Timeout: opts.Timeout, Activity: activity})
	if err != nil {
		return err
	}
	defer backend.Close()

	var workloads []tui.Workload
	releases := map[string]string{}
	for _, w := range pc.workloads {
		workloads = append(workloads, tui.Workload{Name: w.Name, Kind: w.Kind})
		releases[w.Name] = backend.Release(w.Name)
	}
	m := tui.New(ctx, backend, tui.Options{
		Project: pc.project.Name, Namespace: pc.namespace, Context: backend.Context(),
		Workloads: workloads, Releases: releases, LogLines: opts.LogLines, Color: ios.ColorEnabled(),
	})

	// client-go reports watch retries through klog on stderr, which would
	// scribble over the dashboard; the dashboard shows them instead. klog's
	// settings are global: all of them, outputs included, are put back as
	// they were when the dashboard ends.
	defer klog.CaptureState().Restore()
	klog.SetOutput(io.Discard)
	klog.LogToStderr(false)

	// main alone catches signals: its context ends the program.
	p := tea.NewProgram(m, append(programOptions(ios), tea.WithContext(ctx))...)
	if _, err := p.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("running the dashboard: %w", err)
	}
	return nil
}
