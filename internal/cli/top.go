package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/metrics/window"
	"github.com/skiffdev/skiff/internal/project"
)

// TopOptions are the inputs of `skiff top`.
type TopOptions struct {
	Factory *cmdutil.Factory

	Workloads []string
	Serving   servingFlags
	// Interval is the pause between two refreshes.
	Interval time.Duration
	// Once prints one refresh and ends.
	Once bool

	// Ticks, when set, replaces the refresh clock (tests); Now the time
	// of a read (time.Now when nil).
	Ticks <-chan time.Time
	Now   func() time.Time
}

// NewCmdTop builds `skiff top`. runF replaces topRun in tests.
func NewCmdTop(f *cmdutil.Factory, runF func(context.Context, *TopOptions) error) *cobra.Command {
	opts := &TopOptions{Factory: f}
	cmd := &cobra.Command{
		Use:     "top [WORKLOAD...]",
		GroupID: "observe",
		Short:   "Show how each workload serves, refreshed every 2 seconds",
		Long: heredoc.Doc(`
			Show how each workload of the project (or the named ones) serves, refreshed
			every --interval until Ctrl-C, as kubectl top and htop do: ready pods,
			requests per second, the share of errors (5xx and timeouts), p50 and p99
			latency, cold starts and how long their first callers waited over the
			last --window, and a row per event trigger (delivered per second,
			failures, delivery latency, lag).

			skiff reads each ready pod's skiff-relay through the API server and keeps
			what it read in memory: the figures of a pod that goes (a scale to zero)
			stay in the window for as long as top runs. With metrics.prometheus in
			skiff.yaml, or --prometheus, it queries that Prometheus instead.

			On a terminal the screen is redrawn; otherwise (or with --once) each
			refresh is printed after the last, -o json as one JSON object a line.
		`),
		Example: heredoc.Doc(`
			skiff top
			skiff top orders --window 1m
			skiff top --once -o json
		`),
		Annotations: map[string]string{cmdutil.WideAnnotation: "true"},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Workloads = args
			if err := opts.Serving.check(); err != nil {
				return err
			}
			if opts.Interval < 500*time.Millisecond {
				return cmdutil.Usagef("--interval %s is too short; use 500ms or more", opts.Interval)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return topRun(cmd.Context(), opts)
		},
	}
	opts.Serving.add(cmd)
	cmd.Flags().DurationVar(&opts.Interval, "interval", 2*time.Second, "how often to refresh")
	cmd.Flags().BoolVar(&opts.Once, "once", false, "print once and end")
	cmd.ValidArgsFunction = workloadCompletion(f)
	return cmd
}

// topFrame is one refresh (what -o json prints a line of).
type topFrame struct {
	Time      time.Time        `json:"time"`
	Workloads []*engine.Status `json:"workloads"`
	// Error says why the figures could not be read this time.
	Error string `json:"error,omitempty"`
}

func topRun(ctx context.Context, opts *TopOptions) error {
	f := opts.Factory
	pc, err := loadProjectContext(f, opts.Workloads)
	if err != nil {
		return err
	}
	if err := opts.Serving.checkFor(pc.project); err != nil {
		return err
	}
	s, err := pc.session(ctx, f, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	ticks := opts.Ticks
	if ticks == nil && !opts.Once {
		t := time.NewTicker(cmp.Or(opts.Interval, 2*time.Second))
		defer t.Stop()
		ticks = t.C
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	mem := &window.Memory{Window: opts.Serving.Window}
	redraw := f.IOStreams.IsStdoutTTY() && cmdutil.IsTable(f.Globals.Output) && !opts.Once
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return nil
			case <-ticks:
			}
		}
		frame, err := readTop(ctx, s, pc.workloads, opts.Serving, mem, now)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := printTop(f, frame, opts.Serving, redraw, first); err != nil {
			return err
		}
		if opts.Once {
			return nil
		}
	}
}

// readTop reads the statuses and, into mem, the figures; figures that
// cannot be read are the frame's Error, not the end of top.
func readTop(ctx context.Context, s engine.Session, ws []project.Workload, flags servingFlags, mem *window.Memory, now func() time.Time) (*topFrame, error) {
	all, err := s.Statuses(ctx, ws)
	if err != nil {
		return nil, err
	}
	frame := &topFrame{Time: now(), Workloads: all}
	read, err := s.Stats(ctx, ws, flags.options())
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		frame.Error = err.Error()
		return frame, nil
	}
	by := map[string]engine.WorkloadStats{}
	for _, r := range mem.Add(frame.Time, read) {
		by[r.Workload] = r
	}
	for _, st := range all {
		if r, ok := by[st.Workload]; ok {
			st.Serving = engine.Summarize(r, flags.Window)
		}
	}
	return frame, nil
}

func printTop(f *cmdutil.Factory, frame *topFrame, flags servingFlags, redraw, first bool) error {
	out := f.IOStreams.Out
	switch f.Globals.Output {
	case cmdutil.FormatJSON:
		return json.NewEncoder(out).Encode(frame)
	case cmdutil.FormatYAML:
		data, err := yaml.Marshal(frame)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "---\n%s", data)
		return err
	}
	var b strings.Builder
	if redraw {
		b.WriteString("\x1b[H\x1b[2J") // home, clear
	} else if !first {
		b.WriteString("\n")
	}
	source := "the pods"
	if len(frame.Workloads) > 0 && frame.Workloads[0].Serving != nil && frame.Workloads[0].Serving.Source == engine.SourcePrometheus {
		source = "Prometheus"
	}
	fmt.Fprintf(&b, "%s  last %s, from %s\n", frame.Time.Format("15:04:05"), flags.Window, source)
	if frame.Error != "" {
		fmt.Fprintf(&b, "the figures could not be read: %s\n", frame.Error)
	}
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKLOAD\tSTATE\tREADY\t"+servingHeader)
	for _, s := range frame.Workloads {
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\n", s.Workload, s.State, s.Ready, s.Desired, servingCells(s.Serving, s.Events))
		triggerRows(tw, s.Serving, 3)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range frame.Workloads {
		// Under the table: on stderr they would scroll the screen away.
		servingNotes(&b, s.Workload, s.Serving, "since top started")
	}
	_, err := io.WriteString(out, b.String())
	return err
}
