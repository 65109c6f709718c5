// Command eventwake measures event delivery on the test cluster, to a
// deployed CloudEvents function with an event trigger and `scale: {min:
// 0}` (testscripts/bench/events-cluster.sh deploys it):
//
//   - wake: WAKES times, wait until the function has no pods, publish one
//     event, and time until its reply (the template's handler answers each
//     event with one, which the relay stores) is on the stream;
//   - warm: into the one pod of a second function without scale, N events
//     at RATE per second, each from its publish to its reply being stored,
//     p50/p90/p99;
//   - burst: that second function's Deployment scaled to zero, BURST events
//     stored, the Deployment scaled back to one pod, and the events per
//     second that pod handles them at, from its first reply to its last.
//
// With -floor, the burst is not handled by the pod but by a bare
// consumer in this process on the same durable consumer (as many in
// flight as the relay's default, each event's reply stored before its
// ack, as the relay does; no HTTP, no handler): nats-server's part of
// the work, the floor of the pod's pace on this bus.
//
// With -cpu, the CPU each command on this machine used during the warm
// events and during the burst (from the pod's first delivery to its last
// ack), and per event: the test cluster runs on this machine, so that is
// nats-server, the relay and the handler, and the rest of the cluster.
//
// Times are the stream's own (JetStream's store times of the event and of
// its reply), so the way the benchmark reaches the bus is not counted. A
// reply is stored after the handler returned: handler entered is within
// the handler's own time (microseconds for the template) before. -bus
// nats://<the bus Service's cluster IP>:4222 reaches it straight from
// this machine (the node reaches Services); the default, a Service name,
// goes through a port-forward, as skiff does, whose work (the API server,
// the kubelet, containerd) shares the machine's CPU with the pod. While
// the warm and the burst events are handled, nothing goes to the bus but
// what must (the warm run's publishes, and the consumer's state): the
// events' and the replies' store times are read afterwards.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/internal/bus"
	"github.com/skiffdev/skiff/internal/kube"
	"github.com/skiffdev/skiff/internal/relay"
)

func main() {
	ns := flag.String("n", "", "the namespace")
	release := flag.String("release", "", "the function's release (its pods' app.kubernetes.io/instance)")
	busURL := flag.String("bus", "nats://nats.nats.svc.cluster.local:4222", "the bus")
	stream := flag.String("stream", "", "the project's stream")
	typ := flag.String("type", "com.example.image.uploaded", "the event type of the scaled function's trigger")
	warmType := flag.String("warm-type", "com.example.image.resized", "the event type of the always-on function's trigger")
	replyType := flag.String("reply", "com.example.greeting.reply", "the function's reply type")
	wakes := flag.Int("wakes", 10, "wake-ups from zero")
	rate := flag.Int("rate", 100, "warm events per second")
	n := flag.Int("events", 1000, "warm events (0: none)")
	burst := flag.Int("burst", 0, "then this many events stored while the always-on function has no pod, then handled by its one pod (0: none)")
	warmDeploy := flag.String("warm-deployment", "warm", "the always-on function's Deployment (scaled to zero and back for the burst)")
	cpu := flag.Bool("cpu", false, "print the CPU each command on this machine used during the warm events and the burst")
	floor := flag.Bool("floor", false, "handle the burst with a bare consumer in this process instead of the pod (no HTTP, no handler)")
	flag.Parse()
	if err := run(*ns, *release, *busURL, *stream, *typ, *warmType, *replyType, *warmDeploy, *wakes, *rate, *n, *burst, *cpu, *floor); err != nil {
		fmt.Fprintln(os.Stderr, "eventwake:", err)
		os.Exit(1)
	}
}

