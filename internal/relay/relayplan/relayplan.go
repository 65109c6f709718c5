// Package relayplan maps a project's skiff.yaml to what package relay
// works with: the project's stream, and each workload's triggers, schedules
// and delivery as a relay.Plan. It is the one place where the relay's
// values meet the manifest's (package project), so that skiff-relay, which
// runs in every pod, links package relay without the manifest's parser.
package relayplan

import (
	"fmt"
	"time"

	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/relay"
)

// Stream is the project's stream: events.stream, else the project's name.
func Stream(p *project.Project) string {
	if p.Events != nil && p.Events.Stream != "" {
		return p.Events.Stream
	}
	return p.Name
}

// For maps the triggers of w (of project p, which has events) to
// consumers: one per trigger (relay.EventTrigger), and one per schedule
// with its CronJob (relay.ScheduleTrigger).
func For(p *project.Project, w *project.Workload) (*relay.Plan, error) {
	stream := Stream(p)
	pl := &relay.Plan{Stream: stream, Limits: p.Events.Limits(), Delivery: Delivery(w)}
	for _, t := range w.Triggers {
		if t.Schedule != "" {
			s, tr := relay.ScheduleTrigger(stream, p.Name, w.Name, t.Schedule, t.TimeZone)
			pl.Schedules = append(pl.Schedules, s)
			pl.Triggers = append(pl.Triggers, tr)
			continue
		}
		tr, err := relay.EventTrigger(stream, w.Name, t.Event, t.Source)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", w.Name, err)
		}
		pl.Triggers = append(pl.Triggers, tr)
	}
	return pl, nil
}

// Delivery is w's delivery, with relay.DefaultDelivery's values for what
// it leaves out.
func Delivery(w *project.Workload) relay.Delivery {
	d := relay.DefaultDelivery()
	if wd := w.Delivery; wd != nil {
		if wd.Retries != nil {
			d.Retries = *wd.Retries
		}
		if v, err := time.ParseDuration(wd.Backoff); err == nil && v > 0 {
			d.Backoff = v
		}
		if v, err := time.ParseDuration(wd.Timeout); err == nil && v > 0 {
			d.Timeout = v
		}
		if wd.Concurrency != nil && *wd.Concurrency > 0 {
			d.Concurrency = *wd.Concurrency
		}
	}
	return d
}
