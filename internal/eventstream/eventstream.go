// Package eventstream holds the values of a project's event stream that
// skiff.yaml (package project), the command layer (package engine) and
// skiff-relay (package relay) share: the CloudEvent types skiff routes, the
// streams' limits and use, how a trigger's consumer stands, and a dead
// letter. It imports nothing but the standard library, so the relay, which
// runs in every pod, links neither the manifest's parser nor the engine.
package eventstream

import (
	"errors"
	"strings"
	"time"
)

// ScheduleType is the CloudEvent type of a schedule's events.
const ScheduleType = "dev.skiff.schedule"

// CheckType says why typ is not a CloudEvent type skiff can route:
// dot-separated parts (they become a NATS subject's tokens), none empty,
// without spaces, * or >. With pattern, a trailing ".*" or a lone "*" is
// allowed.
func CheckType(typ string, pattern bool) error {
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

// Limits are the streams' bounds, parsed (skiff.yaml's events.retention
// with its defaults: project.Events.Limits).
type Limits struct {
	MaxAge, DeadLetterMaxAge time.Duration
	MaxBytes                 int64
}

// TriggerStatus is how one trigger's consumer stands.
type TriggerStatus struct {
	Workload string `json:"workload"`
	// Trigger is the trigger as skiff.yaml has it: its event, or schedule.
	Trigger  string `json:"trigger"`
	Consumer string `json:"consumer"`
	// Deployed is false when the consumer does not exist (yet).
	Deployed bool `json:"deployed"`
	// Pending events wait to be delivered; AckPending are delivered and
	// not answered yet; their sum is the lag KEDA scales on.
	Pending     uint64 `json:"pending"`
	AckPending  int    `json:"ackPending"`
	Redelivered int    `json:"redelivered"`
	// Delivered counts the deliveries made (retries included).
	Delivered uint64 `json:"delivered"`
	// DeadLetters are the workload's events that exhausted their retries.
	DeadLetters uint64 `json:"deadLetters"`
	// LastDone is when the latest event of those done (answered, or dead
	// lettered) in order was.
	LastDone *time.Time `json:"lastDone,omitempty"`
	// Oldest is when the oldest event waiting for the trigger was stored,
	// and AgesOut when the stream's maxAge drops it (nil: none waits, or
	// no maxAge); AgingOut: it has lived AgingOutShare of maxAge.
	Oldest   *time.Time `json:"oldest,omitempty"`
	AgesOut  *time.Time `json:"agesOut,omitempty"`
	AgingOut bool       `json:"agingOut,omitempty"`
}

// Lag is what KEDA scales on.
func (s TriggerStatus) Lag() uint64 { return s.Pending + uint64(s.AckPending) }

// AgingOutShare is how much of the stream's maxAge the oldest waiting
// event of a trigger may have lived before status warns that events will
// age out unhandled.
const AgingOutShare = 0.8

// Usage is how full one of the project's streams is.
type Usage struct {
	Stream string `json:"stream"`
	Events uint64 `json:"events"`
	Bytes  uint64 `json:"bytes"`
	// MaxBytes and MaxAge are its limits (-1 and 0: none).
	MaxBytes int64         `json:"maxBytes"`
	MaxAge   time.Duration `json:"maxAge"`
	// First is when its oldest event was stored (nil: it is empty).
	First *time.Time `json:"first,omitempty"`
}

// DeadLetter is an event that exhausted its retries.
type DeadLetter struct {
	Seq        uint64    `json:"seq"`
	Workload   string    `json:"workload"`
	Consumer   string    `json:"consumer"`
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	Source     string    `json:"source"`
	Subject    string    `json:"subject"`
	Reason     string    `json:"reason"`
	Status     int       `json:"status"`
	Deliveries int       `json:"deliveries"`
	Stored     time.Time `json:"stored"`
}
