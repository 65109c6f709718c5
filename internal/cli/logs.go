package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"time"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/logs/traceid"
)

// LogsOptions are the inputs of `skiff logs`.
type LogsOptions struct {
	Factory *cmdutil.Factory

	Workloads  []string
	Follow     bool
	Since      time.Duration
	Tail       int64
	Container  string
	Previous   bool
	MaxStreams int
	// Trace, when set, keeps only the lines of this trace id (lower case),
	// from every container, in time order.
	Trace string
}

// traceSince is how far back --trace looks when --since does not say.
const traceSince = time.Hour

// NewCmdLogs builds `skiff logs`. runF replaces logsRun in tests.
func NewCmdLogs(f *cmdutil.Factory, runF func(context.Context, *LogsOptions) error) *cobra.Command {
	opts := &LogsOptions{Factory: f}
	cmd := &cobra.Command{
		Use:     "logs [WORKLOAD...]",
		GroupID: "observe",
		Short:   "Print or follow the logs of every pod of workloads",
		Long: heredoc.Doc(`
			Print the logs of every pod of the named workloads (default: all of the
			project), each line prefixed with its pod, in a color of its own on a
			terminal. With --follow, new pods of a rollout are picked up, deleted ones
			dropped, and a dropped stream reconnects without repeating lines.

			-o json prints one JSON object per line: time, workload, pod, container,
			message.

			--trace ID follows one request: it reads the lines of every pod of the
			workloads, their skiff-relay sidecars included, keeps those whose trace id
			is ID (the trace_id field of a JSON line, or trace_id=ID in a line of
			text), and prints them in time order. ID is the 32 hex digits of a W3C
			trace id, or a whole traceparent. It reads the last hour unless --since
			says otherwise, and cannot --follow.
		`),
		Example: heredoc.Doc(`
			skiff logs orders --tail 20
			skiff logs -f
			skiff logs orders --previous      # the crashed container's last run
			skiff logs -f -o json | jq .message
			skiff logs --trace 4bf92f3577b34da6a3ce929d0e0e4736 --since 10m
		`),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Workloads = args
			if opts.MaxStreams < 1 {
				return cmdutil.Usagef("--max-streams %d must be at least 1", opts.MaxStreams)
			}
			if opts.Since < 0 {
				return cmdutil.Usagef("--since %s must not be negative", opts.Since)
			}
			if f.Globals.Output == cmdutil.FormatYAML {
				return cmdutil.Usagef("skiff logs prints lines or JSON: use -o json or no -o")
			}
			if cmd.Flags().Changed("trace") {
				id, err := traceid.Parse(opts.Trace)
				if err != nil {
					return cmdutil.Usagef("--trace: %v", err)
				}
				if opts.Follow {
					return cmdutil.Usagef("--trace reads the lines there are and sorts them by time: drop --follow")
				}
				opts.Trace = id
				if !cmd.Flags().Changed("since") {
					opts.Since = traceSince
				}
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return logsRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&opts.Follow, "follow", "f", false, "keep streaming new lines")
	fl.DurationVar(&opts.Since, "since", 0, "only lines newer than this, e.g. 5m")
	fl.Int64Var(&opts.Tail, "tail", -1, "start with the last N lines of each container (-1: all)")
	fl.StringVarP(&opts.Container, "container", "c", "", "only this container of each pod")
	fl.BoolVarP(&opts.Previous, "previous", "p", false, "the previous instance of each container (after a crash)")
	fl.IntVar(&opts.MaxStreams, "max-streams", 32, "most log streams open at once")
	fl.StringVar(&opts.Trace, "trace", "", "only the lines of this trace id (or traceparent), from every container, in time order (since 1h by default)")
	cmd.ValidArgsFunction = workloadCompletion(f)
	return cmd
}

func logsRun(ctx context.Context, opts *LogsOptions) error {
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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lines := make(chan engine.LogLine, 256)
	done := make(chan error, 1)
	go func() {
		done <- s.Logs(ctx, pc.workloads, engine.LogOptions{
			Container: opts.Container, Since: opts.Since,
			Tail: opts.Tail, Follow: opts.Follow, Previous: opts.Previous, MaxStreams: opts.MaxStreams,
			Notice: func(s string) { fmt.Fprintln(f.IOStreams.ErrOut, "skiff logs:", s) },
		}, lines)
		close(lines)
	}()
	var printErr error
	if opts.Trace != "" {
		printErr = printTrace(f, lines, opts.Trace, opts.Container)
	} else {
		printErr = printLogs(f, f.IOStreams.Out, lines, opts.Container, len(pc.workloads) > 1)
	}
	if printErr != nil {
		return printErr
	}
	if err := <-done; err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// printLogs writes log lines as they come, until lines closes: each with
// its pod (its workload too when there are several), in a color of its
// pod's, or as JSON lines with -o json. It is the only writer of out.
func printLogs(f *cmdutil.Factory, out io.Writer, lines <-chan engine.LogLine, container string, multiWorkload bool) error {
	enc := json.NewEncoder(out)
	color := f.IOStreams.ColorEnabled()
	for l := range lines {
		if f.Globals.Output == cmdutil.FormatJSON {
			if err := enc.Encode(l); err != nil {
				return err
			}
			continue
		}
		prefix := l.Pod
		if container == "" && l.Container != l.Workload {
			prefix += "/" + l.Container
		}
		if multiWorkload {
			prefix = l.Workload + " " + prefix
		}
		if color {
			prefix = podColor(l.Pod) + prefix + "\x1b[0m"
		}
		if _, err := fmt.Fprintf(out, "%s %s\n", prefix, l.Message); err != nil {
			return err
		}
	}
	return nil
}

// printTrace reads every line, then prints those of trace id in time
// order, each with its workload and pod.
func printTrace(f *cmdutil.Factory, lines <-chan engine.LogLine, id, container string) error {
	kept := traceid.Filter(lines, id)
	sorted := make(chan engine.LogLine, len(kept))
	for _, l := range kept {
		sorted <- l
	}
	close(sorted)
	if len(kept) == 0 {
		fmt.Fprintf(f.IOStreams.ErrOut, "skiff logs: no line of trace %s; it may be older than --since, or its pods gone\n", id)
	}
	return printLogs(f, f.IOStreams.Out, sorted, container, true)
}

// podColor picks a stable ANSI color for a pod name.
func podColor(pod string) string {
	palette := []string{"\x1b[36m", "\x1b[33m", "\x1b[32m", "\x1b[35m", "\x1b[34m", "\x1b[96m", "\x1b[93m", "\x1b[92m", "\x1b[95m", "\x1b[94m"}
	h := fnv.New32a()
	h.Write([]byte(pod))
	return palette[h.Sum32()%uint32(len(palette))]
}
