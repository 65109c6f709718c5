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

// NewCmdHistory builds `skiff history`.
func NewCmdHistory(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "history WORKLOAD",
		GroupID: "ship",
		Short:   "Show the release history of a workload",
		Args:    exactArgs(1, "the workload"),
		RunE: func(cmd *cobra.Command, args []string) error {
			pc, err := loadProjectContext(f, args)
			if err != nil {
				return err
			}
			s, err := pc.session(cmd.Context(), f, nil)
			if err != nil {
				return err
			}
			defer s.Close()
			revs, err := s.History(cmd.Context(), pc.workloads[0].Name)
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
		},
	}
	cmd.ValidArgsFunction = workloadCompletion(f)
	return cmd
}

// shortImage shortens repo@sha256:abcdef... to repo@sha256:abcdef123456.
func shortImage(ref string) string {
	if repo, short, ok := engine.ShortDigest(ref); ok {
		return repo + "@sha256:" + short
	}
	return ref
}

// NewCmdRollback builds `skiff rollback`.
func NewCmdRollback(f *cmdutil.Factory) *cobra.Command {
	var timeout time.Duration
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
			if err := checkTimeout(timeout); err != nil {
				return err
			}
			revision := 0
			if len(args) == 2 {
				n, err := strconv.Atoi(args[1])
				if err != nil || n < 1 {
					return cmdutil.Usagef("REVISION %q must be a revision number from `skiff history %s`", args[1], args[0])
				}
				revision = n
			}
			return rollbackRun(cmd.Context(), f, args[0], revision, timeout)
		},
	}
	addTimeoutFlag(cmd, &timeout)
	cmd.ValidArgsFunction = workloadCompletion(f)
	return cmd
}

func rollbackRun(ctx context.Context, f *cmdutil.Factory, workload string, revision int, timeout time.Duration) error {
	pc, err := loadProjectContext(f, []string{workload})
	if err != nil {
		return err
	}
	s, err := pc.session(ctx, f, newProgress(f).event)
	if err != nil {
		return err
	}
	defer s.Close()
	_, err = s.Rollback(ctx, pc.workloads[0].Name, revision, timeout)
	return err
}

// NewCmdDelete builds `skiff delete`.
func NewCmdDelete(f *cmdutil.Factory) *cobra.Command {
	var all, keepSecrets bool
	var timeout time.Duration
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
			if err := checkTimeout(timeout); err != nil {
				return err
			}
			if len(args) == 0 && !all {
				return cmdutil.Usagef("name the workloads to delete, or use --all for every workload of the project")
			}
			if len(args) > 0 && all {
				return cmdutil.Usagef("use either workload names or --all, not both")
			}
			pc, err := loadProjectContext(f, args)
			if err != nil {
				return err
			}
			s, err := pc.session(cmd.Context(), f, newProgress(f).event)
			if err != nil {
				return err
			}
			defer s.Close()
			names := make([]string, len(pc.workloads))
			for i, w := range pc.workloads {
				names[i] = w.Name
			}
			return s.Delete(cmd.Context(), engine.DeleteOptions{KeepSecrets: keepSecrets, All: all, Timeout: timeout}, names...)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "delete every workload of the project")
	cmd.Flags().BoolVar(&keepSecrets, "keep-secrets", false, "keep the Secret that holds the values set with skiff secret")
	cmd.Flags().DurationVar(&timeout, "timeout", DefaultTimeout, "how long to wait for the workload to be gone")
	cmd.ValidArgsFunction = workloadCompletion(f)
	return cmd
}
