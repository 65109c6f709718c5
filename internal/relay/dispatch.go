package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Delivery is how a trigger's events are delivered: each attempt may take
// Timeout; a failed one is retried Retries times, after Backoff, then twice
// that, and so on; after the last, the event goes to the dead letters.
type Delivery struct {
	Retries int
	Backoff time.Duration
	Timeout time.Duration
	// Concurrency is the events a pod's handler is given at once
	// (DefaultConcurrency).
	Concurrency int
}

// maxBackoff caps the wait between two attempts.
const maxBackoff = 10 * time.Minute

// delay is the wait after the attempt-th failed attempt (from 1).
func (d Delivery) delay(attempt uint64) time.Duration {
	b := d.Backoff
	for i := uint64(1); i < attempt && b < maxBackoff; i++ {
		b *= 2
	}
	return min(b, maxBackoff)
}

// Trigger is one durable JetStream consumer of the stream: the events of
// Filter (and, when Source is set, of that source only).
type Trigger struct {
	Consumer string `json:"consumer"`
	Filter   string `json:"filter"`
	Source   string `json:"source,omitempty"`
	// Event and Schedule are the trigger as skiff.yaml has it (for
	// `skiff events status`); the relay does not read them.
	Event    string `json:"event,omitempty"`
	Schedule string `json:"schedule,omitempty"`
}

// Dispatcher delivers the events of its triggers to the function at
// Target, at least once: an event is acked only after the function
// answered 2xx within the delivery's timeout.
type Dispatcher struct {
	JS       jetstream.JetStream
	Stream   string // the stream's name, also its subjects' prefix
	Workload string
	Target   string // the handler: http://127.0.0.1:<port>/
	// Ready is the function's readiness URL: no event is fetched before it
	// answers 2xx, so a starting pod does not spend its events' retries.
	// Empty: no wait.
	Ready    string
	Triggers []Trigger
	Delivery Delivery
	// Concurrency bounds the events in flight to the function, per trigger.
	Concurrency int
	Client      *http.Client
	Logger      *slog.Logger
	Metrics     *Metrics
	// TracesPerSecond bounds the traces the dispatcher starts sampled in a
	// second, for events stored without one (0: TracesPerSecond). A
	// delivery is logged ("delivered") when its event's trace is sampled
	// or after a retry; a failure always is.
	TracesPerSecond int

	traces sampler
}

// HandlerClient is the HTTP client a Dispatcher delivers with when it
// has concurrency events in flight to one handler: it keeps a connection
// open to the handler for each of them. Go's default client keeps two per
// host, so with more in flight most deliveries opened a connection of
// their own and closed it after the answer.
func HandlerClient(concurrency int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil // the handler is in the pod: never through a proxy
	t.MaxIdleConnsPerHost = max(concurrency, 1)
	t.MaxIdleConns = max(concurrency, t.MaxIdleConns)
	return &http.Client{Transport: t}
}

