// Package localbus is `skiff dev --local`'s event bus: the embedded NATS
// server (package bus), the project's streams and consumers, the sink and
// the relay's deliveries and schedules, in this process. Package factory
// starts it and hands it to `skiff dev --local` as engine.DevBus (through
// cmdutil.Factory.DevLocalBus), so that neither the command layer nor
// package dev reaches nats.go, the bus or the cluster's client.
package localbus

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skiffdev/skiff/internal/bus"
	"github.com/skiffdev/skiff/internal/dev"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/relay"
	"github.com/skiffdev/skiff/internal/relay/relayplan"
)

// Bus is the event half of `skiff dev --local`: a NATS server with
// JetStream in this process (package bus), the project's streams and one
// durable consumer per trigger made as a deploy makes them
// (relay.Subscribe), a sink every workload gets as K_SINK (relay.Sink),
// the relay's delivery to each triggered workload (relay.Dispatcher), and
// the ticks of its schedules (relay.Scheduler): the sidecar's code, run
// in this process for every workload.
type Bus struct {
	// URL is the bus's (nats://127.0.0.1:<port>); Sink is K_SINK.
	URL, Sink string
	// Stream is the project's stream.
	Stream string

	root      string
	lock      *bus.LocalLock
	srv       *bus.Embedded
	nc        *nats.Conn
	js        jetstream.JetStream
	sink      *http.Server
	logger    *slog.Logger
	metrics   *relay.Metrics
	closeLogs func()
	workloads []string
	keepWarm  bool
	closeOnce sync.Once

	mu       sync.Mutex
	delivery map[string]*delivering // by workload
	stopped  bool
	wg       sync.WaitGroup
}

var _ engine.DevBus = (*Bus)(nil)

// delivering is the relay of one workload: its deliveries and schedules.
type delivering struct {
	key    string // what it was started with: a change restarts it
	cancel context.CancelFunc
	done   chan struct{}
}

// Start starts the bus of the project (its store in .skiff/bus),
// its streams and sink, and the deliveries of its triggered workloads.
// Only one runs per project: a second one is an error naming the first.
func Start(ctx context.Context, o engine.DevBusConfig) (b *Bus, err error) {
	root, p := o.Root, o.Project
	lock, err := bus.LockLocal(root)
	if err != nil {
		return nil, err
	}
	b = &Bus{root: root, lock: lock, Stream: relayplan.Stream(p), metrics: &relay.Metrics{}, delivery: map[string]*delivering{},
		workloads: o.Workloads, keepWarm: o.KeepWarm}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	w, closeLogs := dev.Prefixed(o.Logs, "relay", o.LogEvents)
	b.closeLogs = closeLogs
	b.logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{} // the lines are read as they come
		}
		return a
	}}))
	if b.srv, err = bus.StartEmbedded(ctx, filepath.Join(root, bus.LocalDir, "bus")); err != nil {
		return nil, err
	}
	b.URL = b.srv.URL
	if b.nc, err = nats.Connect(b.URL, nats.Name("skiff dev --local")); err != nil {
		return nil, fmt.Errorf("connecting to the local bus: %w", err)
	}
	if b.js, err = jetstream.New(b.nc); err != nil {
		return nil, err
	}
	if err := relay.EnsureStreams(ctx, b.js, b.Stream, p.Events.Limits()); err != nil {
		return nil, fmt.Errorf("the local bus: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("the local sink: %w", err)
	}
	b.Sink = "http://" + ln.Addr().String()
	b.sink = &http.Server{Handler: &relay.Sink{Stream: b.Stream, JS: b.js, Logger: b.logger, Metrics: b.metrics},
		ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = b.sink.Serve(ln) }()
	if err := b.apply(ctx, p); err != nil {
		return nil, err
	}
	if err := lock.Publish(bus.LocalState{PID: os.Getpid(), Bus: b.URL, Sink: b.Sink, Stream: b.Stream, Started: time.Now()}); err != nil {
		return nil, fmt.Errorf("writing the local bus's state: %w", err)
	}
	return b, nil
}

// Info says where the bus, its stream and the sink are.
func (b *Bus) Info() engine.DevBusInfo {
	return engine.DevBusInfo{URL: b.URL, Stream: b.Stream, Sink: b.Sink}
}

// Env is what every workload's environment gets: K_SINK.
func (b *Bus) Env() []string { return []string{"K_SINK=" + b.Sink} }

// Metrics count what the sink, the deliveries and the schedules did.
func (b *Bus) Metrics() *relay.Metrics { return b.metrics }

