// Command eventload measures the relay's delivery on loopback: a real
// nats-server with JetStream on a file store (the server's own code, run
// in this process), the relay's Dispatcher, and a Go HTTP handler that
// answers at once. It publishes events at -rate per second and reports,
// per event, the time from the publish call to the handler being entered
// (p50, p90, p99, max), then publishes -burst events as fast as it can and
// reports how many the handler received per second, and how many were
// lost or delivered twice.
//
// With -target, the function is a handler already running there (a
// template's function, started by events.sh) that answers each event with
// a reply of type -reply-type: an event then counts as arrived when its
// reply is stored on the stream (the reply's CloudEvents subject names the
// event, as the templates set it), and the latency is from the publish
// call to the reply stored.
//
//	go run ./testscripts/bench/eventload -rate 100 -n 2000 -burst 20000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/relay"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "eventload:", err)
		os.Exit(1)
	}
}

func run() error {
	rate := flag.Int("rate", 100, "events per second for the latency run")
	n := flag.Int("n", 2000, "events in the latency run")
	burst := flag.Int("burst", 20000, "events in the throughput run")
	concurrency := flag.Int("concurrency", relay.DefaultConcurrency, "the relay's events in flight")
	target := flag.String("target", "", "a running handler's URL (default: one in this process that answers at once)")
	replyType := flag.String("reply-type", "bench.reply", "with -target: the type of the handler's replies")
	defaultClient := flag.Bool("default-client", false, "deliver with Go's default HTTP client, as the relay did before it sized its own")
	warnings := flag.Bool("warnings", false, "print the relay's warnings and errors (failed deliveries, retries) on stderr")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the throughput run (this process: nats-server, the relay and the publisher) to this file")
	flag.Parse()

	dir, err := os.MkdirTemp("", "eventload")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		return err
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		return errors.New("nats-server did not start")
	}
	defer ns.Shutdown()
	pub, err := nats.Connect(ns.ClientURL())
	if err != nil {
		return err
	}
	defer pub.Close()
	js, _ := jetstream.New(pub)
	sub, err := nats.Connect(ns.ClientURL()) // the relay's own connection, as in a pod
	if err != nil {
		return err
	}
	defer sub.Close()
	rjs, _ := jetstream.New(sub)
	ctx := context.Background()
	if err := relay.EnsureStreams(ctx, js, "bench", (*project.Events)(nil).Limits()); err != nil {
		return err
	}

	// The function: notes when each event arrived (entered the handler,
	// or with -target its reply was stored).
	var mu sync.Mutex
	entered := map[string]time.Time{}
	seen := map[string]int{}
	arrived := make(chan struct{}, *burst+*n)
	note := func(id string, now time.Time) {
		mu.Lock()
		if _, ok := entered[id]; !ok {
			entered[id] = now
		}
		seen[id]++
		mu.Unlock()
		arrived <- struct{}{}
	}
	trigger := "*"
	url := *target
	if url == "" {
		fn := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			now := time.Now()
			io.Copy(io.Discard, r.Body)
			note(r.Header.Get("Ce-Id"), now)
		})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		go http.Serve(ln, fn)
		url = "http://" + ln.Addr().String() + "/"
	} else {
		trigger = "bench.tick" // not the replies' type: a function is not triggered by its own replies
		subject, err := relay.Subject("bench", *replyType)
		if err != nil {
			return err
		}
		replies, err := pub.Subscribe(subject, func(m *nats.Msg) {
			now := time.Now()
			if ev, err := relay.FromMessage(m.Header, m.Data); err == nil {
				note(ev.Attrs["subject"], now)
			}
		})
		if err != nil {
			return err
		}
		defer replies.Unsubscribe()
		pub.Flush()
	}
	filter, _ := relay.Filter("bench", trigger)
	client := relay.HandlerClient(*concurrency)
	if *defaultClient {
		client = &http.Client{}
	}
	d := &relay.Dispatcher{JS: rjs, Stream: "bench", Workload: "fn", Target: url,
		Triggers: []relay.Trigger{{Consumer: "fn-0", Filter: filter}},
		Delivery: relay.Delivery{Retries: 3, Backoff: time.Second, Timeout: 10 * time.Second}, Concurrency: *concurrency,
		Client: client, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if *warnings {
		d.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	dctx, stop := context.WithCancel(ctx)
	defer stop()
	go d.Run(dctx)

	send := func(id string) (time.Time, error) {
		ev := &relay.Event{Attrs: map[string]string{"specversion": "1.0", "id": id, "source": "/bench", "type": "bench.tick"},
			ContentType: "application/json", Data: []byte(`{"name":"bench"}`)}
		start := time.Now()
		_, err := js.PublishMsg(ctx, ev.Message("bench.bench.tick"))
		return start, err
	}
	wait := func(k int, timeout time.Duration) error {
		deadline := time.After(timeout)
		for range k {
			select {
			case <-arrived:
			case <-deadline:
				return fmt.Errorf("the function got fewer than %d events", k)
			}
		}
		return nil
	}

	// The floor: the same events POSTed straight to the handler, no bus,
	// timed to the handler entered (or, with -target, to its answer).
	floorClient := &http.Client{}
	var floor []time.Duration
	tick := time.NewTicker(time.Second / time.Duration(*rate))
	for i := range *n {
		<-tick.C
		id := "f" + strconv.Itoa(i)
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"name":"bench"}`))
		for k, v := range map[string]string{"Ce-Id": id, "Ce-Specversion": "1.0", "Ce-Source": "/bench", "Ce-Type": "bench.tick", "Content-Type": "application/json"} {
			req.Header.Set(k, v)
		}
		at := time.Now()
		resp, err := floorClient.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if *target != "" {
			floor = append(floor, time.Since(at))
			continue
		}
		<-arrived
		mu.Lock()
		floor = append(floor, entered[id].Sub(at))
		mu.Unlock()
	}
	tick.Stop()
	slices.Sort(floor)
	pf := func(q int) time.Duration { return floor[min(len(floor)-1, len(floor)*q/100)] }
	what, to := "HTTP POST straight to the handler (the floor)", "handler entered"
	if *target != "" {
		what, to = "HTTP POST straight to the handler, to its answer (the floor)", "reply stored"
	}
	fmt.Printf("| %s, %d/s | %d | %s | %s | %s | %s |\n", what, *rate, len(floor), ms(pf(50)), ms(pf(90)), ms(pf(99)), ms(floor[len(floor)-1]))

	// Latency at a fixed rate.
	sent := map[string]time.Time{}
	tick = time.NewTicker(time.Second / time.Duration(*rate))
	for i := range *n {
		<-tick.C
		id := "l" + strconv.Itoa(i)
		at, err := send(id)
		if err != nil {
			return err
		}
		sent[id] = at
	}
	tick.Stop()
	if err := wait(*n, time.Minute); err != nil {
		return err
	}
	var lat []time.Duration
	mu.Lock()
	for id, at := range sent {
		lat = append(lat, entered[id].Sub(at))
	}
	mu.Unlock()
	slices.Sort(lat)
	p := func(q int) time.Duration { return lat[min(len(lat)-1, len(lat)*q/100)] }
	fmt.Printf("| publish → %s, %d events/s, %d in flight | %d | %s | %s | %s | %s |\n", to, *rate, *concurrency, len(lat), ms(p(50)), ms(p(90)), ms(p(99)), ms(lat[len(lat)-1]))

	// Throughput: publish as fast as acks come (async), count arrivals.
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	start := time.Now()
	futures := make([]jetstream.PubAckFuture, 0, *burst)
	for i := range *burst {
		ev := &relay.Event{Attrs: map[string]string{"specversion": "1.0", "id": "b" + strconv.Itoa(i), "source": "/bench", "type": "bench.tick"},
			ContentType: "application/json", Data: []byte(`{"name":"bench"}`)}
		// On a busy machine the server confirms slower than this loop
		// publishes: wait for room (the client's default gives up after
		// 200 ms with "stalled with too many outstanding").
		f, err := js.PublishMsgAsync(ev.Message("bench.bench.tick"), jetstream.WithStallWait(time.Minute))
		if err != nil {
			return err
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return err
		}
	}
	stored := time.Since(start)
	if *warnings {
		// While the burst is not all delivered, the consumer's state every 5 s.
		done := make(chan struct{})
		defer close(done)
		go func() {
			tick := time.NewTicker(5 * time.Second)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
				}
				c, err := rjs.Consumer(ctx, "bench", "fn-0")
				if err != nil {
					continue
				}
				if info, err := c.Info(ctx); err == nil {
					fmt.Fprintf(os.Stderr, "eventload: after %s: %d pending, %d awaiting an ack, %d pull requests waiting, delivered #%d, acked up to #%d, %d redelivered\n",
						time.Since(start).Round(time.Second), info.NumPending, info.NumAckPending, info.NumWaiting, info.Delivered.Stream, info.AckFloor.Stream, info.NumRedelivered)
				}
			}
		}()
	}
	if err := wait(*burst, 5*time.Minute); err != nil {
		return err
	}
	took := time.Since(start)
	mu.Lock()
	lost, dup := 0, 0
	for i := range *burst {
		switch c := seen["b"+strconv.Itoa(i)]; {
		case c == 0:
			lost++
		case c > 1:
			dup += c - 1
		}
	}
	mu.Unlock()
	fmt.Printf("| %d events published at once, %d in flight: stored in | %s | delivered in | %s | %.0f events/s | lost %d, duplicates %d |\n",
		*burst, *concurrency, ms(stored), ms(took), float64(*burst)/took.Seconds(), lost, dup)
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
