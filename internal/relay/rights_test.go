package relay

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skiffdev/skiff/internal/bus"
	"github.com/skiffdev/skiff/internal/eventstream"
	"github.com/skiffdev/skiff/internal/natstest"
)

// userConn connects to the operator-mode server as the user in creds
// (with its reply prefix), and returns the server's asynchronous errors
// (permission violations) as they come.
func userConn(t *testing.T, url, creds string, inbox string) (*nats.Conn, jetstream.JetStream, chan error) {
	t.Helper()
	errs := make(chan error, 64)
	opts := []nats.Option{nats.UserCredentials(creds), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	})}
	if inbox != "" {
		opts = append(opts, nats.CustomInboxPrefix(inbox))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js, errs
}

// refused waits for the server to say it refused subject.
func refused(t *testing.T, errs chan error, what, subject string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case err := <-errs:
			if strings.Contains(err.Error(), "Permissions Violation") && strings.Contains(err.Error(), `"`+subject+`"`) {
				return
			}
		case <-timeout:
			t.Errorf("%s: the server did not refuse %s", what, subject)
			return
		}
	}
}

// The relay's minted user does a relay's whole job on a bus with accounts
// (deliveries, acks, dead letters, the sink), and nothing else: another
// workload's or project's consumer, the stream's management and its
// subjects' raw messages are refused by the server. A schedule's user
// publishes its tick and nothing else.
func TestRelayRightsOnABusWithAccounts(t *testing.T) {
	op := natstest.StartOperator(t)
	ctx := context.Background()
	_, admin, _ := userConn(t, op.URL, op.WriteUser(t, natstest.User{Name: "cli"}), "")
	lim := eventstream.Limits{MaxAge: time.Hour, MaxBytes: 64 << 20, DeadLetterMaxAge: time.Hour}
	for _, s := range []string{"shop", "other"} {
		if err := EnsureStreams(ctx, admin, s, lim); err != nil {
			t.Fatal(err)
		}
	}
	d := Delivery{Retries: 1, Backoff: 50 * time.Millisecond, Timeout: 5 * time.Second}
	filter, _ := Filter("shop", "com.example.a")
	mine := Trigger{Consumer: "thumbs-0", Filter: filter}
	theirs := Trigger{Consumer: "orders-0", Filter: filter}
	otherFilter, _ := Filter("other", "com.example.a")
	for stream, tr := range map[string]Trigger{"shop": theirs, "other": {Consumer: "other-0", Filter: otherFilter}} {
		if _, err := admin.CreateOrUpdateConsumer(ctx, stream, ConsumerConfig(tr, "orders", d, 8)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := admin.CreateOrUpdateConsumer(ctx, "shop", ConsumerConfig(mine, "thumbs", d, 8)); err != nil {
		t.Fatal(err)
	}

	key, err := bus.ReadSigningKey(op.WriteSigningKey(t))
	if err != nil {
		t.Fatal(err)
	}
	m := &bus.Minter{Key: key, Account: op.Account}
	tick := Schedule{Name: "thumbs-1a2b3c4d", Subject: "shop.dev.skiff.schedule.thumbs.1a2b3c4d"}
	plan := &Plan{Stream: "shop", Triggers: []Trigger{mine}, Schedules: []Schedule{tick}}
	rights := RelayRights(plan, "thumbs")
	creds, err := m.Mint("skiff-relay shop/thumbs", rights.Pub, rights.Sub)
	if err != nil {
		t.Fatal(err)
	}
	file := op.Dir + "/relay.creds"
	writeFile(t, file, creds)
	nc, js, errs := userConn(t, op.URL, file, rights.Inbox)

	// Its job: the sink stores, the dispatcher delivers from its consumer,
	// acks, and dead-letters.
	if _, err := Publish(ctx, js, "shop", NewEvent("com.example.a", "/t", "fine", time.Now(), []byte(`{}`))); err != nil {
		t.Fatalf("the relay's user cannot store an event: %v", err)
	}
	if _, err := Publish(ctx, js, "shop", NewEvent("com.example.a", "/t", "poison", time.Now(), []byte(`{}`))); err != nil {
		t.Fatal(err)
	}
	fn := newFunction(func(id string, _ int) int {
		if id == "poison" {
			return http.StatusInternalServerError
		}
		return 0
	})
	srv := httptestServer(t, fn)
	dctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- (&Dispatcher{JS: js, Stream: "shop", Workload: "thumbs", Target: srv, Triggers: []Trigger{mine},
			Delivery: d, Concurrency: 4, Client: &http.Client{}, Logger: quiet, Metrics: &Metrics{}}).Run(dctx)
	}()
	fn.wait(t, 1+2) // fine once, poison twice (one retry)
	waitAcked(t, admin, "thumbs-0")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("the dispatcher as the relay's user: %v", err)
	}
	dlq, _ := admin.Stream(ctx, DeadLetterStream("shop"))
	if info, _ := dlq.Info(ctx); info == nil || info.State.Msgs != 1 {
		t.Fatalf("dead letters stored: %+v", info)
	}
	cons, err := js.Consumer(ctx, "shop", "thumbs-0")
	if err != nil {
		t.Fatalf("the relay's user cannot read its consumer's state: %v", err)
	}
	if cons.CachedInfo().Name != "thumbs-0" {
		t.Errorf("consumer info: %+v", cons.CachedInfo())
	}

	// Not its job: each is refused by the server, and nothing changed.
	theirsInfo := func() *jetstream.ConsumerInfo {
		c, err := admin.Consumer(ctx, "shop", "orders-0")
		if err != nil {
			t.Fatalf("orders-0: %v", err)
		}
		return c.CachedInfo()
	}
	before := theirsInfo()
	for _, subject := range []string{
		"$JS.API.STREAM.PURGE.shop",
		"$JS.API.STREAM.DELETE.shop",
		"$JS.API.STREAM.UPDATE.shop",
		"$JS.API.STREAM.MSG.GET.shop",
		"$JS.API.CONSUMER.DELETE.shop.orders-0",
		"$JS.API.CONSUMER.DELETE.shop.thumbs-0",
		"$JS.API.CONSUMER.CREATE.shop.spy.shop.>",
		"$JS.API.CONSUMER.DURABLE.CREATE.shop.spy",
		"$JS.API.CONSUMER.MSG.NEXT.shop.orders-0",
		"$JS.API.CONSUMER.MSG.NEXT.other.other-0",
		"$JS.API.STREAM.INFO.other",
		"$JS.ACK.shop.orders-0.1.1.1.1.0",
		"dlq.shop.orders",
		"other.com.example.a",
	} {
		if err := nc.Publish(subject, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		refused(t, errs, "publish", subject)
	}
	for _, subject := range []string{"shop.>", "other.>", "_INBOX.>", "$JS.API.>"} {
		if _, err := nc.SubscribeSync(subject); err != nil {
			t.Fatal(err)
		}
		refused(t, errs, "subscribe", subject)
	}
	info, err := dlq.Info(ctx)
	if err != nil || info.State.Msgs != 1 {
		t.Errorf("the dead letters changed: %+v, %v", info, err)
	}
	s, _ := admin.Stream(ctx, "shop")
	if sinfo, _ := s.Info(ctx); sinfo.State.Msgs != 2 {
		t.Errorf("the stream holds %d events, want the 2 stored", sinfo.State.Msgs)
	}
	if after := theirsInfo(); after.Delivered != before.Delivered || after.NumAckPending != 0 {
		t.Errorf("another workload's consumer was read: %+v", after.Delivered)
	}
	if _, err := admin.Consumer(ctx, "shop", "spy"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("a consumer spy was made: %v", err)
	}

	// A schedule's user: its tick, nothing else.
	sr := ScheduleRights("shop", tick)
	screds, err := m.Mint("skiff schedule shop/"+tick.Name, sr.Pub, sr.Sub)
	if err != nil {
		t.Fatal(err)
	}
	sfile := op.Dir + "/tick.creds"
	writeFile(t, sfile, screds)
	snc, sjs, serrs := userConn(t, op.URL, sfile, sr.Inbox)
	if _, err := PublishTo(ctx, sjs, tick.Subject, NewEvent(eventstream.ScheduleType, "/s", "tick-1", time.Now(), nil)); err != nil {
		t.Fatalf("the schedule's user cannot store its tick: %v", err)
	}
	for _, subject := range []string{"shop.com.example.a", "shop.dev.skiff.schedule.orders.1", "$JS.API.STREAM.PURGE.shop"} {
		if err := snc.Publish(subject, nil); err != nil {
			t.Fatal(err)
		}
		refused(t, serrs, "schedule publish", subject)
	}
}

// A bus with accounts refuses a client without credentials; skiff's dial
// says so, and names a creds file that is missing, not a creds file, or
// expired, without the file's content, before connecting.
func TestDialWithCredentials(t *testing.T) {
	op := natstest.StartOperator(t)
	ctx := context.Background()
	_, err := bus.Dial(ctx, nil, op.URL, bus.Auth{})
	var need *bus.NeedsCredentialsError
	if !errors.As(err, &need) || !strings.Contains(err.Error(), "events.credentials") {
		t.Errorf("without credentials: %v, want NeedsCredentialsError", err)
	}
	good := op.WriteUser(t, natstest.User{Name: "cli"})
	conn, err := bus.Dial(ctx, nil, op.URL, bus.Auth{Creds: good})
	if err != nil {
		t.Fatalf("with credentials: %v", err)
	}
	if _, err := conn.Check(ctx); err != nil {
		t.Errorf("JetStream as the user: %v", err)
	}
	conn.Close()

	expired := op.WriteUser(t, natstest.User{Name: "old", Expires: time.Now().Add(-time.Hour)})
	garbage := op.Dir + "/garbage.creds"
	writeFile(t, garbage, []byte("SUAGARBAGE\n"))
	for file, want := range map[string]string{
		expired:                "expired at",
		garbage:                "holds no NATS user JWT",
		op.Dir + "/none.creds": "cannot be read",
	} {
		_, err := bus.Dial(ctx, nil, op.URL, bus.Auth{Creds: file})
		var ce *bus.CredsError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "SKIFF_NATS_CREDS") {
			t.Errorf("%s: %v, want a CredsError naming the file and saying %q", file, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "SU") && strings.Contains(err.Error(), "SUAGARBAGE") {
			t.Errorf("%s: the error shows the file's content: %v", file, err)
		}
	}
	// A user the server does not trust (another operator's account).
	stranger := natstest.StartOperator(t).WriteUser(t, natstest.User{Name: "stranger"})
	_, err = bus.Dial(ctx, nil, op.URL, bus.Auth{Creds: stranger})
	var ce *bus.CredsError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "refused") {
		t.Errorf("an untrusted user: %v, want the credentials refused", err)
	}
}

