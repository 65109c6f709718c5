package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/skiffdev/skiff/internal/event"
)

// NewActivity returns the sink to give the session the dashboard acts
// through (engine.SessionConfig.Events) and the channel of what it sends
// (ClusterConfig.Activity): the events of the dashboard's actions. The
// sink waits while the dashboard is behind, until ctx ends.
func NewActivity(ctx context.Context) (sink func(event.Event), events <-chan event.Event) {
	ch := make(chan event.Event, 64)
	return func(ev event.Event) {
		select {
		case ch <- ev:
		case <-ctx.Done():
		}
	}, ch
}

// maxActivity bounds the session's events kept per workload.
const maxActivity = 50

// activityType is the Type of the session's events among the Kubernetes
// events of the Events pane (those are Normal or Warning).
const activityType = "skiff"

// asEvent is a session's event as a line of the Events pane.
func asEvent(ev event.Event) Event {
	object := ev.Object
	switch {
	case object == "release" || (object == "" && ev.Release != ""):
		object = "release/" + ev.Release
	case object == "consumers":
		object = "consumers/" + ev.Workload
	}
	return Event{Time: ev.Time, Type: activityType, Reason: string(ev.Kind), Object: object, Message: describe(ev)}
}

// describe says in a line what a session's event reports.
func describe(ev event.Event) string {
	took := ""
	if ev.Duration > 0 {
		took = " in " + ev.Duration.Round(100*time.Millisecond).String()
	}
	switch ev.Kind {
	case event.RollbackStarted:
		if ev.Revision > 0 {
			return fmt.Sprintf("rolling %s back to revision %d", ev.Release, ev.Revision)
		}
		return fmt.Sprintf("rolling %s back to the revision before", ev.Release)
	case event.RolledBack:
		return fmt.Sprintf("%s rolled back: revision %d is ready%s", ev.Release, ev.Revision, took)
	case event.Deleted:
		switch {
		case ev.Object == "release":
			return fmt.Sprintf("uninstalled release %s%s", ev.Release, took)
		case ev.Object == "consumers":
			return "removed the consumers of its triggers from the bus"
		case ev.Object != "":
			return "deleted " + ev.Object
		}
	case event.Failed:
		phase, _ := ev.PhaseStatus()
		first, _, _ := strings.Cut(ev.ErrorText(), "\n")
		return fmt.Sprintf("%s failed: %s", phase, first)
	case event.Notice:
		return ev.Message
	case event.DeployStarted:
		return fmt.Sprintf("deploying %s", ev.Release)
	case event.Deployed:
		return fmt.Sprintf("%s is ready at revision %d%s", ev.Release, ev.Revision, took)
	}
	phase, status := ev.PhaseStatus()
	return strings.TrimSpace(phase + " " + status + took)
}
