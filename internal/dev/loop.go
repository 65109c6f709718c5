package dev

import (
	"context"
	"sync"
	"time"
)

// Kind is what happened in the loop.
type Kind string

// The kinds of events.
const (
	// Watching: the loop is up; URL is where the workload answers.
	Watching Kind = "watching"
	// CycleStarted: the workload is being rebuilt.
	CycleStarted Kind = "cycle-started"
	// Ready: the new version answers its readiness path.
	Ready Kind = "ready"
	// Failed: the cycle failed (Error, and Output of the failed step); what
	// ran before keeps running when it could.
	Failed Kind = "failed"
	// Exited: the workload's process ended by itself.
	Exited Kind = "exited"
	// ManifestError: skiff.yaml does not load; the loop keeps what it has.
	ManifestError Kind = "manifest-error"
	// Stopped: the loop stopped the workload.
	Stopped Kind = "stopped"
)

// Event is one step of the loop.
type Event struct {
	Time     time.Time     `json:"time"`
	Kind     Kind          `json:"event"`
	Workload string        `json:"workload,omitempty"`
	URL      string        `json:"url,omitempty"`
	Duration time.Duration `json:"-"`
	Seconds  float64       `json:"seconds,omitempty"`
	Error    string        `json:"error,omitempty"`
	// Output is what the failed step printed (a compiler's errors).
	Output string `json:"output,omitempty"`
}

// Cycles runs cycles of workloads: never two of one workload at once, and
// a request that arrives while its cycle runs queues exactly one more
// (however many requests arrive meanwhile). Cycles of different workloads
// run concurrently.
type Cycles struct {
	// Run is one cycle of a workload.
	Run func(ctx context.Context, workload string)

	mu    sync.Mutex
	kicks map[string]chan struct{}
	wg    sync.WaitGroup
}

// Request asks for a cycle of workload; it never blocks.
func (c *Cycles) Request(ctx context.Context, workload string) {
	c.mu.Lock()
	if c.kicks == nil {
		c.kicks = map[string]chan struct{}{}
	}
	ch, ok := c.kicks[workload]
	if !ok {
		ch = make(chan struct{}, 1)
		c.kicks[workload] = ch
		c.wg.Add(1)
		go c.worker(ctx, workload, ch)
	}
	c.mu.Unlock()
	select {
	case ch <- struct{}{}:
	default: // one is queued already: it will see this change too
	}
}

func (c *Cycles) worker(ctx context.Context, workload string, kick <-chan struct{}) {
	defer c.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
			if ctx.Err() != nil {
				return
			}
			c.Run(ctx, workload)
		}
	}
}

// Wait waits for the workers to end (once ctx of their requests ended).
func (c *Cycles) Wait() { c.wg.Wait() }