// Deploy keeps a user that fits (the same rights, signer and account,
// more than half its life left) and mints a new one otherwise.
func TestMinterCurrent(t *testing.T) {
	op := natstest.StartOperator(t)
	key, err := bus.ReadSigningKey(op.WriteSigningKey(t))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := &bus.Minter{Key: key, Account: op.Account, TTL: 10 * 24 * time.Hour, Now: func() time.Time { return now }}
	pub, sub := []string{"shop.>", "dlq.shop.thumbs"}, []string{"_INBOX_shop_thumbs.>"}
	creds, err := m.Mint("u", pub, sub)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Current(creds, []string{"dlq.shop.thumbs", "shop.>"}, sub) {
		t.Error("a fresh user with the same rights (in another order) is not kept")
	}
	if m.Current(creds, append(pub, "$JS.API.CONSUMER.INFO.shop.x"), sub) {
		t.Error("a user is kept though its rights changed")
	}
	later := &bus.Minter{Key: key, Account: op.Account, TTL: m.TTL, Now: func() time.Time { return now.Add(6 * 24 * time.Hour) }}
	if later.Current(creds, pub, sub) {
		t.Error("a user with less than half its life left is kept")
	}
	other := &bus.Minter{Key: key, Account: "ADIFFERENT", TTL: m.TTL, Now: m.Now}
	if other.Current(creds, pub, sub) {
		t.Error("a user of another account is kept")
	}
}

