package engine

import (
	"context"
	"errors"
	"time"

	"github.com/skiffdev/skiff/internal/project"
)

// ErrNoLocalBus says no `skiff dev --local` runs for the project (its bus
// is in that process).
var ErrNoLocalBus = errors.New("no skiff dev --local runs for this project")

// Bus is a connection to a project's event bus (NATS JetStream): what
// `skiff events` asks of it. Close it.
type Bus interface {
	Close()
	// Publish stores a CloudEvent on the project's stream (made when
	// missing).
	Publish(ctx context.Context, ev CloudEvent) (*Stored, error)
	// Tail follows the events of the project's stream of type typ (a
	// type, a prefix ending in .*, or *), from now on, or since that long
	// ago. Stop it. Its errors, and Triggers', name the bus.
	Tail(ctx context.Context, typ string, since time.Duration) (Tail, error)
	// Triggers reads the consumer of each trigger of ws.
	Triggers(ctx context.Context, ws []project.Workload) ([]TriggerStatus, error)
	// Streams reads the use of the project's streams against their
	// limits.
	Streams(ctx context.Context) ([]StreamUsage, error)
	// DeadLetters lists the dead letters of workload ("": of every one).
	DeadLetters(ctx context.Context, workload string) ([]DeadLetter, error)
	// Replay stores a dead letter's event again for the trigger that
	// failed it, then removes the dead letter; dl comes from DeadLetters.
	Replay(ctx context.Context, dl DeadLetter) error
}

// CloudEvent is an event to publish.
type CloudEvent struct {
	// Attrs are its attributes (specversion, id, source, type, time...).
	Attrs map[string]string
	// ContentType and Data are its data ("": none).
	ContentType string
	Data        []byte
}

// Stored says where a published event went.
type Stored struct {
	Subject, Stream string
	Seq             uint64
	// Duplicate: the stream had an event of that id already.
	Duplicate bool
}

// Tail is a stream of stored events.
type Tail interface {
	// Filter is the subject filter followed.
	Filter() string
	// Next waits for the next event; it fails once the tail is stopped.
	Next() (*TailedEvent, error)
	// Stop ends the tail; Next returns at once.
	Stop()
}

// TailedEvent is one stored event.
type TailedEvent struct {
	Seq     uint64
	Subject string
	Stored  time.Time
	Attrs   map[string]string
	Data    []byte
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

// AgingOutShare is how much of the stream's maxAge the oldest waiting
// event of a trigger may have lived before status warns that events will
// age out unhandled.
const AgingOutShare = 0.8

// StreamUsage is how full one of the project's streams is.
type StreamUsage struct {
	Stream string `json:"stream"`
	Events uint64 `json:"events"`
	Bytes  uint64 `json:"bytes"`
	// MaxBytes and MaxAge are its limits (-1 and 0: none).
	MaxBytes int64         `json:"maxBytes"`
	MaxAge   time.Duration `json:"maxAge"`
	// First is when its oldest event was stored (nil: it is empty).
	First *time.Time `json:"first,omitempty"`
}

// Lag is what KEDA scales on.
func (s TriggerStatus) Lag() uint64 { return s.Pending + uint64(s.AckPending) }

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