func run(ns, release, busURL, stream, typ, warmType, replyType, warmDeploy string, wakes, rate, n, burst int, cpu, floor bool) error {
	ctx := context.Background()
	kc, err := kube.New(kube.Options{})
	if err != nil {
		return err
	}
	conn, err := bus.Dial(ctx, kc, busURL, bus.Auth{Creds: os.Getenv("SKIFF_NATS_CREDS")})
	if err != nil {
		return err
	}
	defer conn.Close()
	replies, err := watchReplies(ctx, conn.JS, stream, replyType, time.Time{})
	if err != nil {
		return err
	}
	str, err := conn.JS.Stream(ctx, stream)
	if err != nil {
		return err
	}
	// storedAt is when the stream stored its message seq.
	storedAt := func(seq uint64) (time.Time, error) {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		m, err := str.GetMsg(pctx, seq)
		if err != nil {
			return time.Time{}, err
		}
		return m.Time, nil
	}
	// store stores an event of typ; its sequence number on the stream.
	store := func(id, typ string) (uint64, error) {
		ev := &relay.Event{Attrs: map[string]string{"specversion": "1.0", "id": id, "source": "/bench", "type": typ},
			ContentType: "application/json", Data: []byte(`{"name":"Ada"}`)}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		ack, err := relay.Publish(pctx, conn.JS, stream, ev)
		if err != nil {
			return 0, err
		}
		return ack.Sequence, nil
	}
	publishAs := func(id, typ string) (time.Time, error) {
		seq, err := store(id, typ)
		if err != nil {
			return time.Time{}, err
		}
		return storedAt(seq)
	}
	publish := func(id string) (time.Time, error) { return publishAs(id, typ) }
	selector := "app.kubernetes.io/instance=" + release
	// The stream keeps earlier runs' events and replies: ids of this run.
	nonce := fmt.Sprint(time.Now().UnixNano())
	waitZero := func() error {
		deadline := time.Now().Add(5 * time.Minute)
		for {
			pods, err := kc.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
			if err != nil {
				return err
			}
			if len(pods.Items) == 0 {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s did not scale to zero", release)
			}
			time.Sleep(200 * time.Millisecond) // polling the cluster: no event to wait on
		}
	}

	var wake []time.Duration
	for i := range wakes {
		if err := waitZero(); err != nil {
			return err
		}
		id := fmt.Sprintf("wake-%s-%d", nonce, i)
		at, err := publish(id)
		if err != nil {
			return err
		}
		got, err := replies.wait(id, 2*time.Minute)
		if err != nil {
			return err
		}
		wake = append(wake, got.Sub(at))
		fmt.Fprintf(os.Stderr, "wake %d: %s\n", i+1, got.Sub(at).Round(time.Millisecond))
	}
	if len(wake) > 0 {
		fmt.Printf("| first event at zero pods → reply stored | %d | %s | %s | %s | %s |\n", len(wake), pct(wake, 50), pct(wake, 90), pct(wake, 99), pct(wake, 100))
	}
	if n == 0 {
		return nil
	}
	// Warm: the always-on function; once it answered one, RATE events per
	// second.
	warmup := "warmup-" + nonce
	if _, err := publishAs(warmup, warmType); err != nil {
		return err
	}
	if _, err := replies.wait(warmup, 2*time.Minute); err != nil {
		return err
	}
	replies.stop()
	cons, err := warmConsumer(ctx, str, warmType)
	if err != nil {
		return err
	}
	var warmCPU *cpuSample
	if cpu {
		if warmCPU, err = sampleCPU(); err != nil {
			return err
		}
	}
	begin := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	type sent struct {
		id  string
		seq uint64
	}
	var mu sync.Mutex
	var all []sent
	var wg sync.WaitGroup
	errc := make(chan error, n)
	for i := range n {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("warm-%s-%d", nonce, i)
			seq, err := store(id, warmType)
			if err != nil {
				errc <- err
				return
			}
			mu.Lock()
			all = append(all, sent{id, seq})
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	var lastSeq uint64
	for _, s := range all {
		lastSeq = max(lastSeq, s.seq)
	}
	if err := waitHandled(ctx, cons, lastSeq, 500*time.Millisecond); err != nil {
		return err
	}
	var warmCPUEnd *cpuSample
	if cpu {
		if warmCPUEnd, err = sampleCPU(); err != nil {
			return err
		}
	}
	replies, err = watchReplies(ctx, conn.JS, stream, replyType, begin)
	if err != nil {
		return err
	}
	var warm []time.Duration
	for _, s := range all {
		got, err := replies.wait(s.id, time.Minute)
		if err != nil {
			return err
		}
		at, err := storedAt(s.seq)
		if err != nil {
			return err
		}
		warm = append(warm, got.Sub(at))
	}
	fmt.Printf("| warm, %d/s: event stored → reply stored | %d | %s | %s | %s | %s |\n", rate, len(warm), pct(warm, 50), pct(warm, 90), pct(warm, 99), pct(warm, 100))
	if cpu {
		printCPU(os.Stdout, fmt.Sprintf("the warm events at %d/s", rate), n, warmCPU, warmCPUEnd)
	}
	if burst == 0 {
		return nil
	}
	// Burst: the always-on function scaled to zero pods, BURST events
	// stored, then one pod again: the backlog is whole before the pod
	// starts, and from its first reply to its last is the pod's own pace.
	replies.stop()
	deploys := kc.Clientset.AppsV1().Deployments(ns)
	scaleTo := func(n int32) error {
		sc, err := deploys.GetScale(ctx, warmDeploy, metav1.GetOptions{})
		if err != nil {
			return err
		}
		sc.Spec.Replicas = n
		_, err = deploys.UpdateScale(ctx, warmDeploy, sc, metav1.UpdateOptions{})
		return err
	}
	if err := scaleTo(0); err != nil {
		return fmt.Errorf("scaling %s to zero: %w", warmDeploy, err)
	}
	deploy, err := deploys.Get(ctx, warmDeploy, metav1.GetOptions{})
	if err != nil {
		return err
	}
	sel, err := metav1.LabelSelectorAsSelector(deploy.Spec.Selector)
	if err != nil {
		return err
	}
	selector = sel.String()
	if err := waitZero(); err != nil {
		return err
	}
	begin = time.Now()
	subject, err := relay.Subject(stream, warmType)
	if err != nil {
		return err
	}
	futures := make([]jetstream.PubAckFuture, 0, burst)
	for i := range burst {
		ev := &relay.Event{Attrs: map[string]string{"specversion": "1.0", "id": fmt.Sprintf("burst-%s-%d", nonce, i), "source": "/bench", "type": warmType},
			ContentType: "application/json", Data: []byte(`{"name":"Ada"}`)}
		// Through the port-forward, the bus may confirm slower than this
		// publishes: wait rather than fail when 4,000 wait for it.
		f, err := conn.JS.PublishMsgAsync(ev.Message(subject), jetstream.WithMsgID(ev.Source()+"\x00"+ev.ID()), jetstream.WithStallWait(time.Minute))
		if err != nil {
			return err
		}
		futures = append(futures, f)
	}
	lastSeq = 0
	for _, f := range futures {
		select {
		case ack := <-f.Ok():
			lastSeq = max(lastSeq, ack.Sequence)
		case err := <-f.Err():
			return err
		case <-time.After(time.Minute):
			return fmt.Errorf("the bus did not confirm the burst's events within a minute")
		}
	}
	if floor {
		var a, b *cpuSample
		if cpu {
			if a, err = sampleCPU(); err != nil {
				return err
			}
		}
		took, err := consumeBare(ctx, conn.JS, cons, stream, replyType, burst, relay.DefaultConcurrency)
		if err != nil {
			return fmt.Errorf("the bare consumer: %w", err)
		}
		if cpu {
			if b, err = sampleCPU(); err != nil {
				return err
			}
		}
		if err := waitHandled(ctx, cons, lastSeq, 100*time.Millisecond); err != nil {
			return err
		}
		fmt.Printf("\n%d events waiting, handled by a bare consumer on this machine (no pod, no HTTP; each reply stored before its ack): from the first received to the last acked in %s, %.0f events/s\n",
			burst, took.Round(time.Millisecond), float64(burst)/took.Seconds())
		if cpu {
			printCPU(os.Stdout, "the bare consumer's burst", burst, a, b)
		}
		// The next run starts with the always-on function's pod.
		if err := scaleTo(1); err != nil {
			return fmt.Errorf("scaling %s to one pod: %w", warmDeploy, err)
		}
		return nil
	}
	if err := scaleTo(1); err != nil {
		return fmt.Errorf("scaling %s to one pod: %w", warmDeploy, err)
	}
	var burstCPU, burstCPUEnd *cpuSample
	if cpu {
		// From the pod's first delivery: its start is not the events' cost.
		if err := waitDelivering(ctx, cons, lastSeq-uint64(burst)); err != nil {
			return err
		}
		if burstCPU, err = sampleCPU(); err != nil {
			return err
		}
	}
	if err := waitHandled(ctx, cons, lastSeq, 100*time.Millisecond); err != nil {
		return err
	}
	if cpu {
		if burstCPUEnd, err = sampleCPU(); err != nil {
			return err
		}
	}
	replies, err = watchReplies(ctx, conn.JS, stream, replyType, begin)
	if err != nil {
		return err
	}
	defer replies.stop()
	var first, last time.Time
	for i := range burst {
		got, err := replies.wait(fmt.Sprintf("burst-%s-%d", nonce, i), time.Minute)
		if err != nil {
			return err
		}
		if first.IsZero() || got.Before(first) {
			first = got
		}
		if got.After(last) {
			last = got
		}
	}
	d := last.Sub(first)
	fmt.Printf("\n%d events waiting when one pod starts: handled from its first reply to its last in %s, %.0f events/s\n", burst, d.Round(time.Millisecond), float64(burst)/d.Seconds())
	if cpu {
		printCPU(os.Stdout, "the burst, from the pod's first delivery to its last ack", burst, burstCPU, burstCPUEnd)
	}
	return nil
}

// waitDelivering waits until cons delivered an event after the stream's
// sequence after: it reads the consumer's state every 20 ms.
func waitDelivering(ctx context.Context, cons jetstream.Consumer, after uint64) error {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.Delivered.Stream > after {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no event after #%d delivered within 5m", after)
		}
		time.Sleep(20 * time.Millisecond) // polling the bus: no event to wait on
	}
}