// EnsureStreams bounds new streams and changes only the limits of
// existing ones.
func TestEnsureStreamsLimits(t *testing.T) {
	js := natstest.Connect(t, natstest.Start(t))
	ctx := context.Background()
	lim := eventstream.Limits{MaxAge: 7 * 24 * time.Hour, MaxBytes: 1 << 30, DeadLetterMaxAge: 30 * 24 * time.Hour}
	if err := EnsureStreams(ctx, js, "shop", lim); err != nil {
		t.Fatal(err)
	}
	read := func(name string) jetstream.StreamConfig {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Config
	}
	if c := read("shop"); c.MaxAge != lim.MaxAge || c.MaxBytes != lim.MaxBytes {
		t.Errorf("shop: maxAge %s, maxBytes %d", c.MaxAge, c.MaxBytes)
	}
	if c := read("shop-dlq"); c.MaxAge != lim.DeadLetterMaxAge || c.MaxBytes != lim.MaxBytes {
		t.Errorf("shop-dlq: maxAge %s, maxBytes %d", c.MaxAge, c.MaxBytes)
	}
	// An operator's change of another field stays; the limits follow
	// skiff.yaml.
	c := read("shop")
	c.MaxMsgSize = 1 << 20
	if _, err := js.UpdateStream(ctx, c); err != nil {
		t.Fatal(err)
	}
	lim2 := eventstream.Limits{MaxAge: 36 * time.Hour, MaxBytes: 512 << 20, DeadLetterMaxAge: 48 * time.Hour}
	if err := EnsureStreams(ctx, js, "shop", lim2); err != nil {
		t.Fatal(err)
	}
	if c := read("shop"); c.MaxAge != lim2.MaxAge || c.MaxBytes != lim2.MaxBytes || c.MaxMsgSize != 1<<20 {
		t.Errorf("updated shop: maxAge %s, maxBytes %d, maxMsgSize %d", c.MaxAge, c.MaxBytes, c.MaxMsgSize)
	}
	if c := read("shop-dlq"); c.MaxAge != lim2.DeadLetterMaxAge {
		t.Errorf("updated shop-dlq: maxAge %s", c.MaxAge)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func httptestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// Status says when the oldest event waiting for a trigger was stored and
// when the stream's maxAge drops it; Usage reads the streams against
// their limits.
func TestStatusOldestAndUsage(t *testing.T) {
	js := natstest.Connect(t, natstest.Start(t))
	ctx := context.Background()
	lim := eventstream.Limits{MaxAge: time.Hour, MaxBytes: 8 << 20, DeadLetterMaxAge: 2 * time.Hour}
	if err := EnsureStreams(ctx, js, "shop", lim); err != nil {
		t.Fatal(err)
	}
	filter, _ := Filter("shop", "com.example.a")
	tr := Trigger{Consumer: "thumbs-0", Filter: filter, Event: "com.example.a"}
	d := Delivery{Retries: 1, Backoff: time.Second, Timeout: 5 * time.Second}
	if _, err := js.CreateOrUpdateConsumer(ctx, "shop", ConsumerConfig(tr, "thumbs", d, 4)); err != nil {
		t.Fatal(err)
	}
	plan := &Plan{Stream: "shop", Triggers: []Trigger{tr}}
	st, err := Status(ctx, js, "thumbs", plan)
	if err != nil || len(st) != 1 || st[0].Oldest != nil || st[0].AgingOut {
		t.Fatalf("with nothing waiting: %+v, %v", st, err)
	}
	publish(t, js, "other", "/t", "com.example.b") // not the trigger's
	publish(t, js, "first", "/t", "com.example.a")
	publish(t, js, "second", "/t", "com.example.a")
	s, _ := js.Stream(ctx, "shop")
	first, err := s.GetMsg(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	// The consumer counts the stream's new events a moment after the
	// stream acknowledged them (Pending 0 in one run of about 150 here):
	// read its status until it has both.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		st, err = Status(ctx, js, "thumbs", plan)
		if err != nil || st[0].Lag() == 2 || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || st[0].Oldest == nil || !st[0].Oldest.Equal(first.Time) || !st[0].AgesOut.Equal(first.Time.Add(time.Hour)) {
		t.Fatalf("oldest %v, ages out %v (%v); want %v", st[0].Oldest, st[0].AgesOut, err, first.Time)
	}
	if AgingOut(first.Time, time.Hour, first.Time.Add(47*time.Minute)) || !AgingOut(first.Time, time.Hour, first.Time.Add(48*time.Minute)) || AgingOut(first.Time, 0, first.Time.Add(1000*time.Hour)) {
		t.Error("AgingOut does not turn at 80% of maxAge")
	}
	u, err := Usage(ctx, js, "shop")
	if err != nil || len(u) != 2 {
		t.Fatalf("usage %+v, %v", u, err)
	}
	if u[0].Stream != "shop" || u[0].Events != 3 || u[0].Bytes == 0 || u[0].MaxBytes != 8<<20 || u[0].MaxAge != time.Hour || u[0].First == nil {
		t.Errorf("shop's usage %+v", u[0])
	}
	if u[1].Stream != "shop-dlq" || u[1].Events != 0 || u[1].MaxAge != 2*time.Hour || u[1].First != nil {
		t.Errorf("shop-dlq's usage %+v", u[1])
	}
}
