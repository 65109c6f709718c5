package project

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // timeZone is checked the same on every machine

	"github.com/robfig/cron/v3"

	"github.com/skiffdev/skiff/internal/eventstream"
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
	// Credentials is the .creds file (a user JWT and its nkey seed, as
	// nsc and the nats CLI write them) skiff's commands connect with;
	// $SKIFF_NATS_CREDS overrides it. Empty: no credentials (an open bus).
	Credentials string `json:"credentials,omitempty" yaml:"credentials,omitempty"`
	// SigningKey is the file of an account signing key's seed (SA...):
	// deploy mints each workload's user with it; $SKIFF_NATS_SIGNING_KEY
	// overrides it.
	SigningKey string `json:"signingKey,omitempty" yaml:"signingKey,omitempty"`
	// TLS is how a tls:// bus is trusted.
	TLS *EventsTLS `json:"tls,omitempty" yaml:"tls,omitempty"`
	// Retention bounds the project's streams.
	Retention *Retention `json:"retention,omitempty" yaml:"retention,omitempty"`
}

// EventsTLS is the CA a tls:// bus's certificate is checked against (the
// system's roots when CA is empty).
type EventsTLS struct {
	CA string `json:"ca,omitempty" yaml:"ca,omitempty"`
}

// Retention bounds the project's stream (events older than MaxAge, and the
// oldest beyond MaxBytes, are dropped) and its dead letters (older than
// DeadLetterMaxAge, the oldest beyond MaxBytes).
type Retention struct {
	MaxAge           string `json:"maxAge,omitempty" yaml:"maxAge,omitempty"`
	MaxBytes         string `json:"maxBytes,omitempty" yaml:"maxBytes,omitempty"`
	DeadLetterMaxAge string `json:"deadLetterMaxAge,omitempty" yaml:"deadLetterMaxAge,omitempty"`
}

// The streams' limits when skiff.yaml sets none.
const (
	DefaultMaxAge           = 7 * 24 * time.Hour
	DefaultMaxBytes         = 1 << 30 // 1GiB
	DefaultDeadLetterMaxAge = 30 * 24 * time.Hour
)

// Limits are the streams' bounds, parsed, with the defaults.
type Limits = eventstream.Limits

// Limits are the retention of the project's streams (validated: a bad
// value is the default here).
func (e *Events) Limits() Limits {
	l := Limits{MaxAge: DefaultMaxAge, MaxBytes: DefaultMaxBytes, DeadLetterMaxAge: DefaultDeadLetterMaxAge}
	if e == nil || e.Retention == nil {
		return l
	}
	r := e.Retention
	if d, err := ParseAge(r.MaxAge); err == nil && r.MaxAge != "" {
		l.MaxAge = d
	}
	if d, err := ParseAge(r.DeadLetterMaxAge); err == nil && r.DeadLetterMaxAge != "" {
		l.DeadLetterMaxAge = d
	}
	if n, err := ParseBytes(r.MaxBytes); err == nil && r.MaxBytes != "" {
		l.MaxBytes = n
	}
	return l
}

