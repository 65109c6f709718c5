package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skiffdev/skiff/internal/relay"
)

// consumeBare handles n events waiting on cons as the relay does on the
// bus, without the pod: concurrency in flight, each event's reply (of
// replyType, its subject the event's id) stored before the event is
// acked, no HTTP and no handler. What it takes is nats-server's part of
// the relay's work plus a consumer as light as nats.go allows: the floor
// of the pod's pace on this bus. It returns the time from the first
// event received to the last one acked.
func consumeBare(ctx context.Context, js jetstream.JetStream, cons jetstream.Consumer, stream, replyType string, n, concurrency int) (time.Duration, error) {
	subject, err := relay.Subject(stream, replyType)
	if err != nil {
		return 0, err
	}
	var first time.Time
	var once sync.Once
	var acked atomic.Int64
	done := make(chan struct{})
	errc := make(chan error, 1)
	fail := func(err error) {
		select {
		case errc <- err:
		default:
		}
	}
	sem := make(chan struct{}, concurrency)
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		once.Do(func() { first = time.Now() })
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			ev, err := relay.FromMessage(msg.Headers(), msg.Data())
			if err != nil {
				fail(err)
				return
			}
			out := &relay.Event{Attrs: map[string]string{"specversion": "1.0", "id": "bare-" + ev.ID(), "source": "/eventwake",
				"type": replyType, "subject": ev.ID()}, ContentType: "application/json", Data: []byte(`{"message":"Hello, Ada!"}`)}
			f, err := js.PublishMsgAsync(out.Message(subject), jetstream.WithMsgID(out.Source()+"\x00"+out.ID()))
			if err != nil {
				fail(err)
				return
			}
			select {
			case <-f.Ok():
			case err := <-f.Err():
				fail(err)
				return
			case <-ctx.Done():
				return
			}
			if err := msg.Ack(); err != nil {
				fail(err)
				return
			}
			if acked.Add(1) == int64(n) {
				close(done)
			}
		}()
	}, jetstream.PullMaxMessages(concurrency))
	if err != nil {
		return 0, err
	}
	defer cc.Stop()
	select {
	case <-done:
		return time.Since(first), nil
	case err := <-errc:
		return 0, err
	case <-time.After(5 * time.Minute):
		return 0, fmt.Errorf("%d of %d events handled within 5m", acked.Load(), n)
	}
}
