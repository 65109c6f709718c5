package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/eventstream"
	"github.com/skiffdev/skiff/internal/project"
)

// EventsOptions are the inputs of `skiff events` and its verbs.
type EventsOptions struct {
	Factory *cmdutil.Factory
	// Verb is publish, tail, status, dlq list or dlq replay.
	Verb string
	// publish: the event's type, source, id and data (JSON; nil: none).
	Type, Source, ID string
	Data             []byte
	// tail: the type filter (Type), from how long ago, how many (0: until
	// interrupted).
	Since time.Duration
	Count int
	// status, dlq: the workloads named.
	Workloads []string
	// dlq replay: the dead letters chosen, or all of them.
	Seqs []uint
	All  bool
	// Local is --local: true uses the bus of the project's running skiff
	// dev --local, false events.bus; nil (not given): dev's when one runs.
	Local *bool
}

// NewCmdEvents is `skiff events`: the project's event bus. runF replaces
// eventsRun in tests.
func NewCmdEvents(f *cmdutil.Factory, runF func(context.Context, *EventsOptions) error) *cobra.Command {
	opts := &EventsOptions{Factory: f}
	var local bool
	var cmd *cobra.Command
	run := func(ctx context.Context, verb string) error {
		opts.Verb = verb
		if fl := cmd.PersistentFlags().Lookup("local"); fl.Changed {
			opts.Local = &local
		}
		if runF != nil {
			return runF(ctx, opts)
		}
		return eventsRun(ctx, opts)
	}
	cmd = &cobra.Command{
		Use:     "events <command>",
		GroupID: "observe",
		Short:   "The project's event bus (NATS JetStream)",
		Long: heredoc.Doc(`
			The project's events go to the NATS server with JetStream that skiff.yaml names
			in events.bus, in the stream events.stream (the project's name by default), under
			the subjects <stream>.<type>. A bus that is a Service of the cluster
			(<service>.<namespace>.svc...) is reached through a port-forward.

			While skiff dev --local runs in the project, its bus (in that process) is
			used instead: it says where it is in .skiff/dev.json. --local insists on
			it; --local=false uses events.bus even then. See docs/events.md.
		`),
	}
	cmd.PersistentFlags().BoolVar(&local, "local", false, "use the bus of the project's running skiff dev --local (default: when one runs)")
	cmd.AddCommand(newCmdEventsPublish(opts, run), newCmdEventsTail(opts, run), newCmdEventsStatus(opts, run), newCmdEventsDLQ(opts, run))
	return cmd
}

func eventsRun(ctx context.Context, opts *EventsOptions) error {
	switch opts.Verb {
	case "publish":
		return eventsPublish(ctx, opts)
	case "tail":
		return eventsTail(ctx, opts)
	case "status":
		return eventsStatus(ctx, opts)
	case "dlq list":
		return eventsDLQList(ctx, opts)
	case "dlq replay":
		return eventsDLQReplay(ctx, opts)
	}
	return fmt.Errorf("skiff events has no verb %q", opts.Verb)
}

// published is what `events publish` prints.
type published struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Source    string `json:"source"`
	Subject   string `json:"subject"`
	Stream    string `json:"stream"`
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate"`
}

func newCmdEventsPublish(opts *EventsOptions, run func(context.Context, string) error) *cobra.Command {
	f := opts.Factory
	var data string
	cmd := &cobra.Command{
		Use:   "publish TYPE",
		Short: "Store one CloudEvent on the bus",
		Long: heredoc.Doc(`
			Stores one CloudEvent of type TYPE in the project's stream and returns once
			JetStream has it. The stream (and its dead-letter stream) are created when
			missing. A second event with the same source and id within two minutes is
			stored once.
		`),
		Example: heredoc.Doc(`
			skiff events publish com.example.image.uploaded --data '{"name":"cat.png"}'
			skiff events publish com.example.order.placed --source /orders --data @order.json -o json
		`),
		Args: exactArgs(1, "the event's type"),
		RunE: func(cmd *cobra.Command, args []string) error {
			typ := args[0]
			if err := eventstream.CheckType(typ, false); err != nil {
				return cmdutil.Usagef("the type %q %v; use a CloudEvent type such as com.example.image.uploaded", typ, err)
			}
			body, err := eventData(data, f.IOStreams.In)
			if err != nil {
				return err
			}
			opts.Type, opts.Data = typ, body
			return run(cmd.Context(), "publish")
		},
	}
	cmd.Flags().StringVar(&opts.Source, "source", "/skiff/cli", "the event's source")
	cmd.Flags().StringVar(&data, "data", "", "the event's data: JSON, @FILE, or @- for stdin")
	cmd.Flags().StringVar(&opts.ID, "id", "", "the event's id (default: a new random one)")
	return cmd
}

