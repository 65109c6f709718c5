package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/engine"
)

// HistoryOptions are the inputs of `skiff history`.
type HistoryOptions struct {
	Factory  *cmdutil.Factory
	Workload string
}

// NewCmdHistory builds `skiff history`. runF replaces historyRun in tests.
func NewCmdHistory(f *cmdutil.Factory, runF func(context.Context, *HistoryOptions) error) *cobra.Command {
	opts := &HistoryOptions{Factory: f}
	cmd := &cobra.Command{
		Use:     "history WORKLOAD",
		GroupID: "ship",
		Short:   "Show the release history of a workload",
		Args:    exactArgs(1, "the workload"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Workload = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return historyRun(cmd.Context(), opts)
		},
	}
	cmd.ValidArgsFunction = workloadCompletion(f)
	return cmd
}

func historyRun(ctx context.Context, opts *HistoryOptions) error {
	f := opts.Factory
	pc, err := loadProjectContext(f, []string{opts.Workload})
	if err != nil {
		return err
	}
	s, err := pc.session(ctx, f, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	revs, err := s.History(ctx, pc.workloads[0].Name)
	if err != nil {
		return err
	}
	return cmdutil.Write(f.IOStreams.Out, f.Globals.Output, revs, func(out io.Writer) error {
		fmt.Fprintln(out, "REVISION\tUPDATED\tSTATUS\tIMAGE\tDESCRIPTION")
		for _, r := range revs {
			fmt.Fprintf(out, "%d\t%s\t%s\t%s\t%s\n", r.Revision, r.Updated.Local().Format(time.DateTime), r.Status, shortImage(r.Image), r.Description)
		}
		return nil
	})
}

// shortImage shortens repo@sha256:abcdef... to repo@sha256:abcdef123456.
func shortImage(ref string) string {
	if repo, short, ok := engine.ShortDigest(ref); ok {
		return repo + "@sha256:" + short
	}
	return ref
}

// RollbackOptions are the inputs of `skiff rollback`.
type RollbackOptions struct {
	Factory  *cmdutil.Factory
	Workload string
	// Revision is the one to roll back to (0: the one before the current).
	Revision int
	Timeout  time.Duration
}

// NewCmdRollback builds `skiff rollback`. runF replaces rollbackRun in
// tests.
func NewCmdRollback(f *cmdutil.Factory, runF func(context.Context, *RollbackOptions) error) *cobra.Command {
	opts := &RollbackOptions{Factory: f}
	cmd := &cobra.Command{
		Use:     "rollback WORKLOAD [REVISION]",
		GroupID: "ship",
		Short:   "Roll a workload back to an earlier revision",
		Long: heredoc.Doc(`
			Roll WORKLOAD back to REVISION (default: the revision before the current one)
			and wait until it is ready. Helm records the rollback as a new revision;
			` + "`skiff history`" + ` lists them.
		`),
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return cmdutil.Usagef("skiff rollback takes the workload and, optionally, a revision; got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkTimeout(opts.Timeout); err != nil {
				return err
			}
			opts.Workload, opts.Revision = args[0], 0
			if len(args) == 2 {
				n, err := strconv.Atoi(args[1])
				if err != nil || n < 1 {
					return cmdutil.Usagef("REVISION %q must be a revision number from `skiff history %s`", args[1], args[0])
				}
				opts.Revision = n
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return rollbackRun(cmd.Context(), opts)
		},
	}
	addTimeoutFlag(cmd, &opts.Timeout)
	cmd.ValidArgsFunction = workloadCompletion(f)
	return cmd
}

func rollbackRun(ctx context.Context, opts *RollbackOptions) error {
	f := opts.Factory
	pc, err := loadProjectContext(f, []string{opts.Workload})
	if err != nil {
		return err
	}
	s, err := pc.session(ctx, f, newProgress(f).event)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := verifyRollback(ctx, f, pc, s, pc.workloads[0].Name, opts.Revision); err != nil {
		return err
	}
	_, err = s.Rollback(ctx, pc.workloads[0].Name, opts.Revision, opts.Timeout)
	return err
}

// DeleteOptions are the inputs of `skiff delete`.
type DeleteOptions struct {
	Factory   *cmdutil.Factory
	Workloads []string
	engine.DeleteOptions
}

// NewCmdDelete builds `skiff delete`. runF replaces deleteRun in tests.
func NewCmdDelete(f *cmdutil.Factory, runF func(context.Context, *DeleteOptions) error) *cobra.Command {
	opts := &DeleteOptions{Factory: f}
	cmd := &cobra.Command{
		Use:     "delete [WORKLOAD...]",
		GroupID: "ship",
		Short:   "Uninstall workloads from the cluster",
		Long: heredoc.Doc(`
			Uninstall the named workloads (or every workload of the project with --all):
			their Helm release and every object it created, waiting until they are gone,
			and the Secret of their ` + "`skiff secret`" + ` values (unless --keep-secrets).
			A workload with triggers also loses its consumers on the event bus: the
			events that waited for it are no longer kept for it. The namespace and
			skiff.yaml stay.
		`),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Workloads = args
			if err := checkTimeout(opts.Timeout); err != nil {
				return err
			}
			if len(args) == 0 && !opts.All {
				return cmdutil.Usagef("name the workloads to delete, or use --all for every workload of the project")
			}
			if len(args) > 0 && opts.All {
				return cmdutil.Usagef("use either workload names or --all, not both")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return deleteRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.All, "all", false, "delete every workload of the project")
	cmd.Flags().BoolVar(&opts.KeepSecrets, "keep-secrets", false, "keep the Secret that holds the values set with skiff secret")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", DefaultTimeout, "how long to wait for the workload to be gone")
	cmd.ValidArgsFunction = workloadCompletion(f)
	return cmd
}

func deleteRun(ctx context.Context, opts *DeleteOptions) error {
	f := opts.Factory
	pc, err := loadProjectContext(f, opts.Workloads)
	if err != nil {
		return err
	}
	s, err := pc.session(ctx, f, newProgress(f).event)
	if err != nil {
		return err
	}
	defer s.Close()
	names := make([]string, len(pc.workloads))
	for i, w := range pc.workloads {
		names[i] = w.Name
	}
	return s.Delete(ctx, opts.DeleteOptions, names...)
}