// ParseAge reads a positive duration: Go's (90m, 36h) or whole days (7d).
func ParseAge(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 3650 {
			return 0, fmt.Errorf("%q is not a number of days from 1 to 3650", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Minute {
		return 0, fmt.Errorf("%q is not a duration of a minute or more", s)
	}
	return d, nil
}

// byteUnits are the suffixes ParseBytes knows, longest first.
var byteUnits = []struct {
	suffix string
	n      int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

// ParseBytes reads a size: a whole number of bytes, or one with a unit
// (KiB, MiB, GiB, TiB, KB, MB, GB, TB, B); at least 1MiB.
func ParseBytes(s string) (int64, error) {
	num, mult := s, int64(1)
	for _, u := range byteUnits {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = strings.TrimSpace(v), u.n
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size such as 512MiB or 1GiB", s)
	}
	if n*mult < 1<<20 {
		return 0, fmt.Errorf("%q is less than 1MiB", s)
	}
	return n * mult, nil
}

// Environment variables that override events.credentials and
// events.signingKey.
const (
	CredsEnv      = "SKIFF_NATS_CREDS"
	SigningKeyEnv = "SKIFF_NATS_SIGNING_KEY"
)

// BusFiles are the files skiff reaches the bus with, as paths to open
// (relative ones in skiff.yaml are from the project's folder).
type BusFiles struct {
	// Creds is the CLI's .creds file ("": connect without credentials).
	Creds string
	// SigningKey is the account signing key's seed file ("": deploy mints
	// no users).
	SigningKey string
	// CA is the file of the CA certificates of a tls:// bus.
	CA string
}

// overlay is e with o's bus, credentials, signing key, TLS and retention
// where o sets them (e may be nil).
func (e *Events) overlay(o *Events) *Events {
	out := &Events{}
	if e != nil {
		*out = *e
	}
	if o.Bus != "" {
		out.Bus = o.Bus
	}
	if o.Credentials != "" {
		out.Credentials = o.Credentials
	}
	if o.SigningKey != "" {
		out.SigningKey = o.SigningKey
	}
	if o.TLS != nil {
		t := *o.TLS
		out.TLS = &t
	}
	if o.Retention != nil {
		r := *o.Retention
		out.Retention = &r
	}
	return out
}

// BusFiles are e's files, from root, with the environment's overrides
// (getenv nil: none).
func (e *Events) BusFiles(root string, getenv func(string) string) BusFiles {
	var f BusFiles
	if e == nil {
		return f
	}
	at := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(root, p)
	}
	f.Creds, f.SigningKey = at(e.Credentials), at(e.SigningKey)
	if e.TLS != nil {
		f.CA = at(e.TLS.CA)
	}
	if getenv != nil {
		if v := getenv(CredsEnv); v != "" {
			f.Creds = v
		}
		if v := getenv(SigningKeyEnv); v != "" {
			f.SigningKey = v
		}
	}
	return f
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

// MaxDeliveryConcurrency bounds delivery.concurrency: a pod is given at
// most this many events at once.
const MaxDeliveryConcurrency = 1000

// Delivery is how a function's events are delivered to it: each attempt
// may take Timeout; a failed one is retried Retries times, after Backoff,
// doubling; then the event goes to the dead letters. Concurrency is how
// many events a pod's handler is given at once.
type Delivery struct {
	Retries     *int   `json:"retries,omitempty" yaml:"retries,omitempty"`
	Backoff     string `json:"backoff,omitempty" yaml:"backoff,omitempty"`
	Timeout     string `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	Concurrency *int   `json:"concurrency,omitempty" yaml:"concurrency,omitempty"`
}

// checkEventsFields checks the fields of e, at path at (events, or an
// environment's).
func checkEventsFields(at string, e *Events, add func(path, msg, hint string)) {
	if u, err := url.Parse(e.Bus); e.Bus != "" && (err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "") {
		add(at+".bus", fmt.Sprintf("%q is not a nats:// or tls:// URL", e.Bus), "use e.g. nats://nats.nats.svc.cluster.local:4222")
	}
	// (An environment's signing key may go with the top level's
	// credentials.)
	if e.SigningKey != "" && e.Credentials == "" && at == "events" {
		add(at+".signingKey", "is set without events.credentials", "deploy needs both: credentials to manage the streams, the signing key to mint the workloads' users")
	}
	if e.TLS != nil && e.TLS.CA == "" {
		add(at+".tls", "has no ca", "set events.tls.ca to the file of the CA that signed the bus's certificate, or remove events.tls")
	}
	if r := e.Retention; r != nil {
		for _, f := range []struct{ field, v string }{{"maxAge", r.MaxAge}, {"deadLetterMaxAge", r.DeadLetterMaxAge}} {
			if _, err := ParseAge(f.v); f.v != "" && err != nil {
				add(at+".retention."+f.field, err.Error(), "use a duration such as 7d, 36h or 90m")
			}
		}
		if _, err := ParseBytes(r.MaxBytes); r.MaxBytes != "" && err != nil {
			add(at+".retention.maxBytes", err.Error(), "use a size such as 512MiB or 1GiB")
		}
	}
	if e.Stream != "" && (strings.ContainsAny(e.Stream, ".*> \t/\\") || len(e.Stream) > 32) {
		add(at+".stream", fmt.Sprintf("%q is not a stream name", e.Stream), "use letters, digits, - and _, at most 32 characters")
	}
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
		checkEventsFields("events", e, add)
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
				if err := eventstream.CheckType(t.Event, true); err != nil {
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
			if d.Concurrency != nil && (*d.Concurrency < 1 || *d.Concurrency > MaxDeliveryConcurrency) {
				add(at+".delivery.concurrency", fmt.Sprintf("%d is out of range", *d.Concurrency),
					fmt.Sprintf("use 1 to %d (1: one event at a time, for a handler that serves one request at a time)", MaxDeliveryConcurrency))
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