// waitHandled waits until cons has acked every event up to the stream's
// lastSeq: it reads the consumer's state every poll.
func waitHandled(ctx context.Context, cons jetstream.Consumer, lastSeq uint64, poll time.Duration) error {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.Delivered.Stream >= lastSeq && info.NumPending == 0 && info.NumAckPending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the events up to #%d were not handled within 5m: %d waiting, %d in flight", lastSeq, info.NumPending, info.NumAckPending)
		}
		time.Sleep(poll) // polling the bus: no event to wait on
	}
}

// warmConsumer is the consumer of the stream that reads the events of typ.
func warmConsumer(ctx context.Context, str jetstream.Stream, typ string) (jetstream.Consumer, error) {
	subject, err := relay.Subject(str.CachedInfo().Config.Name, typ)
	if err != nil {
		return nil, err
	}
	list := str.ListConsumers(ctx)
	for info := range list.Info() {
		for _, f := range append(info.Config.FilterSubjects, info.Config.FilterSubject) {
			if f != "" && relay.SubjectMatches(f, subject) && info.Config.Durable != "" {
				return str.Consumer(ctx, info.Name)
			}
		}
	}
	if err := list.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("no consumer reads %s", subject)
}

func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(min(i, len(s))-1, 0)].Round(100 * time.Microsecond)
}

