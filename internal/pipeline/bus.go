package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skiffdev/skiff/internal/bus"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/kube"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/relay"
	"github.com/skiffdev/skiff/internal/relay/relayplan"
)

// BusConn is a connection to a project's event bus (through a
// port-forward when the bus is a Service of the cluster).
type BusConn = bus.Conn

// BusFiles are the files the pipeline's project reaches its bus with.
func (pl *Pipeline) BusFiles() project.BusFiles {
	getenv := pl.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	return pl.Project.Events.BusFiles(pl.Root, getenv)
}

// BusAuth is how the commands connect to the project's bus: the CLI's
// credentials and the bus's CA.
func BusAuth(f project.BusFiles) bus.Auth { return bus.Auth{Creds: f.Creds, CA: f.CA} }

// DialBus connects to the project's bus with auth, reaching the cluster
// (connect) only when the bus is one of its Services.
func DialBus(ctx context.Context, p *project.Project, auth bus.Auth, connect func(context.Context) (*Session, error)) (*BusConn, error) {
	var kc *kube.Client
	if u, err := url.Parse(p.Events.Bus); err == nil {
		if _, _, inCluster := kube.ServiceHost(u.Hostname()); inCluster {
			s, err := connect(ctx)
			if err != nil {
				return nil, err
			}
			kc = s.Kube
		}
	}
	return bus.Dial(ctx, kc, p.Events.Bus, auth)
}

// TailConsumer reads the events of stream that match filter as they are
// stored (since > 0: from that long ago), with an ephemeral ordered
// consumer that acknowledges nothing.
func TailConsumer(ctx context.Context, conn *BusConn, stream, filter string, since time.Duration) (jetstream.MessagesContext, error) {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverNewPolicy}
	if since > 0 {
		start := time.Now().Add(-since)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	cons, err := conn.JS.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, err
	}
	return cons.Messages()
}

// OpenLocalBus connects to the bus of the `skiff dev --local` running for
// the project p at root; where says which. When none runs (also when one
// left a stale state file), the error wraps engine.ErrNoLocalBus.
func OpenLocalBus(ctx context.Context, root string, p *project.Project) (b engine.Bus, where string, err error) {
	st, err := bus.FindLocal(root)
	if errors.Is(err, bus.ErrNoLocalBus) {
		return nil, "", fmt.Errorf("%w%s", engine.ErrNoLocalBus, strings.TrimPrefix(err.Error(), bus.ErrNoLocalBus.Error()))
	}
	if err != nil {
		return nil, "", err
	}
	// The bus of skiff dev --local is open, on loopback only.
	conn, err := bus.Dial(ctx, nil, st.Bus, bus.Auth{})
	if err != nil {
		return nil, "", fmt.Errorf("the bus of skiff dev --local (pid %d): %w", st.PID, err)
	}
	return &busClient{conn: conn, stream: relayplan.Stream(p), project: p, letters: map[uint64]relay.DeadLetter{}},
		fmt.Sprintf("skiff dev --local (pid %d) at %s", st.PID, st.Bus), nil
}

// OpenBus connects to the project's bus (DialBus) for `skiff events`.
func OpenBus(ctx context.Context, p *project.Project, auth bus.Auth, connect func(context.Context) (*Session, error)) (engine.Bus, error) {
	conn, err := DialBus(ctx, p, auth, connect)
	if err != nil {
		return nil, err
	}
	return &busClient{conn: conn, stream: relayplan.Stream(p), project: p, letters: map[uint64]relay.DeadLetter{}}, nil
}

// busClient is engine.Bus on a connection to the project's bus.
type busClient struct {
	conn    *BusConn
	stream  string
	project *project.Project
	// letters are the dead letters listed, by sequence, for Replay.
	mu      sync.Mutex
	letters map[uint64]relay.DeadLetter
}

func (b *busClient) Close() { b.conn.Close() }

func (b *busClient) Publish(ctx context.Context, ev engine.CloudEvent) (*engine.Stored, error) {
	if err := relay.EnsureStreams(ctx, b.conn.JS, b.stream, b.project.Events.Limits()); err != nil {
		return nil, err
	}
	subject, err := relay.Subject(b.stream, ev.Attrs["type"])
	if err != nil {
		return nil, err
	}
	ack, err := relay.Publish(ctx, b.conn.JS, b.stream, &relay.Event{Attrs: ev.Attrs, ContentType: ev.ContentType, Data: ev.Data})
	if err != nil {
		return &engine.Stored{Subject: subject}, err
	}
	return &engine.Stored{Subject: subject, Stream: ack.Stream, Seq: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

func (b *busClient) Tail(ctx context.Context, typ string, since time.Duration) (engine.Tail, error) {
	filter, err := relay.Filter(b.stream, typ)
	if err != nil {
		return nil, err
	}
	msgs, err := TailConsumer(ctx, b.conn, b.stream, filter, since)
	if err != nil {
		return nil, fmt.Errorf("reading stream %s on %s: %w", b.stream, b.conn.URL, err)
	}
	return &tail{filter: filter, msgs: msgs}, nil
}

type tail struct {
	filter string
	msgs   jetstream.MessagesContext
}

func (t *tail) Filter() string { return t.filter }
func (t *tail) Stop()          { t.msgs.Stop() }

func (t *tail) Next() (*engine.TailedEvent, error) {
	msg, err := t.msgs.Next()
	if err != nil {
		return nil, err
	}
	ev, _ := relay.FromMessage(msg.Headers(), msg.Data())
	out := &engine.TailedEvent{Subject: msg.Subject(), Attrs: ev.Attrs, Data: ev.Data}
	if md, _ := msg.Metadata(); md != nil {
		out.Seq, out.Stored = md.Sequence.Stream, md.Timestamp
	}
	return out, nil
}

func (b *busClient) Triggers(ctx context.Context, ws []project.Workload) ([]engine.TriggerStatus, error) {
	out := []engine.TriggerStatus{}
	for _, w := range ws {
		plan, err := relayplan.For(b.project, &w)
		if err != nil {
			return nil, err
		}
		st, err := relay.Status(ctx, b.conn.JS, w.Name, plan)
		if err != nil {
			return nil, fmt.Errorf("the bus %s: %w", b.conn.URL, err)
		}
		out = append(out, st...)
	}
	return out, nil
}

func (b *busClient) Streams(ctx context.Context) ([]engine.StreamUsage, error) {
	out, err := relay.Usage(ctx, b.conn.JS, b.stream)
	if err != nil {
		return nil, fmt.Errorf("the bus %s: %w", b.conn.URL, err)
	}
	return out, nil
}

func (b *busClient) DeadLetters(ctx context.Context, workload string) ([]engine.DeadLetter, error) {
	dls, err := relay.DeadLetters(ctx, b.conn.JS, b.stream, workload)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	out := []engine.DeadLetter{}
	for _, d := range dls {
		b.letters[d.Seq] = d
		out = append(out, d.DeadLetter)
	}
	return out, nil
}

func (b *busClient) Replay(ctx context.Context, dl engine.DeadLetter) error {
	b.mu.Lock()
	d, ok := b.letters[dl.Seq]
	b.mu.Unlock()
	if !ok {
		return fmt.Errorf("dead letter #%d was not listed by this connection", dl.Seq)
	}
	return relay.Replay(ctx, b.conn.JS, b.stream, d)
}