// Run delivers until ctx ends, then stops fetching, hands back what it
// fetched but did not start (redelivered at once, to another pod), and
// waits for the deliveries in flight.
func (d *Dispatcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	var stopping atomic.Bool
	var consumes []jetstream.ConsumeContext
	pctx, stopReading := context.WithCancel(ctx)
	defer func() {
		stopReading()
		// Drain hands what was fetched but not started to the callback,
		// which naks it: redelivered at once, not after AckWait.
		stopping.Store(true)
		for _, cc := range consumes {
			cc.Drain()
		}
		for _, cc := range consumes {
			<-cc.Closed()
		}
		wg.Wait()
	}()
	if err := d.waitReady(ctx); err != nil {
		return nil // stopped before the function was ready
	}
	for _, t := range d.Triggers {
		// skiff deploy made the consumer; a relay whose bus user may not
		// create consumers (docs/security.md) only reads it. One that is
		// missing is made, on a bus that allows it (skiff dev --local).
		cons, err := d.JS.Consumer(ctx, d.Stream, t.Consumer)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			cons, err = d.JS.CreateOrUpdateConsumer(ctx, d.Stream, ConsumerConfig(t, d.Workload, d.Delivery, d.Concurrency))
		}
		if err != nil {
			return fmt.Errorf("the consumer %s of stream %s: %w", t.Consumer, d.Stream, err)
		}
		sem := make(chan struct{}, max(d.Concurrency, 1))
		cc, err := cons.Consume(func(msg jetstream.Msg) {
			if stopping.Load() {
				msg.Nak()
				return
			}
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				var once sync.Once
				free := func() { once.Do(func() { <-sem }) }
				defer func() { free(); wg.Done() }()
				d.handle(t, msg, free)
			}()
		}, jetstream.PullMaxMessages(max(d.Concurrency, 1)), jetstream.PullExpiry(PullExpiry), jetstream.PullHeartbeat(PullHeartbeat),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				d.Logger.Warn("fetching events", "consumer", t.Consumer, "error", err.Error())
			}))
		if err != nil {
			return fmt.Errorf("consuming %s: %w", t.Consumer, err)
		}
		consumes = append(consumes, cc)
		d.Logger.Info("delivering", "consumer", t.Consumer, "filter", t.Filter, "to", d.Target)
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.readPending(pctx, t.Consumer, cons)
		}()
	}
	<-ctx.Done()
	return nil
}

// PullExpiry and PullHeartbeat are the relay's pull requests' lifetime
// and the server's heartbeat on a waiting one. Now and then under a burst
// (about 1 in 25 bursts of 20,000 events on loopback) the client stopped
// asking for events while it had no request waiting on the server, until
// it missed two heartbeats: with the client's defaults (30 s, 15 s) the
// events left waited 30 s; a heartbeat a second bounds that to 2 s.
const (
	PullExpiry    = 10 * time.Second
	PullHeartbeat = time.Second
)

// PendingEvery is how often a trigger's lag is read from its consumer:
// one request to the server per trigger and pod.
const PendingEvery = 5 * time.Second

