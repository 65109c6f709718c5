package relay

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skiffdev/skiff/internal/eventstream"
)

// TriggerStatus is how one trigger's consumer stands.
type TriggerStatus = eventstream.TriggerStatus

// Status reads the consumers of plan's workload and its dead letters.
func Status(ctx context.Context, js jetstream.JetStream, workload string, plan *Plan) ([]TriggerStatus, error) {
	dead, err := deadLetterCount(ctx, js, plan.Stream, workload)
	if err != nil {
		return nil, err
	}
	var maxAge time.Duration
	stream, err := js.Stream(ctx, plan.Stream)
	if err == nil {
		maxAge = stream.CachedInfo().Config.MaxAge
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("stream %s: %w", plan.Stream, err)
	}
	var out []TriggerStatus
	for _, t := range plan.Triggers {
		st := TriggerStatus{Workload: workload, Trigger: t.Event, Consumer: t.Consumer, DeadLetters: dead}
		if t.Schedule != "" {
			st.Trigger = "schedule " + t.Schedule
		}
		c, err := js.Consumer(ctx, plan.Stream, t.Consumer)
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
		case err != nil:
			return nil, fmt.Errorf("the consumer %s: %w", t.Consumer, err)
		default:
			info, err := c.Info(ctx)
			if err != nil {
				return nil, fmt.Errorf("the consumer %s: %w", t.Consumer, err)
			}
			st.Deployed = true
			st.Pending, st.AckPending, st.Redelivered = info.NumPending, info.NumAckPending, info.NumRedelivered
			st.Delivered = info.Delivered.Consumer
			st.LastDone = info.AckFloor.Last
			if st.Lag() > 0 && stream != nil {
				if st.Oldest, err = oldestWaiting(ctx, stream, info); err != nil {
					return nil, fmt.Errorf("the consumer %s: %w", t.Consumer, err)
				}
				if st.Oldest != nil && maxAge > 0 {
					at := st.Oldest.Add(maxAge)
					st.AgesOut = &at
					st.AgingOut = AgingOut(*st.Oldest, maxAge, time.Now())
				}
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// AgingOut says whether an event stored at oldest, on a stream that keeps
// events for maxAge, has lived eventstream.AgingOutShare of it at now.
func AgingOut(oldest time.Time, maxAge time.Duration, now time.Time) bool {
	return maxAge > 0 && now.Sub(oldest) >= time.Duration(float64(maxAge)*eventstream.AgingOutShare)
}

// oldestWaiting is when the oldest event a consumer has not had acked
// was stored: the first of its subjects after its ack floor.
func oldestWaiting(ctx context.Context, s jetstream.Stream, info *jetstream.ConsumerInfo) (*time.Time, error) {
	filters := info.Config.FilterSubjects
	if info.Config.FilterSubject != "" {
		filters = append(filters, info.Config.FilterSubject)
	}
	var oldest *time.Time
	for _, f := range filters {
		m, err := s.GetMsg(ctx, info.AckFloor.Stream+1, jetstream.WithGetMsgSubject(f))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if oldest == nil || m.Time.Before(*oldest) {
			t := m.Time
			oldest = &t
		}
	}
	return oldest, nil
}

// Usage reads the use of stream and its dead letters' against their
// limits (a stream not made yet is left out).
func Usage(ctx context.Context, js jetstream.JetStream, stream string) ([]eventstream.Usage, error) {
	out := []eventstream.Usage{}
	for _, name := range []string{stream, DeadLetterStream(stream)} {
		s, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
		info := s.CachedInfo()
		u := eventstream.Usage{Stream: name, Events: info.State.Msgs, Bytes: info.State.Bytes,
			MaxBytes: info.Config.MaxBytes, MaxAge: info.Config.MaxAge}
		if info.State.Msgs > 0 {
			first := info.State.FirstTime
			u.First = &first
		}
		out = append(out, u)
	}
	return out, nil
}

func deadLetterCount(ctx context.Context, js jetstream.JetStream, stream, workload string) (uint64, error) {
	s, err := js.Stream(ctx, DeadLetterStream(stream))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	subject := DeadLetterSubject(stream, workload)
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return 0, err
	}
	return info.State.Subjects[subject], nil
}

// DeadLetter is an event that exhausted its retries, as the dead-letter
// stream holds it: the value skiff shows, and the message to replay.
type DeadLetter struct {
	eventstream.DeadLetter
	msg *jetstream.RawStreamMsg
}

// DeadLetters lists the dead letters of workload ("": of every workload),
// oldest first.
func DeadLetters(ctx context.Context, js jetstream.JetStream, stream, workload string) ([]DeadLetter, error) {
	s, err := js.Stream(ctx, DeadLetterStream(stream))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	filter := DeadLetterSubject(stream, workload)
	if workload == "" {
		filter = DeadLetterSubject(stream, "*")
	}
	var out []DeadLetter
	for seq := uint64(1); ; {
		// The next dead letter of filter from seq on.
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, deadLetterOf(stream, m))
		seq = m.Sequence + 1
	}
}

func deadLetterOf(stream string, m *jetstream.RawStreamMsg) DeadLetter {
	h := m.Header
	status, _ := strconv.Atoi(h.Get("Skiff-Status"))
	deliveries, _ := strconv.Atoi(h.Get("Skiff-Deliveries"))
	dl := DeadLetter{DeadLetter: eventstream.DeadLetter{Seq: m.Sequence, Workload: m.Subject[len(DeadLetterSubject(stream, "")):],
		Consumer: h.Get("Skiff-Consumer"), Subject: h.Get("Skiff-Subject"), Reason: h.Get("Skiff-Reason"), Status: status,
		Deliveries: deliveries, Stored: m.Time}, msg: m}
	if ev, err := FromMessage(h, m.Data); err == nil {
		dl.ID, dl.Type, dl.Source = ev.ID(), ev.Type(), ev.Source()
	}
	return dl
}

// Replay stores dl's event again for its consumer alone (its replay
// subject), then removes the dead letter: a failure in between leaves the
// dead letter, never neither.
func Replay(ctx context.Context, js jetstream.JetStream, stream string, dl DeadLetter) error {
	if dl.msg == nil || dl.Consumer == "" {
		return fmt.Errorf("dead letter #%d names no consumer", dl.Seq)
	}
	m := nats.NewMsg(ReplaySubject(stream, dl.Consumer))
	for k, vs := range dl.msg.Header {
		if strings.HasPrefix(k, "Skiff-") {
			continue
		}
		m.Header[k] = vs
	}
	m.Data = dl.msg.Data
	// One replay of one dead letter is stored once.
	if _, err := js.PublishMsg(ctx, m, jetstream.WithMsgID(fmt.Sprintf("replay/%s/%d", stream, dl.Seq))); err != nil {
		return fmt.Errorf("replaying dead letter #%d: %w", dl.Seq, err)
	}
	s, err := js.Stream(ctx, DeadLetterStream(stream))
	if err != nil {
		return err
	}
	if err := s.DeleteMsg(ctx, dl.Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("dead letter #%d was replayed, and removing it failed: %w", dl.Seq, err)
	}
	return nil
}