// replySet records when each reply (by the id it answers) was stored.
type replySet struct {
	mu   sync.Mutex
	at   map[string]time.Time
	cond *sync.Cond
	cc   jetstream.ConsumeContext
}

// stop stops reading replies.
func (rs *replySet) stop() {
	if rs.cc != nil {
		rs.cc.Stop()
	}
}

// watchReplies records the replies stored from now on (from is zero) or
// since from.
func watchReplies(ctx context.Context, js jetstream.JetStream, stream, replyType string, from time.Time) (*replySet, error) {
	subject, err := relay.Subject(stream, replyType)
	if err != nil {
		return nil, err
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverNewPolicy}
	if !from.IsZero() {
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &from
	}
	cons, err := js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, err
	}
	rs := &replySet{at: map[string]time.Time{}}
	rs.cond = sync.NewCond(&rs.mu)
	rs.cc, err = cons.Consume(func(msg jetstream.Msg) {
		md, err := msg.Metadata()
		ev, evErr := relay.FromMessage(msg.Headers(), msg.Data())
		if err != nil || evErr != nil {
			return
		}
		rs.mu.Lock()
		if _, ok := rs.at[ev.Attrs["subject"]]; !ok {
			rs.at[ev.Attrs["subject"]] = md.Timestamp
		}
		rs.cond.Broadcast()
		rs.mu.Unlock()
	})
	return rs, err
}

func (rs *replySet) wait(id string, d time.Duration) (time.Time, error) {
	timer := time.AfterFunc(d, func() { rs.mu.Lock(); rs.cond.Broadcast(); rs.mu.Unlock() })
	defer timer.Stop()
	deadline := time.Now().Add(d)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for {
		if t, ok := rs.at[id]; ok {
			return t, nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("no reply to %s within %s", id, d)
		}
		rs.cond.Wait()
	}
}
