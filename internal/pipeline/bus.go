package pipeline

import (
	"context"
	"net/url"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skiffdev/skiff/internal/bus"
	"github.com/skiffdev/skiff/internal/kube"
	"github.com/skiffdev/skiff/internal/project"
)

// BusConn is a connection to a project's event bus (through a
// port-forward when the bus is a Service of the cluster).
type BusConn = bus.Conn

// DialBus connects to the project's bus, reaching the cluster (connect)
// only when the bus is one of its Services.
func DialBus(ctx context.Context, p *project.Project, connect func(context.Context) (*Session, error)) (*BusConn, error) {
	var kc *kube.Client
	if u, err := url.Parse(p.Events.Bus); err == nil {
		if _, _, inCluster := kube.ServiceHost(u.Hostname()); inCluster {
			s, err := connect(ctx)
			if err != nil {
				return nil, err
			}
			kc = s.Kube
		}
	}
	return bus.Dial(ctx, kc, p.Events.Bus)
}

// TailConsumer reads the events of stream that match filter as they are
// stored (since > 0: from that long ago), with an ephemeral ordered
// consumer that acknowledges nothing.
func TailConsumer(ctx context.Context, conn *BusConn, stream, filter string, since time.Duration) (jetstream.MessagesContext, error) {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverNewPolicy}
	if since > 0 {
		start := time.Now().Add(-since)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	cons, err := conn.JS.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, err
	}
	return cons.Messages()
}