// dialBus loads the project and connects to its bus: the one of the
// project's running `skiff dev --local` (with --local, or when one runs
// and --local=false is not given), else events.bus, through the cluster
// only when the bus is one of its Services. where names the bus.
func dialBus(ctx context.Context, opts *EventsOptions) (p *project.Project, b engine.Bus, where string, err error) {
	f := opts.Factory
	root, p, err := loadProject(f)
	if err != nil {
		return nil, nil, "", err
	}
	if (opts.Local == nil || *opts.Local) && f.LocalBus != nil {
		b, where, err := f.LocalBus(ctx, root, p)
		switch {
		case err == nil:
			if f.Globals.Output == "" {
				fmt.Fprintf(f.IOStreams.ErrOut, "Using the bus of %s\n", where)
			}
			return p, b, where, nil
		case opts.Local != nil:
			return nil, nil, "", fmt.Errorf("%w; start `skiff dev --local` in this project, or drop --local", err)
		case !errors.Is(err, engine.ErrNoLocalBus):
			return nil, nil, "", err
		}
	}
	if p.Events == nil || p.Events.Bus == "" {
		return nil, nil, "", cmdutil.Manifestf("skiff.yaml has no events.bus, and no skiff dev --local runs for this project; start `skiff dev --local`, or add `events: {bus: nats://HOST:4222}` (see docs/events.md)")
	}
	pc := &projectContext{root: root, project: p, namespace: p.Namespace}
	conn, err := f.Bus(ctx, pc.sessionConfig(f, nil, helmLog(f)))
	if err != nil {
		return nil, nil, "", err
	}
	return p, conn, p.Events.Bus, nil
}

// eventData reads --data: JSON as given, from @FILE, or from stdin with @-.
func eventData(data string, stdin io.Reader) ([]byte, error) {
	if data == "" {
		return nil, nil
	}
	b := []byte(data)
	if name, ok := strings.CutPrefix(data, "@"); ok {
		var err error
		if name == "-" {
			b, err = io.ReadAll(io.LimitReader(stdin, 1<<20))
		} else {
			b, err = os.ReadFile(name)
		}
		if err != nil {
			return nil, cmdutil.Usagef("--data %s: %v", data, err)
		}
	}
	if !json.Valid(b) {
		return nil, cmdutil.Usagef("--data is not JSON; give a JSON value such as '{\"name\":\"cat.png\"}', or @FILE")
	}
	return b, nil
}

// tailed is one event `events tail` prints.
type tailed struct {
	Seq     uint64            `json:"seq"`
	Subject string            `json:"subject"`
	Stored  time.Time         `json:"stored"`
	Attrs   map[string]string `json:"attributes"`
	Data    json.RawMessage   `json:"data,omitempty"`
	Text    string            `json:"text,omitempty"` // data that is not JSON
}

