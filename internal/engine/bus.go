package engine

import (
	"context"
	"errors"
	"time"

	"github.com/skiffdev/skiff/internal/eventstream"
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

// The bus's values the relay shares (package eventstream).
type (
	// TriggerStatus is how one trigger's consumer stands.
	TriggerStatus = eventstream.TriggerStatus
	// StreamUsage is how full one of the project's streams is.
	StreamUsage = eventstream.Usage
	// DeadLetter is an event that exhausted its retries.
	DeadLetter = eventstream.DeadLetter
)
