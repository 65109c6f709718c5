package relay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skiffdev/skiff/internal/eventstream"
)

// EnsureStreams creates the project's stream (subjects <stream>.>) and its
// dead-letter stream when they are missing, on the file store, bounded by
// lim (MaxAge and MaxBytes; the dead letters by DeadLetterMaxAge and
// MaxBytes; zero: unbounded). Of an existing stream only those limits are
// changed, when they differ: the rest may be an operator's tuning.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, stream string, lim eventstream.Limits) error {
	for _, cfg := range StreamConfigs(stream, lim) {
		s, err := js.Stream(ctx, cfg.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			_, err = js.CreateStream(ctx, cfg)
		} else if err == nil {
			if have := s.CachedInfo().Config; have.MaxAge != cfg.MaxAge || have.MaxBytes != cfg.MaxBytes {
				have.MaxAge, have.MaxBytes = cfg.MaxAge, cfg.MaxBytes
				_, err = js.UpdateStream(ctx, have)
			}
		}
		if err != nil {
			return fmt.Errorf("stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// StreamConfigs are the project's stream and its dead letters' as skiff
// creates them.
func StreamConfigs(stream string, lim eventstream.Limits) []jetstream.StreamConfig {
	bytes := func(n int64) int64 {
		if n <= 0 {
			return -1
		}
		return n
	}
	out := []jetstream.StreamConfig{
		{Name: stream, Subjects: []string{stream + ".>"}, Description: "skiff: the project's events",
			MaxAge: lim.MaxAge, MaxBytes: bytes(lim.MaxBytes)},
		{Name: DeadLetterStream(stream), Subjects: []string{"dlq." + stream + ".>"}, Description: "skiff: events that exhausted their retries",
			MaxAge: lim.DeadLetterMaxAge, MaxBytes: bytes(lim.MaxBytes)},
	}
	for i := range out {
		out[i].Storage = jetstream.FileStorage
		out[i].Duplicates = 2 * time.Minute
		if a := out[i].MaxAge; a > 0 && a < out[i].Duplicates {
			out[i].Duplicates = a // the server wants it within MaxAge
		}
	}
	return out
}

// Publish stores ev on the stream under <stream>.<type> and returns once
// JetStream has it. Its message id is the event's source and id, so
// JetStream drops a resend of the same event within the stream's
// duplicate window (a retried POST to the sink, a re-run CronJob).
func Publish(ctx context.Context, js Publisher, stream string, ev *Event) (*jetstream.PubAck, error) {
	subject, err := Subject(stream, ev.Type())
	if err != nil {
		return nil, err
	}
	return PublishTo(ctx, js, subject, ev)
}

// PublishTo is Publish on a subject of the caller's (a schedule's).
func PublishTo(ctx context.Context, js Publisher, subject string, ev *Event) (*jetstream.PubAck, error) {
	return js.PublishMsg(ctx, ev.Message(subject), jetstream.WithMsgID(ev.Source()+"\x00"+ev.ID()))
}
