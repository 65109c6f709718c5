package cli

import (
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

// triggered returns the workloads of p with triggers, among names (all
// when none); a name that is not such a workload is a usage error.
func triggered(p *project.Project, names []string) ([]project.Workload, error) {
	for _, n := range names {
		w, ok := p.Workload(n)
		if !ok {
			return nil, cmdutil.Usagef("the project has no workload %q; it has: %s", n, strings.Join(p.WorkloadNames(), ", "))
		}
		if len(w.Triggers) == 0 {
			return nil, cmdutil.Usagef("%s has no triggers in skiff.yaml: no events are delivered to it", n)
		}
	}
	var out []project.Workload
	for _, w := range p.Workloads {
		if len(w.Triggers) > 0 && (len(names) == 0 || slices.Contains(names, w.Name)) {
			out = append(out, w)
		}
	}
	return out, nil
}

func newCmdEventsStatus(opts *EventsOptions, run func(context.Context, string) error) *cobra.Command {
	f := opts.Factory
	return &cobra.Command{
		Use:   "status [WORKLOAD...]",
		Short: "Show each trigger's backlog, redeliveries and dead letters",
		Long: heredoc.Doc(`
			For each trigger of the named workloads (default: every workload with
			triggers), reads its durable JetStream consumer: the events waiting (PENDING),
			delivered and not answered yet (IN FLIGHT), redelivered, and the workload's
			dead letters. PENDING + IN FLIGHT is the lag KEDA scales a function on. A
			trigger whose consumer does not exist is not deployed yet.
		`),
		Example: heredoc.Doc(`
			skiff events status
			skiff events status thumbs -o json
		`),
		ValidArgsFunction: workloadCompletion(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Workloads = args
			return run(cmd.Context(), "status")
		},
	}
}

func newCmdEventsDLQ(opts *EventsOptions, run func(context.Context, string) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq <command>",
		Short: "The events that exhausted their retries",
		Long: heredoc.Doc(`
			An event whose delivery failed delivery.retries + 1 times is stored in the
			dead-letter stream <stream>-dlq, under dlq.<stream>.<workload>, with why (the
			last error and HTTP status), then acknowledged. list shows them; replay sends
			them back to the trigger that failed them, and removes them once stored.
		`),
	}
	cmd.AddCommand(newCmdEventsDLQList(opts, run), newCmdEventsDLQReplay(opts, run))
	return cmd
}

func newCmdEventsDLQList(opts *EventsOptions, run func(context.Context, string) error) *cobra.Command {
	f := opts.Factory
	return &cobra.Command{
		Use:   "list [WORKLOAD]",
		Short: "List the dead letters",
		Example: heredoc.Doc(`
			skiff events dlq list
			skiff events dlq list thumbs -o json
		`),
		Args:              maxArgs(1, "one workload"),
		ValidArgsFunction: workloadCompletion(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Workloads = args
			return run(cmd.Context(), "dlq list")
		},
	}
}

// replayed is what `events dlq replay` prints.
type replayed struct {
	Seq      uint64 `json:"seq"`
	Workload string `json:"workload"`
	ID       string `json:"id"`
	Type     string `json:"type"`
}

func newCmdEventsDLQReplay(opts *EventsOptions, run func(context.Context, string) error) *cobra.Command {
	f := opts.Factory
	cmd := &cobra.Command{
		Use:   "replay [WORKLOAD]",
		Short: "Deliver dead letters again",
		Long: heredoc.Doc(`
			Stores each chosen dead letter's event again for the trigger that failed it
			(no other trigger gets it a second time), then removes the dead letter. Choose
			them with --seq (from dlq list), or all of them (of WORKLOAD, if named) with
			--all. An event that fails again returns to the dead letters.
		`),
		Example: heredoc.Doc(`
			skiff events dlq replay --seq 12
			skiff events dlq replay thumbs --all
		`),
		Args:              maxArgs(1, "one workload"),
		ValidArgsFunction: workloadCompletion(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.All == (len(opts.Seqs) > 0) {
				return cmdutil.Usagef("choose the dead letters: --seq N (repeatable) or --all")
			}
			opts.Workloads = args
			return run(cmd.Context(), "dlq replay")
		},
	}
	cmd.Flags().UintSliceVar(&opts.Seqs, "seq", nil, "the dead letter's sequence `number` (repeatable)")
	cmd.Flags().Lookup("seq").DefValue = "" // none: not "(default [])" in the help
	cmd.Flags().BoolVar(&opts.All, "all", false, "every dead letter (of WORKLOAD, if named)")
	return cmd
}