// readPending records the events of cons not yet delivered, now and every
// PendingEvery until ctx ends.
func (d *Dispatcher) readPending(ctx context.Context, name string, cons jetstream.Consumer) {
	tick := time.NewTicker(PendingEvery)
	defer tick.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, PendingEvery)
		info, err := cons.Info(ictx)
		cancel()
		if err == nil {
			d.Metrics.SetPending(name, int64(info.NumPending))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// sample reports whether a trace the dispatcher starts now is sampled.
func (d *Dispatcher) sample() bool { return d.traces.sample(time.Now(), d.TracesPerSecond) }

// waitReady asks the function's readiness path every 100ms until it
// answers 2xx or ctx ends.
func (d *Dispatcher) waitReady(ctx context.Context) error {
	if d.Ready == "" {
		return nil
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for logged := false; ; {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		status, err := AskReady(rctx, d.Client, d.Ready)
		cancel()
		if err == nil && status/100 == 2 {
			return nil
		}
		if !logged {
			d.Logger.Info("waiting for the function to be ready", "ready", d.Ready)
			logged = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// handle delivers one event and acks, naks or dead-letters it. It calls
// free once the function answered: while the function's reply is being
// stored, the function already has the next event. The event is acked
// only once the reply is stored.
func (d *Dispatcher) handle(t Trigger, msg jetstream.Msg, free func()) {
	md, err := msg.Metadata()
	if err != nil {
		d.Logger.Error("an event without JetStream metadata", "subject", msg.Subject(), "error", err.Error())
		msg.Nak()
		return
	}
	ev, err := FromMessage(msg.Headers(), msg.Data())
	if err != nil {
		d.deadLetter(t, msg, md, "not a CloudEvent: "+err.Error(), 0)
		return
	}
	if t.Source != "" && ev.Source() != t.Source {
		d.Metrics.count(Skipped, t.Consumer)
		d.ack(msg)
		return
	}
	// An event stored without a trace (by an older relay, or straight on
	// the bus) starts one here.
	ev.carryTrace(http.Header{}, false, nil, d.sample)
	ctx, cancel := context.WithTimeout(context.Background(), d.Delivery.Timeout)
	defer cancel()
	start := time.Now()
	status, out, err := d.deliver(ctx, ev)
	free()
	if err == nil && out != nil {
		err = d.storeReply(ctx, out)
		if err == nil {
			d.Metrics.count(Replied, t.Consumer)
		}
	}
	if err == nil {
		now := time.Now()
		d.Metrics.observe(Delivered, t.Consumer, now.Sub(md.Timestamp), now)
		if md.NumDelivered > 1 || ev.Sampled() {
			d.Logger.Info("delivered", "id", ev.ID(), "type", ev.Type(), "consumer", t.Consumer, "attempt", md.NumDelivered,
				"status", status, "duration_ms", float64(now.Sub(start).Microseconds())/1000, "trace_id", ev.TraceID())
		}
		d.ack(msg)
		return
	}
	d.Metrics.count(Failed, t.Consumer)
	if md.NumDelivered > uint64(d.Delivery.Retries) {
		d.deadLetter(t, msg, md, err.Error(), status)
		return
	}
	wait := d.Delivery.delay(md.NumDelivered)
	d.Metrics.count(Retried, t.Consumer)
	d.Logger.Warn("delivery failed; retrying", "id", ev.ID(), "type", ev.Type(), "attempt", md.NumDelivered,
		"of", d.Delivery.Retries+1, "in", wait.String(), "error", err.Error(), "trace_id", ev.TraceID())
	if err := msg.NakWithDelay(wait); err != nil {
		d.Logger.Warn("nak", "id", ev.ID(), "error", err.Error()) // redelivered after AckWait
	}
}

// reply is a function's reply event, to be stored under subject.
type reply struct {
	ev      *Event
	subject string
}

// deliver POSTs ev to the function in binary mode, its trace context as
// the traceparent header too; an error says why it did not answer 2xx
// before ctx ended. A CloudEvent the function answers with is its reply,
// in ev's trace unless it has one of its own: the caller stores it before
// the delivery counts as done.
func (d *Dispatcher) deliver(ctx context.Context, ev *Event) (int, *reply, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Target, bytes.NewReader(ev.Data))
	if err != nil {
		return 0, nil, err
	}
	ev.WriteHeaders(req.Header)
	ev.writeTrace(req.Header)
	resp, err := d.Client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, nil, fmt.Errorf("no answer within %s", d.Delivery.Timeout)
		}
		return 0, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return resp.StatusCode, nil, fmt.Errorf("the function answered %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxEvent+1))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("reading the function's answer: %w", err)
	}
	if len(body) > maxEvent {
		d.Logger.Warn("the function's answer is larger than an event may be; not stored", "id", ev.ID())
		return resp.StatusCode, nil, nil
	}
	out, err := readEvent(resp.Header, body)
	if err != nil {
		d.Logger.Warn("the function's answer is not a CloudEvent; not stored", "id", ev.ID(), "error", err.Error())
	}
	if out == nil || err != nil {
		return resp.StatusCode, nil, nil
	}
	out.carryTrace(http.Header{}, false, ev, nil)
	subject, err := Subject(d.Stream, out.Type())
	if err != nil {
		d.Logger.Warn("the function's reply has a type skiff cannot route; not stored", "id", ev.ID(), "error", err.Error())
		return resp.StatusCode, nil, nil
	}
	for _, other := range d.Triggers {
		if SubjectMatches(other.Filter, subject) {
			// It would come straight back: a loop, not a reply.
			d.Logger.Warn("the function's reply is of a type it is triggered by; not stored", "id", ev.ID(), "reply", out.Type())
			return resp.StatusCode, nil, nil
		}
	}
	return resp.StatusCode, &reply{ev: out, subject: subject}, nil
}

// storeReply stores r on the stream and waits until JetStream has it or
// ctx ends. The publish does not wait for the server's answer: the
// connection sends it along with the other deliveries' replies and acks.
// Its message id is the reply's source and id, so a reply stored twice (an
// event redelivered after its reply was stored but before its ack) is
// stored once.
func (d *Dispatcher) storeReply(ctx context.Context, r *reply) error {
	f, err := d.JS.PublishMsgAsync(r.ev.Message(r.subject), jetstream.WithMsgID(r.ev.Source()+"\x00"+r.ev.ID()))
	if err == nil {
		select {
		case <-f.Ok():
			return nil
		case err = <-f.Err():
		case <-ctx.Done():
			err = fmt.Errorf("no answer from the bus within %s", d.Delivery.Timeout)
		}
	}
	return fmt.Errorf("storing the function's reply %s: %w", r.ev.ID(), err)
}

// AskReady GETs a workload's readiness URL and returns the status it
// answered (its body read and dropped, so the connection is kept).
func AskReady(ctx context.Context, client *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// SubjectMatches reports whether NATS subject matches filter (with the
// wildcards * for one token and > for the rest).
func SubjectMatches(filter, subject string) bool {
	for filter != "" {
		var f, s string
		f, filter, _ = strings.Cut(filter, ".")
		if f == ">" {
			return subject != ""
		}
		if subject == "" {
			return false
		}
		s, subject, _ = strings.Cut(subject, ".")
		if f != "*" && f != s {
			return false
		}
	}
	return subject == ""
}

// deadLetter stores msg on the workload's dead-letter subject, with why,
// then acks it; until the dead letter is stored, msg stays on the stream.
func (d *Dispatcher) deadLetter(t Trigger, msg jetstream.Msg, md *jetstream.MsgMetadata, reason string, status int) {
	dl := nats.NewMsg(DeadLetterSubject(d.Stream, d.Workload))
	for k, vs := range msg.Headers() {
		dl.Header[k] = vs
	}
	dl.Header.Set("Skiff-Reason", reason)
	dl.Header.Set("Skiff-Status", strconv.Itoa(status))
	dl.Header.Set("Skiff-Subject", msg.Subject())
	dl.Header.Set("Skiff-Consumer", t.Consumer)
	dl.Header.Set("Skiff-Deliveries", strconv.FormatUint(md.NumDelivered, 10))
	dl.Header.Set("Skiff-Stream-Seq", strconv.FormatUint(md.Sequence.Stream, 10))
	dl.Data = msg.Data()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id := fmt.Sprintf("%s/%d", t.Consumer, md.Sequence.Stream)
	if _, err := d.JS.PublishMsg(ctx, dl, jetstream.WithMsgID(id)); err != nil {
		d.Logger.Error("storing a dead letter failed; the event stays", "seq", md.Sequence.Stream, "error", err.Error())
		msg.NakWithDelay(d.Delivery.delay(1))
		return
	}
	d.Metrics.count(DeadLettered, t.Consumer)
	traceID := ""
	if tp, ok := ParseTraceparent(msg.Headers().Get("ce-traceparent")); ok {
		traceID = tp.TraceIDString()
	}
	d.Logger.Warn("dead-lettered", "seq", md.Sequence.Stream, "consumer", t.Consumer, "deliveries", md.NumDelivered, "reason", reason, "trace_id", traceID)
	d.ack(msg)
}

// ack acks msg. It does not wait for the server to confirm: an ack lost
// on the way means the event comes again after AckWait (a duplicate, never
// a lost event), whether or not the relay waited to learn of it, and a
// confirmation is one more round trip to the bus per event while the
// delivery holds its place among those in flight.
func (d *Dispatcher) ack(msg jetstream.Msg) {
	if err := msg.Ack(); err != nil {
		d.Logger.Warn("ack not sent; the event will come again", "subject", msg.Subject(), "error", err.Error())
	}
}
