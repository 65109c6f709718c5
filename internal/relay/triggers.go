package relay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skiffdev/skiff/internal/eventstream"
)

// Defaults of a workload's delivery (skiff.yaml `delivery`).
const (
	DefaultRetries = 3
	DefaultBackoff = time.Second
	DefaultTimeout = 30 * time.Second
	// DefaultConcurrency bounds the events in flight to one pod, per
	// trigger. With more in flight, more events share each write to the
	// bus and each wake-up of the relay, the handler and the server: 32
	// instead of 16 took a sixth to a fifth off the CPU of an event in a
	// burst on the test cluster (docs/benchmarks.md).
	DefaultConcurrency = 32
)

// WorkloadKey is the consumer metadata key naming the workload a consumer
// delivers to: deploy removes the consumers of triggers a workload lost.
const WorkloadKey = "skiff.dev/workload"

// Schedule is one schedule trigger of a workload: a CronJob publishes its
// ticks on Subject, which only its own consumer reads.
type Schedule struct {
	// Name is the CronJob's: <workload>-<hash of the schedule>.
	Name     string `json:"name"`
	Schedule string `json:"schedule"`
	TimeZone string `json:"timeZone,omitempty"`
	Subject  string `json:"subject"`
	// Source is the ticks' CloudEvents source.
	Source string `json:"source"`
}

// Plan is how the events of a workload's triggers reach it: one durable
// consumer per trigger, and a CronJob per schedule.
type Plan struct {
	Stream string
	// Limits bound the project's streams.
	Limits    eventstream.Limits
	Triggers  []Trigger
	Schedules []Schedule
	Delivery  Delivery
}

// EventTrigger is workload's trigger on the events of type pattern (a
// type, a prefix ending in ".*", or "*") on stream, from source ("": any).
// Its consumer's name is the workload's and a hash of what it reads, so
// reordering a workload's triggers keeps their consumers and changing one
// replaces it.
func EventTrigger(stream, workload, pattern, source string) (Trigger, error) {
	f, err := Filter(stream, pattern)
	if err != nil {
		return Trigger{}, err
	}
	tr := Trigger{Filter: f, Source: source, Event: pattern}
	tr.Consumer = consumerName(workload, tr)
	return tr, nil
}

// ScheduleTrigger is the schedule (a cron expression, in timeZone: "" is
// UTC) of workload of project on stream: the CronJob that publishes its
// ticks, and the trigger whose consumer alone reads them.
func ScheduleTrigger(stream, project, workload, schedule, timeZone string) (Schedule, Trigger) {
	h := hash(schedule, timeZone)
	s := Schedule{Name: shortName(workload, 52-9) + "-" + h, Schedule: schedule, TimeZone: timeZone,
		Subject: ScheduleSubject(stream, workload, h), Source: "/skiff/" + project + "/" + workload + "/schedules/" + h}
	tr := Trigger{Filter: s.Subject, Event: eventstream.ScheduleType, Schedule: schedule}
	tr.Consumer = consumerName(workload, tr)
	return s, tr
}

func consumerName(workload string, tr Trigger) string {
	return shortName(workload, 64-9) + "-" + hash(tr.Filter, tr.Source)
}

// ScheduleSubject is where the ticks of one schedule of a workload go:
// <stream>.dev.skiff.schedule.<workload>.<hash>, apart from every other
// workload's, so no other consumer counts them as its lag.
func ScheduleSubject(stream, workload, h string) string {
	return stream + "." + eventstream.ScheduleType + "." + workload + "." + h
}

// ReplaySubject is where `skiff events dlq replay` puts a dead letter of
// consumer back: on the stream, read by that consumer alone.
func ReplaySubject(stream, consumer string) string {
	return stream + ".dev.skiff.replay." + consumer
}

// DefaultDelivery is the delivery of a workload whose skiff.yaml sets none.
func DefaultDelivery() Delivery {
	return Delivery{Retries: DefaultRetries, Backoff: DefaultBackoff, Timeout: DefaultTimeout, Concurrency: DefaultConcurrency}
}

func hash(parts ...string) string {
	s := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(s[:4])
}

func shortName(s string, n int) string {
	if len(s) > n {
		s = strings.TrimRight(s[:n], "-")
	}
	return s
}

// ConsumerConfig is the JetStream consumer of trigger t of workload:
// skiff deploy creates it before any pod runs (KEDA scales on its lag, and
// events published before the first pod starts wait in it), and each
// relay makes sure it is so. A new consumer starts with the events
// published from then on. The relay counts deliveries itself (MaxDeliver
// is unlimited), so the server never drops an event.
func ConsumerConfig(t Trigger, workload string, d Delivery, concurrency int) jetstream.ConsumerConfig {
	filters := []string{t.Filter}
	// Its replay subject, unless the filter already covers it (a trigger
	// on every event): `skiff events dlq replay` sends a dead letter back
	// to this consumer alone.
	stream, _, _ := strings.Cut(t.Filter, ".")
	if t.Filter != stream+".>" {
		filters = append(filters, ReplaySubject(stream, t.Consumer))
	}
	return jetstream.ConsumerConfig{
		Durable:        t.Consumer,
		FilterSubjects: filters,
		AckPolicy:      jetstream.AckExplicitPolicy,
		DeliverPolicy:  jetstream.DeliverNewPolicy,
		AckWait:        d.Timeout + 10*time.Second,
		MaxDeliver:     -1,
		MaxAckPending:  max(2*concurrency, 1),
		Description:    fmt.Sprintf("skiff: %s's events of %s", workload, t.Filter),
		Metadata:       map[string]string{WorkloadKey: workload},
	}
}

// Subscribe makes the bus ready for plan's workload before it is
// deployed: the project's streams, a consumer per trigger (updated to the
// delivery), and no consumer left of a trigger the workload no longer has.
func Subscribe(ctx context.Context, js jetstream.JetStream, workload string, plan *Plan, concurrency int) error {
	if err := EnsureStreams(ctx, js, plan.Stream, plan.Limits); err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, t := range plan.Triggers {
		keep[t.Consumer] = true
		if _, err := js.CreateOrUpdateConsumer(ctx, plan.Stream, ConsumerConfig(t, workload, plan.Delivery, concurrency)); err != nil {
			return fmt.Errorf("the consumer %s of stream %s: %w", t.Consumer, plan.Stream, err)
		}
	}
	return Unsubscribe(ctx, js, plan.Stream, workload, keep)
}

// Unsubscribe deletes the consumers of workload on stream but those in
// keep (skiff delete keeps none).
func Unsubscribe(ctx context.Context, js jetstream.JetStream, stream, workload string, keep map[string]bool) error {
	s, err := js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	infos := s.ListConsumers(ctx)
	var stale []string
	for info := range infos.Info() {
		if info.Config.Metadata[WorkloadKey] == workload && !keep[info.Name] {
			stale = append(stale, info.Name)
		}
	}
	if err := infos.Err(); err != nil {
		return fmt.Errorf("listing the consumers of stream %s: %w", stream, err)
	}
	for _, name := range stale {
		if err := s.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("deleting the consumer %s of stream %s: %w", name, stream, err)
		}
	}
	return nil
}
