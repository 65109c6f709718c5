package cli

import (
	"cmp"
	"context"
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

// StatusOptions are the inputs of `skiff status`.
type StatusOptions struct {
	Factory *cmdutil.Factory

	Workloads []string
	Wait      bool
	Timeout   time.Duration
	// Poll is the pause between two reads while waiting (default 2s).
	Poll time.Duration
	// Serving are --window and --prometheus: how each workload served,
	// read for -o wide, json and yaml.
	Serving servingFlags
}

// NewCmdStatus builds `skiff status`. runF replaces statusRun in tests.
func NewCmdStatus(f *cmdutil.Factory, runF func(context.Context, *StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{Factory: f, Poll: 2 * time.Second}
	cmd := &cobra.Command{
		Use:     "status [WORKLOAD...]",
		GroupID: "observe",
		Short:   "Show what runs of each workload; fail when not healthy",
		Long: heredoc.Doc(`
			Show every workload of the project (or the named ones): release status and
			revision, image, ready/desired pods, restarts and endpoint.

			With -o wide (and in -o json and -o yaml, under "serving") it adds how
			each workload served over the last --window (5m): requests per second,
			the share of errors (5xx and timeouts), p50 and p99 latency, cold
			starts and how long their first callers waited, and a row per event
			trigger (delivered per second, failures, delivery latency, lag).
			skiff reads them from each ready pod's skiff-relay through the API
			server, or from a Prometheus (metrics.prometheus in skiff.yaml, or
			--prometheus). A workload at zero pods reads as idle.

			The exit code is 0 only when every workload is deployed and ready, so
			` + "`skiff status`" + ` works as a CI gate; --wait waits (up to --timeout) for that.
		`),
		Example: heredoc.Doc(`
			skiff status -o wide
			skiff status orders -o json --window 1m
			skiff status -o wide --prometheus http://127.0.0.1:9090
		`),
		Annotations: map[string]string{cmdutil.WideAnnotation: "true"},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Workloads = args
			if err := checkTimeout(opts.Timeout); err != nil {
				return err
			}
			if err := opts.Serving.check(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return statusRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Wait, "wait", false, "wait until every workload is healthy")
	addTimeoutFlag(cmd, &opts.Timeout)
	opts.Serving.add(cmd)
	cmd.ValidArgsFunction = workloadCompletion(f)
	return cmd
}

func statusRun(ctx context.Context, opts *StatusOptions) error {
	f := opts.Factory
	pc, err := loadProjectContext(f, opts.Workloads)
	if err != nil {
		return err
	}
	serving := f.Globals.Output != "" && f.Globals.Output != cmdutil.FormatTable
	if serving {
		if err := opts.Serving.checkFor(pc.project); err != nil {
			return err
		}
	}
	s, err := pc.session(ctx, f, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	deadline := time.Now().Add(opts.Timeout)
	for {
		all, err := s.Statuses(ctx, pc.workloads)
		if err != nil {
			return err
		}
		healthy := true
		for _, st := range all {
			healthy = healthy && st.Healthy()
		}
		if healthy || !opts.Wait || time.Now().After(deadline) {
			if serving {
				readServing(ctx, f, s, pc.workloads, opts.Serving, all)
			}
			if err := printStatus(f, all); err != nil {
				return err
			}
			if !healthy {
				return &cmdutil.SilentError{Code: cmdutil.ExitFailure}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(cmp.Or(opts.Poll, 2*time.Second)):
		}
	}
}

// readServing reads how each workload served into its status. The
// statuses stand without them when they cannot be read: a warning says
// why.
func readServing(ctx context.Context, f *cmdutil.Factory, s engine.Session, ws []project.Workload, flags servingFlags, all []*engine.Status) {
	read, err := s.Stats(ctx, ws, flags.options())
	if err != nil {
		fmt.Fprintf(f.IOStreams.ErrOut, "%s how the workloads serve could not be read: %v\n", f.IOStreams.ColorScheme().Yellow("Warning:"), err)
		return
	}
	by := map[string]engine.WorkloadStats{}
	for _, r := range read {
		by[r.Workload] = r
	}
	for _, st := range all {
		if r, ok := by[st.Workload]; ok {
			st.Serving = engine.Summarize(r, flags.Window)
		}
	}
}

func printStatus(f *cmdutil.Factory, all []*engine.Status) error {
	// The URL column only when a workload is exposed.
	public := slices.ContainsFunc(all, func(s *engine.Status) bool { return s.URL != "" })
	wide := f.Globals.Output == cmdutil.FormatWide
	err := cmdutil.Write(f.IOStreams.Out, f.Globals.Output, all, func(out io.Writer) error {
		cols := 8
		fmt.Fprint(out, "WORKLOAD\tKIND\tSTATE\tREVISION\tREADY\tRESTARTS\tIMAGE\tENDPOINT")
		if public {
			fmt.Fprint(out, "\tURL")
			cols++
		}
		if wide {
			fmt.Fprint(out, "\t"+servingHeader)
		}
		fmt.Fprintln(out)
		for _, s := range all {
			rev := "-"
			if s.Revision > 0 {
				rev = fmt.Sprint(s.Revision)
			}
			state := s.State
			if s.State == engine.StateIdle && s.Scaling != "" {
				_, on, _ := strings.Cut(s.Scaling, " pods ") // "0-5 pods on request"
				state += " (scales " + on + ")"
			}
			fmt.Fprintf(out, "%s\t%s\t%s\t%s\t%d/%d\t%d\t%s\t%s", s.Workload, s.Kind, state, rev, s.Ready, s.Desired, s.Restarts, shortImage(s.Image), s.Endpoint)
			if public {
				fmt.Fprintf(out, "\t%s", cmp.Or(s.URL, "-"))
			}
			if wide {
				fmt.Fprint(out, "\t"+servingCells(s.Serving, s.Events))
			}
			fmt.Fprintln(out)
			if wide {
				triggerRows(out, s.Serving, cols)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if cmdutil.IsTable(f.Globals.Output) {
		for _, s := range all {
			if wide {
				servingNotes(f.IOStreams.ErrOut, s.Workload, s.Serving, "")
			}
			for _, p := range s.Problems {
				fmt.Fprintf(f.IOStreams.ErrOut, "%s: %s\n", s.Workload, strings.ReplaceAll(p.String(), "\n", "\n  "))
			}
		}
	}
	return nil
}
