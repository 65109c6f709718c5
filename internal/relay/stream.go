package relay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// EnsureStreams creates the project's stream (subjects <stream>.>) and its
// dead-letter stream when they are missing, on the file store; existing
// ones are left as they are (an operator may have tuned them).
func EnsureStreams(ctx context.Context, js jetstream.JetStream, stream string) error {
	for _, cfg := range []jetstream.StreamConfig{
		{Name: stream, Subjects: []string{stream + ".>"}, Description: "skiff: the project's events"},
		{Name: DeadLetterStream(stream), Subjects: []string{"dlq." + stream + ".>"}, Description: "skiff: events that exhausted their retries"},
	} {
		cfg.Storage = jetstream.FileStorage
		cfg.Duplicates = 2 * time.Minute
		_, err := js.Stream(ctx, cfg.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			_, err = js.CreateStream(ctx, cfg)
		}
		if err != nil {
			return fmt.Errorf("stream %s: %w", cfg.Name, err)
		}
	}
	return nil
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