func newCmdEventsTail(opts *EventsOptions, run func(context.Context, string) error) *cobra.Command {
	var typ string
	var since time.Duration
	var count int
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Print the project's events as they are stored",
		Long: heredoc.Doc(`
			Prints the events of the project's stream as JetStream stores them, until
			interrupted or, with --count, after that many. --since starts that long ago
			instead of now. It reads with an ephemeral ordered consumer: it acknowledges
			nothing and takes nothing from the functions. -o json prints one JSON object a
			line.
		`),
		Example: heredoc.Doc(`
			skiff events tail
			skiff events tail --type 'com.example.*' --since 10m -o json
		`),
		Args: exactArgs(0, "none"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := eventstream.CheckType(typ, true); err != nil {
				return cmdutil.Usagef("--type %q %v; use a CloudEvent type, a prefix such as com.example.*, or *", typ, err)
			}
			if since < 0 || count < 0 {
				return cmdutil.Usagef("--since and --count may not be negative")
			}
			opts.Type, opts.Since, opts.Count = typ, since, count
			return run(cmd.Context(), "tail")
		},
	}
	cmd.Flags().StringVar(&typ, "type", "*", "the events' type, or a prefix such as com.example.*")
	cmd.Flags().DurationVar(&since, "since", 0, "start this long ago instead of now (e.g. 10m)")
	cmd.Flags().IntVar(&count, "count", 0, "stop after this many events (0: until interrupted)")
	return cmd
}

func eventsPublish(ctx context.Context, opts *EventsOptions) error {
	f := opts.Factory
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, conn, where, err := dialBus(ctx, opts)
	if err != nil {
		return err
	}
	defer conn.Close()
	id := opts.ID
	if id == "" {
		b := make([]byte, 12)
		rand.Read(b)
		id = hex.EncodeToString(b)
	}
	ev := engine.CloudEvent{Attrs: map[string]string{"specversion": "1.0", "id": id, "source": opts.Source, "type": opts.Type,
		"time": time.Now().UTC().Format(time.RFC3339Nano)}}
	if opts.Data != nil {
		ev.ContentType, ev.Data = "application/json", opts.Data
	}
	ack, err := conn.Publish(ctx, ev)
	if err != nil && (ack == nil || ack.Subject == "") {
		return fmt.Errorf("the bus %s: %w", where, err)
	}
	if err != nil {
		return fmt.Errorf("publishing to %s on %s: %w", ack.Subject, where, err)
	}
	out := published{ID: id, Type: opts.Type, Source: opts.Source, Subject: ack.Subject, Stream: ack.Stream, Seq: ack.Seq, Duplicate: ack.Duplicate}
	return cmdutil.Write(f.IOStreams.Out, f.Globals.Output, out, func(w io.Writer) error {
		what := "Stored"
		if out.Duplicate {
			what = "Already had"
		}
		fmt.Fprintf(w, "%s %s %s as %s #%d\n", what, opts.Type, id, out.Stream, out.Seq)
		return nil
	})
}

func eventsTail(ctx context.Context, opts *EventsOptions) error {
	f := opts.Factory
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, conn, where, err := dialBus(dctx, opts)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close()
	msgs, err := conn.Tail(ctx, opts.Type, opts.Since)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, msgs.Stop)
	defer stop()
	if f.Globals.Output == "" {
		fmt.Fprintf(f.IOStreams.ErrOut, "Following %s on %s (Ctrl-C to stop)\n", msgs.Filter(), where)
	}
	enc := json.NewEncoder(f.IOStreams.Out)
	for n := 0; opts.Count == 0 || n < opts.Count; n++ {
		ev, err := msgs.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		t := tailed{Seq: ev.Seq, Subject: ev.Subject, Stored: ev.Stored, Attrs: ev.Attrs}
		if json.Valid(ev.Data) {
			t.Data = ev.Data
		} else {
			t.Text = string(ev.Data)
		}
		if f.Globals.Output != "" {
			if err := enc.Encode(t); err != nil {
				return err
			}
			continue
		}
		body := string(t.Data)
		if body == "" {
			body = t.Text
		}
		fmt.Fprintf(f.IOStreams.Out, "%s #%d %s %s %s %s\n", t.Stored.Format(time.RFC3339), t.Seq,
			ev.Attrs["type"], ev.Attrs["source"], ev.Attrs["id"], body)
	}
	return nil
}