func eventsDLQReplay(ctx context.Context, opts *EventsOptions) error {
	f := opts.Factory
	args, all, seqs := opts.Workloads, opts.All, opts.Seqs
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	dls, conn, err := readDeadLetters(ctx, opts, args)
	if err != nil {
		return err
	}
	defer conn.Close()
	var chosen []engine.DeadLetter
	for _, d := range dls {
		if all || slices.Contains(seqs, uint(d.Seq)) {
			chosen = append(chosen, d)
		}
	}
	for _, s := range seqs {
		if !slices.ContainsFunc(chosen, func(d engine.DeadLetter) bool { return d.Seq == uint64(s) }) {
			return cmdutil.Usagef("--seq %d: no such dead letter%s; `skiff events dlq list` shows them", s, ofWorkload(args))
		}
	}
	out := []replayed{}
	for _, d := range chosen {
		if err := conn.Replay(ctx, d); err != nil {
			return err
		}
		out = append(out, replayed{Seq: d.Seq, Workload: d.Workload, ID: d.ID, Type: d.Type})
	}
	return cmdutil.Write(f.IOStreams.Out, f.Globals.Output, out, func(w io.Writer) error {
		for _, r := range out {
			fmt.Fprintf(w, "Replayed #%d to %s: %s %s\n", r.Seq, r.Workload, r.Type, r.ID)
		}
		if len(out) == 0 {
			fmt.Fprintln(f.IOStreams.ErrOut, "No dead letters.")
		}
		return nil
	})
}

func ofWorkload(args []string) string {
	if len(args) == 1 {
		return " of " + args[0]
	}
	return ""
}

// readDeadLetters connects to the bus and lists the dead letters of the
// workload in args (of all with none).
func readDeadLetters(ctx context.Context, opts *EventsOptions, args []string) ([]engine.DeadLetter, engine.Bus, error) {
	p, conn, where, err := dialBus(ctx, opts)
	if err != nil {
		return nil, nil, err
	}
	if _, err := triggered(p, args); err != nil {
		conn.Close()
		return nil, nil, err
	}
	workload := ""
	if len(args) == 1 {
		workload = args[0]
	}
	dls, err := conn.DeadLetters(ctx, workload)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("the bus %s: %w", where, err)
	}
	if dls == nil {
		dls = []engine.DeadLetter{}
	}
	return dls, conn, nil
}

func eventsStatus(ctx context.Context, opts *EventsOptions) error {
	f := opts.Factory
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	p, conn, _, err := dialBus(ctx, opts)
	if err != nil {
		return err
	}
	defer conn.Close()
	ws, err := triggered(p, opts.Workloads)
	if err != nil {
		return err
	}
	out, err := conn.Triggers(ctx, ws)
	if err != nil {
		return err
	}
	streams, err := conn.Streams(ctx)
	if err != nil {
		return err
	}
	// Before the events age out: said whatever the output format.
	for _, s := range out {
		if s.AgingOut {
			fmt.Fprintf(f.IOStreams.ErrOut, "warning: %s's trigger %s has an event waiting since %s; the stream drops it at %s (events.retention.maxAge): scale it up or fix what fails\n",
				s.Workload, s.Trigger, s.Oldest.Local().Format(time.RFC3339), s.AgesOut.Local().Format(time.RFC3339))
		}
	}
	return cmdutil.Write(f.IOStreams.Out, f.Globals.Output, out, func(w io.Writer) error {
		if len(out) == 0 {
			fmt.Fprintln(f.IOStreams.ErrOut, "No workload of the project has triggers.")
		} else {
			fmt.Fprintln(w, "WORKLOAD\tTRIGGER\tPENDING\tIN FLIGHT\tREDELIVERED\tDEAD LETTERS\tOLDEST WAITING")
		}
		for _, s := range out {
			if !s.Deployed {
				fmt.Fprintf(w, "%s\t%s\tnot deployed\t\t\t%d\t\n", s.Workload, s.Trigger, s.DeadLetters)
				continue
			}
			oldest := "-"
			if s.Oldest != nil {
				oldest = time.Since(*s.Oldest).Round(time.Second).String() + " ago"
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%s\n", s.Workload, s.Trigger, s.Pending, s.AckPending, s.Redelivered, s.DeadLetters, oldest)
		}
		if len(streams) > 0 {
			fmt.Fprintln(w, "\nSTREAM\tEVENTS\tSIZE\tMAX SIZE\tMAX AGE\tOLDEST")
		}
		for _, s := range streams {
			limit, age, first := "none", "none", "-"
			if s.MaxBytes > 0 {
				limit = fmt.Sprintf("%s (%d%%)", humanBytes(s.MaxBytes), s.Bytes*100/uint64(s.MaxBytes))
			}
			if s.MaxAge > 0 {
				age = s.MaxAge.String()
			}
			if s.First != nil {
				first = time.Since(*s.First).Round(time.Second).String() + " ago"
			}
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.Stream, s.Events, humanBytes(int64(s.Bytes)), limit, age, first)
		}
		return nil
	})
}

func eventsDLQList(ctx context.Context, opts *EventsOptions) error {
	f := opts.Factory
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	dls, conn, err := readDeadLetters(ctx, opts, opts.Workloads)
	if err != nil {
		return err
	}
	defer conn.Close()
	return cmdutil.Write(f.IOStreams.Out, f.Globals.Output, dls, func(w io.Writer) error {
		if len(dls) == 0 {
			fmt.Fprintln(f.IOStreams.ErrOut, "No dead letters.")
			return nil
		}
		fmt.Fprintln(w, "SEQ\tWORKLOAD\tTYPE\tID\tSTATUS\tDELIVERIES\tSTORED\tREASON")
		for _, d := range dls {
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", d.Seq, d.Workload, d.Type, d.ID, d.Status, d.Deliveries,
				d.Stored.Local().Format(time.RFC3339), d.Reason)
		}
		return nil
	})
}
