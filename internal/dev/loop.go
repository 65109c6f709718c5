package dev

import (
	"context"
	"sync"
)

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
