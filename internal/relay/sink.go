package relay

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Publisher stores a message in JetStream: jetstream.JetStream's PublishMsg.
type Publisher interface {
	PublishMsg(ctx context.Context, m *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Sink is the K_SINK of a workload: an HTTP endpoint that accepts
// CloudEvents (binary or structured) and answers 2xx only once JetStream
// has stored the event, under <stream>.<type>. The stream drops a second
// event with the same source and id within its duplicate window, so a
// client may retry a POST whose answer it did not get.
//
// The stored event carries the CloudEvents distributed-tracing extension:
// its traceparent attribute is the request's traceparent header (binary
// mode) or the event's own attribute (structured mode), or a new trace
// (sampled for at most TracesPerSecond a second). An event is logged
// ("stored") when its trace is sampled, and always when it was not stored.
type Sink struct {
	Stream  string // the subjects' prefix: the stream holds <Stream>.>
	JS      Publisher
	Logger  *slog.Logger
	Metrics *Metrics
	// Timeout bounds how long a POST waits for JetStream's ack.
	Timeout time.Duration
	// TracesPerSecond bounds the traces the sink starts sampled in a
	// second (0: TracesPerSecond).
	TracesPerSecond int

	traces sampler
}

func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, "POST a CloudEvent")
		return
	}
	ev, err := ReadHTTP(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ev.carryTrace(r.Header, !structured(r.Header), nil, s.sample)
	subject, err := Subject(s.Stream, ev.Type())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), cmpDuration(s.Timeout, 10*time.Second))
	defer cancel()
	ack, err := Publish(ctx, s.JS, s.Stream, ev)
	if err != nil {
		s.Metrics.add(PublishFailed, 1)
		s.Logger.Warn("publishing an event failed", "id", ev.ID(), "type", ev.Type(), "trace_id", ev.TraceID(), "error", err.Error())
		status := http.StatusServiceUnavailable
		if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
			err = errors.New("the bus has no stream for " + subject + ": " + err.Error())
		}
		writeError(w, status, err.Error())
		return
	}
	s.Metrics.add(Published, 1)
	if ev.Sampled() {
		s.Logger.Info("stored", "id", ev.ID(), "type", ev.Type(), "seq", ack.Sequence, "duplicate", ack.Duplicate, "trace_id", ev.TraceID())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	json.NewEncoder(w).Encode(map[string]any{"stream": ack.Stream, "seq": ack.Sequence, "duplicate": ack.Duplicate})
}

// sample reports whether a trace the sink starts now is sampled.
func (s *Sink) sample() bool { return s.traces.sample(time.Now(), s.TracesPerSecond) }

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func cmpDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
