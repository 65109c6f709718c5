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
)

// StatusOptions are the inputs of `skiff status`.
type StatusOptions struct {
	Factory *cmdutil.Factory

	Workloads []string
	Wait      bool
	Timeout   time.Duration
	// Poll is the pause between two reads while waiting (default 2s).
	Poll time.Duration
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

			The exit code is 0 only when every workload is deployed and ready, so
			` + "`skiff status`" + ` works as a CI gate; --wait waits (up to --timeout) for that.
		`),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Workloads = args
			if err := checkTimeout(opts.Timeout); err != nil {
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
	cmd.ValidArgsFunction = workloadCompletion(f)
	return cmd
}

func statusRun(ctx context.Context, opts *StatusOptions) error {
	f := opts.Factory
	pc, err := loadProjectContext(f, opts.Workloads)
	if err != nil {
		return err
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

func printStatus(f *cmdutil.Factory, all []*engine.Status) error {
	// The URL column only when a workload is exposed.
	public := slices.ContainsFunc(all, func(s *engine.Status) bool { return s.URL != "" })
	err := cmdutil.Write(f.IOStreams.Out, f.Globals.Output, all, func(out io.Writer) error {
		fmt.Fprint(out, "WORKLOAD\tKIND\tSTATE\tREVISION\tREADY\tRESTARTS\tIMAGE\tENDPOINT")
		if public {
			fmt.Fprint(out, "\tURL")
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
			fmt.Fprintln(out)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if f.Globals.Output == "" || f.Globals.Output == cmdutil.FormatTable {
		for _, s := range all {
			for _, p := range s.Problems {
				fmt.Fprintf(f.IOStreams.ErrOut, "%s: %s\n", s.Workload, strings.ReplaceAll(p.String(), "\n", "\n  "))
			}
		}
	}
	return nil
}