// SetProject makes the consumers and deliveries those of p (skiff.yaml
// changed): a workload whose triggers, delivery or port changed gets its
// relay again; one that lost its triggers, none.
func (b *Bus) SetProject(ctx context.Context, p *project.Project) error {
	if s := relayplan.Stream(p); s != b.Stream {
		return fmt.Errorf("events.stream changed from %s to %s: restart skiff dev to use it", b.Stream, s)
	}
	return b.apply(ctx, p)
}

// apply subscribes each triggered workload of p on the bus as a deploy
// does and (re)starts the relays whose plan changed.
func (b *Bus) apply(ctx context.Context, p *project.Project) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return nil
	}
	keep := map[string]bool{}
	for i := range p.Workloads {
		w := &p.Workloads[i]
		if len(w.Triggers) == 0 || !slices.Contains(b.workloads, w.Name) {
			continue
		}
		plan, err := relayplan.For(p, w)
		if err != nil {
			return err
		}
		keep[w.Name] = true
		ready := dev.URL(w) + w.Ready
		if dev.SleepsLocally(w, b.keepWarm) {
			ready = "" // asking it would wake it: deliveries wake it when there are events
		}
		d := &relay.Dispatcher{JS: b.js, Stream: plan.Stream, Workload: w.Name, Target: dev.URL(w) + "/", Ready: ready,
			Triggers: plan.Triggers, Delivery: plan.Delivery, Concurrency: plan.Delivery.Concurrency,
			Client: relay.HandlerClient(plan.Delivery.Concurrency), Logger: b.logger.With("workload", w.Name), Metrics: b.metrics}
		key, _ := json.Marshal([]any{plan, d.Target, d.Ready})
		if cur := b.delivery[w.Name]; cur != nil && cur.key == string(key) {
			continue
		}
		if err := relay.Subscribe(ctx, b.js, w.Name, plan, plan.Delivery.Concurrency); err != nil {
			return fmt.Errorf("the local bus: %w", err)
		}
		b.stopLocked(w.Name)
		b.startLocked(w.Name, string(key), d, plan.Schedules)
	}
	for name := range b.delivery {
		if !keep[name] {
			b.stopLocked(name)
			if err := relay.Unsubscribe(ctx, b.js, b.Stream, name, nil); err != nil {
				return fmt.Errorf("the local bus: %w", err)
			}
		}
	}
	return nil
}

func (b *Bus) startLocked(name, key string, d *relay.Dispatcher, schedules []relay.Schedule) {
	ctx, cancel := context.WithCancel(context.Background())
	dl := &delivering{key: key, cancel: cancel, done: make(chan struct{})}
	b.delivery[name] = dl
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer close(dl.done)
		var inner sync.WaitGroup
		inner.Add(1)
		go func() {
			defer inner.Done()
			sc := &relay.Scheduler{JS: b.js, Logger: d.Logger, Metrics: b.metrics}
			if err := sc.Run(ctx, schedules); err != nil {
				d.Logger.Error("schedules", "error", err.Error())
			}
		}()
		if err := d.Run(ctx); err != nil {
			d.Logger.Error("delivery stopped", "error", err.Error())
		}
		inner.Wait()
	}()
}

// stopLocked stops a workload's relay: no new deliveries, what was fetched
// and not started goes back to the stream, deliveries in flight finish.
func (b *Bus) stopLocked(name string) {
	if dl := b.delivery[name]; dl != nil {
		dl.cancel()
		<-dl.done
		delete(b.delivery, name)
	}
}

// StopDelivery stops every relay (before the workloads stop: an event is
// not sent to a process on its way out). The sink keeps serving.
func (b *Bus) StopDelivery() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopped = true
	for name := range b.delivery {
		b.stopLocked(name)
	}
}

// Close stops the relays, the sink and the bus, and removes the state
// and the lock: nothing of it is left, no port, no process, no lock. A
// second Close does nothing.
func (b *Bus) Close() { b.closeOnce.Do(b.close) }

func (b *Bus) close() {
	b.StopDelivery()
	b.wg.Wait()
	if b.sink != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = b.sink.Shutdown(ctx)
		cancel()
	}
	if b.nc != nil {
		b.nc.Close() // the relays have stopped: nothing is pending on it
	}
	if b.srv != nil {
		b.srv.Shutdown()
	}
	if b.closeLogs != nil {
		b.closeLogs()
	}
	b.lock.Release()
}
