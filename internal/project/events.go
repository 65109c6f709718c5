package project

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	_ "time/tzdata" // timeZone is checked the same on every machine

	"github.com/robfig/cron/v3"
)

// Events is the project's event bus (skiff.yaml `events`): a NATS server
// with JetStream, and the stream the project's events go to.
type Events struct {
	// Bus is the NATS server, e.g. nats://nats.nats.svc.cluster.local:4222.
	Bus string `json:"bus,omitempty" yaml:"bus,omitempty"`
	// Stream holds the events, under the subjects <stream>.<type>; the
	// project's name by default.
	Stream string `json:"stream,omitempty" yaml:"stream,omitempty"`
	// RelayImage overrides the image of skiff-relay, the component that
	// moves events between the bus and the workloads.
	RelayImage string `json:"relayImage,omitempty" yaml:"relayImage,omitempty"`
}

// Trigger makes a function run when an event arrives (Event, a CloudEvent
// type; a trailing ".*" matches a prefix, "*" every type) or on a
// schedule (Schedule, a cron expression, in TimeZone).
type Trigger struct {
	Event    string `json:"event,omitempty" yaml:"event,omitempty"`
	Source   string `json:"source,omitempty" yaml:"source,omitempty"`
	Schedule string `json:"schedule,omitempty" yaml:"schedule,omitempty"`
	TimeZone string `json:"timeZone,omitempty" yaml:"timeZone,omitempty"`
}

// Delivery is how a function's events are delivered to it: each attempt
// may take Timeout; a failed one is retried Retries times, after Backoff,
// doubling; then the event goes to the dead letters.
type Delivery struct {
	Retries *int   `json:"retries,omitempty" yaml:"retries,omitempty"`
	Backoff string `json:"backoff,omitempty" yaml:"backoff,omitempty"`
	Timeout string `json:"timeout,omitempty" yaml:"timeout,omitempty"`
}

// ScheduleType is the CloudEvent type of a schedule's events.
const ScheduleType = "dev.skiff.schedule"

// CheckEventType says why typ is not a CloudEvent type skiff can route:
// dot-separated parts (they become a NATS subject's tokens), none empty,
// without spaces, * or >. With pattern, a trailing ".*" or a lone "*" is
// allowed.
func CheckEventType(typ string, pattern bool) error {
	if pattern {
		if typ == "*" {
			return nil
		}
		typ = strings.TrimSuffix(typ, ".*")
	}
	if typ == "" {
		return errors.New("is empty")
	}
	for _, tok := range strings.Split(typ, ".") {
		switch {
		case tok == "":
			return errors.New("has an empty part between dots")
		case pattern && strings.Contains(tok, "*"):
			return errors.New("may hold * only as its last part, after a dot (com.example.*)")
		case strings.ContainsAny(tok, "*> \t\r\n"):
			return errors.New("may not hold spaces, * or >")
		}
	}
	return nil
}

// busNeeds lists the workloads with triggers when skiff.yaml names no
// bus: valid (skiff dev --local runs its own bus), but what goes to a
// cluster needs one (RequireBus).
func (p *Project) busNeeds() []*FieldError {
	if p.Events != nil && p.Events.Bus != "" {
		return nil
	}
	var out []*FieldError
	for i, w := range p.Workloads {
		if len(w.Triggers) > 0 {
			out = append(out, &FieldError{Path: fmt.Sprintf("workloads[%d].triggers", i),
				Msg:  "need an event bus, and skiff.yaml has no events.bus",
				Hint: "add `events: {bus: nats://HOST:4222}` at the top level (skiff dev --local runs a bus of its own and needs none)"})
		}
	}
	return out
}

// RequireBus says, with file and line, which workloads have triggers when
// skiff.yaml names no bus: deploy and render need one, dev --local does
// not.
func (p *Project) RequireBus() error {
	if len(p.NoBus) == 0 {
		return nil
	}
	return ValidationErrors(p.NoBus)
}

// checkEvents checks the project's events and its workloads' triggers.
func (p *Project) checkEvents(add func(path, msg, hint string)) {
	if e := p.Events; e != nil {
		if u, err := url.Parse(e.Bus); e.Bus != "" && (err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "") {
			add("events.bus", fmt.Sprintf("%q is not a nats:// or tls:// URL", e.Bus), "use e.g. nats://nats.nats.svc.cluster.local:4222")
		}
		if e.Stream != "" && (strings.ContainsAny(e.Stream, ".*> \t/\\") || len(e.Stream) > 32) {
			add("events.stream", fmt.Sprintf("%q is not a stream name", e.Stream), "use letters, digits, - and _, at most 32 characters")
		}
	}
	for i, w := range p.Workloads {
		at := fmt.Sprintf("workloads[%d]", i)
		for j, t := range w.Triggers {
			tat := fmt.Sprintf("%s.triggers[%d]", at, j)
			switch {
			case t.Event == "" && t.Schedule == "":
				add(tat, "has neither event nor schedule", "set event (a CloudEvent type) or schedule (a cron expression)")
			case t.Event != "" && t.Schedule != "":
				add(tat, "has both event and schedule", "use one trigger for each")
			case t.Event != "":
				if err := CheckEventType(t.Event, true); err != nil {
					add(tat+".event", fmt.Sprintf("%q %v", t.Event, err), "use a CloudEvent type such as com.example.image.uploaded, or a prefix such as com.example.*")
				}
				if t.TimeZone != "" {
					add(tat+".timeZone", "is set on an event trigger", "timeZone goes with schedule")
				}
			default:
				if _, err := cron.ParseStandard(t.Schedule); err != nil {
					add(tat+".schedule", fmt.Sprintf("%q is not a cron expression: %v", t.Schedule, err), `use five fields (minute hour day month weekday), e.g. "*/5 * * * *", or @hourly`)
				}
				if strings.HasPrefix(strings.TrimSpace(t.Schedule), "TZ=") || strings.HasPrefix(strings.TrimSpace(t.Schedule), "CRON_TZ=") {
					add(tat+".schedule", "sets its time zone inline", "use timeZone instead")
				}
				if t.TimeZone != "" {
					if _, err := time.LoadLocation(t.TimeZone); err != nil || t.TimeZone == "Local" {
						add(tat+".timeZone", fmt.Sprintf("%q is not a time zone", t.TimeZone), "use an IANA name such as Europe/Berlin or UTC")
					}
				}
				if t.Source != "" {
					add(tat+".source", "is set on a schedule", "source filters events; a schedule's events come from skiff")
				}
			}
		}
		if d := w.Delivery; d != nil {
			if len(w.Triggers) == 0 {
				add(at+".delivery", "is set, but the workload has no triggers", "add triggers, or remove delivery")
			}
			if d.Retries != nil && (*d.Retries < 0 || *d.Retries > 100) {
				add(at+".delivery.retries", fmt.Sprintf("%d is out of range", *d.Retries), "use 0 to 100")
			}
			for field, v := range map[string]string{"backoff": d.Backoff, "timeout": d.Timeout} {
				if v == "" {
					continue
				}
				if dur, err := time.ParseDuration(v); err != nil || dur <= 0 {
					add(at+".delivery."+field, fmt.Sprintf("%q is not a positive duration", v), "use a duration such as 500ms, 1s or 2m")
				} else if field == "timeout" && dur > 15*time.Minute {
					add(at+".delivery.timeout", fmt.Sprintf("%q is longer than 15m", v), "use at most 15m")
				}
			}
		}
	}
}
