package relay

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/skiffdev/skiff/internal/eventstream"
)

// NewEvent is a CloudEvent of typ from source with id, at time at, with
// JSON data (nil: none). It starts a trace of its own (its traceparent
// attribute): each schedule's tick is a new trace.
func NewEvent(typ, source, id string, at time.Time, data []byte) *Event {
	ev := &Event{Attrs: map[string]string{"specversion": "1.0", "id": id, "source": source, "type": typ,
		"time": at.UTC().Format(time.RFC3339Nano), "traceparent": NewTraceparent().String()}}
	if data != nil {
		ev.ContentType, ev.Data = "application/json", data
	}
	return ev
}

// Tick is the event a schedule stores for its tick at the scheduled time
// at, with id: what its CronJob's `skiff-relay publish` stores on the
// cluster, and the Scheduler on this machine.
func Tick(s Schedule, id string, at time.Time) *Event {
	return NewEvent(eventstream.ScheduleType, s.Source, id, at, nil)
}

// Scheduler stores the ticks of schedules on their subjects, on their
// cron expressions in their time zones, in this process: the CronJobs of
// a deploy, for `skiff dev --local`. A tick's id is the schedule's name
// and the scheduled second, so a tick is stored once.
type Scheduler struct {
	JS      Publisher
	Logger  *slog.Logger
	Metrics *Metrics
}

// Run ticks until ctx ends. A schedule that does not parse is an error
// before any tick.
func (sc *Scheduler) Run(ctx context.Context, schedules []Schedule) error {
	type entry struct {
		s     Schedule
		sched cron.Schedule
	}
	var entries []entry
	for _, s := range schedules {
		spec := s.Schedule
		if s.TimeZone != "" {
			spec = "CRON_TZ=" + s.TimeZone + " " + spec
		}
		cs, err := cron.ParseStandard(spec)
		if err != nil {
			return fmt.Errorf("schedule %q: %w", s.Schedule, err)
		}
		entries = append(entries, entry{s, cs})
	}
	if len(entries) == 0 {
		<-ctx.Done()
		return nil
	}
	next := make([]time.Time, len(entries))
	for i, e := range entries {
		next[i] = e.sched.Next(time.Now())
	}
	for {
		first := 0
		for i := range next {
			if next[i].Before(next[first]) {
				first = i
			}
		}
		timer := time.NewTimer(time.Until(next[first]))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
		at := next[first]
		s := entries[first].s
		// Ticks missed meanwhile (a machine that slept) are skipped.
		from := at
		if now := time.Now(); now.After(from) {
			from = now
		}
		next[first] = entries[first].sched.Next(from)
		id := s.Name + "-" + strconv.FormatInt(at.Unix(), 10)
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		ev := Tick(s, id, at)
		_, err := PublishTo(pctx, sc.JS, s.Subject, ev)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			sc.Metrics.add(PublishFailed, 1)
			sc.Logger.Warn("storing a schedule's tick failed; the next one comes on time", "schedule", s.Schedule, "error", err.Error())
			continue
		}
		sc.Metrics.add(Published, 1)
		sc.Logger.Debug("tick", "schedule", s.Schedule, "id", id, "trace_id", ev.TraceID())
	}
}
