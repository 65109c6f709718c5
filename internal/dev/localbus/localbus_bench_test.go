package localbus

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/relay"
)

// BenchmarkLocalBusDelivery measures dev --local's bus from an event
// published (relay.Publish returns once JetStream stored it) to its
// handler entered, at a steady 100 events a second for 10 s, per run:
//
//	go test -run '^$' -bench LocalBusDelivery -benchtime 1x ./internal/dev/
func BenchmarkLocalBusDelivery(b *testing.B) {
	const rate, seconds = 100, 10
	for range b.N {
		var mu sync.Mutex
		sent := map[string]time.Time{}
		var lat []time.Duration
		all := make(chan struct{})
		h, port := startHandler(b, func(hd http.Header, w http.ResponseWriter) {
			now := time.Now()
			mu.Lock()
			defer mu.Unlock()
			if at, ok := sent[hd.Get("Ce-Id")]; ok {
				lat = append(lat, now.Sub(at))
				delete(sent, hd.Get("Ce-Id"))
				if len(lat) == rate*seconds {
					close(all)
				}
			}
		})
		stop := make(chan struct{})
		go func() {
			for { // the handler's record, unused here
				select {
				case <-h.seen:
				case <-stop:
					return
				}
			}
		}()
		p := &project.Project{Name: "bench", Workloads: []project.Workload{
			{Name: "fn", Port: port, Ready: "/", Triggers: []project.Trigger{{Event: "com.example.bench"}}}}}
		lb, err := Start(context.Background(), engine.DevBusConfig{Root: b.TempDir(), Project: p, Workloads: []string{"fn"}, Logs: io.Discard})
		if err != nil {
			b.Fatal(err)
		}
		nc, err := nats.Connect(lb.URL)
		if err != nil {
			b.Fatal(err)
		}
		js, _ := jetstream.New(nc)
		ctx := context.Background()
		tick := time.NewTicker(time.Second / rate)
		for i := range rate * seconds {
			<-tick.C
			id := fmt.Sprint(i)
			mu.Lock()
			sent[id] = time.Now()
			mu.Unlock()
			if _, err := relay.Publish(ctx, js, "bench", relay.NewEvent("com.example.bench", "/bench", id, time.Now(), []byte(`{}`))); err != nil {
				b.Fatal(err)
			}
		}
		tick.Stop()
		select {
		case <-all:
		case <-time.After(30 * time.Second):
			b.Fatalf("only %d of %d events handled", len(lat), rate*seconds)
		}
		nc.Close()
		lb.Close()
		close(stop)
		slices.Sort(lat)
		q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))].Microseconds()) / 1000 }
		b.ReportMetric(q(0.50), "p50-ms")
		b.ReportMetric(q(0.99), "p99-ms")
		b.ReportMetric(q(1), "max-ms")
	}
}
