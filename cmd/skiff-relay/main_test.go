package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/bus"
	"github.com/skiffdev/skiff/internal/eventstream"
	"github.com/skiffdev/skiff/internal/natstest"
	"github.com/skiffdev/skiff/internal/relay"
	"github.com/skiffdev/skiff/internal/stats"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitOK(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered 200: %v", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServeAndPublish runs the relay against a real nats-server: an event
// POSTed to the sink, and one stored by `skiff-relay publish`, both reach
// the function through the trigger; then the relay stops cleanly.
func TestServeAndPublish(t *testing.T) {
	busURL := natstest.Start(t)

	got := make(chan string, 10)
	times := make(chan string, 10)
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Ce-Type") + " " + r.Header.Get("Ce-Source")
		times <- r.Header.Get("Ce-Id") + " " + r.Header.Get("Ce-Time")
	}))
	defer fn.Close()
	sink, admin := freeAddr(t), freeAddr(t)
	env := map[string]string{
		"SKIFF_RELAY_BUS": busURL, "SKIFF_RELAY_STREAM": "shop", "SKIFF_RELAY_WORKLOAD": "thumbs",
		"SKIFF_RELAY_TARGET": fn.URL, "SKIFF_RELAY_SINK": sink, "SKIFF_RELAY_ADMIN": admin,
		"SKIFF_RELAY_TRIGGERS": `[{"consumer":"thumbs-0","filter":"shop.>"}]`,
	}
	getenv := func(k string) string { return env[k] }
	// The streams and the consumer exist before the relay runs: skiff
	// deploy creates them.
	if err := publishStreams(busURL); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, nil, getenv, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now()) }()
	waitOK(t, "http://"+admin+"/readyz")

	req, _ := http.NewRequest(http.MethodPost, "http://"+sink, strings.NewReader(`{"n":1}`))
	for k, v := range map[string]string{"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/orders", "ce-type": "com.example.order.placed", "Content-Type": "application/json"} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST to the sink: %v %v", resp, err)
	}
	resp.Body.Close()
	var out strings.Builder
	if err := publish(context.Background(), []string{"--source", "/schedules/thumbs/0"}, getenv, &out); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"com.example.order.placed /orders": true, "dev.skiff.schedule /schedules/thumbs/0": true}
	for range 2 {
		select {
		case g := <-got:
			if !want[g] {
				t.Errorf("the function got %q", g)
			}
			delete(want, g)
		case <-time.After(10 * time.Second):
			t.Fatalf("the function did not get %v", want)
		}
	}
	// A CronJob's tick: its Job names its id and scheduled minute.
	if err := publish(context.Background(), []string{"--source", "/s", "--job", "thumbs-1a2b3c4d-29000000",
		"--subject", "shop.dev.skiff.schedule.thumbs.1a2b3c4d"}, getenv, io.Discard); err != nil {
		t.Fatal(err)
	}
	<-times
	<-times
	select {
	case tick := <-times:
		if want := "thumbs-1a2b3c4d-29000000 " + time.Unix(29000000*60, 0).UTC().Format(time.RFC3339Nano); tick != want {
			t.Errorf("the tick arrived as %q, want %q", tick, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the tick did not arrive")
	}
	if err := publish(context.Background(), []string{"--source", "/s", "--subject", "other.x"}, getenv, io.Discard); err == nil {
		t.Error("publish on a subject outside the stream was accepted")
	}
	// The preStop hook's /drain stops the deliveries and answers once
	// they stopped; the sink still serves.
	if resp, err := http.Get("http://" + admin + "/drain"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("drain: %v %v", resp, err)
	}
	req, _ = http.NewRequest(http.MethodPost, "http://"+sink, strings.NewReader(`{"n":2}`))
	for k, v := range map[string]string{"ce-specversion": "1.0", "ce-id": "2", "ce-source": "/orders", "ce-type": "com.example.order.placed", "Content-Type": "application/json"} {
		req.Header.Set(k, v)
	}
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("after the drain, POST to the sink: %v %v", resp, err)
	}
	resp.Body.Close()
	metrics, _ := http.Get("http://" + admin + "/metrics")
	body, _ := io.ReadAll(metrics.Body)
	metrics.Body.Close()
	if !strings.Contains(string(body), "skiff_relay_published_total 2\n") {
		t.Errorf("metrics:\n%s", body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
	if _, err := parse("x", nil, func(string) string { return "" }, nil); err == nil {
		t.Error("no stream was accepted")
	}
	if err := publish(context.Background(), nil, getenv, io.Discard); err == nil || !strings.Contains(err.Error(), "--source") {
		t.Errorf("publish without --source: %v", err)
	}
	if !strings.Contains(out.String(), "stored ") {
		t.Errorf("publish printed %q", out.String())
	}
}

func publishStreams(url string) error {
	nc, js, err := connect(&options{bus: url}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := relay.EnsureStreams(context.Background(), js, "shop", eventstream.Limits{}); err != nil {
		return err
	}
	_, err = js.CreateOrUpdateConsumer(context.Background(), "shop",
		relay.ConsumerConfig(relay.Trigger{Consumer: "thumbs-0", Filter: "shop.>"}, "thumbs", relay.DefaultDelivery(), 4))
	return err
}

// On a bus with accounts, `skiff-relay publish` (a schedule's CronJob)
// connects as the user deploy minted for it (SKIFF_RELAY_CREDS, with its
// reply prefix SKIFF_RELAY_INBOX), whose only right is its tick.
func TestPublishAsAMintedUser(t *testing.T) {
	op := natstest.StartOperator(t)
	admin := op.WriteUser(t, natstest.User{Name: "cli"})
	nc, js, err := connect(&options{bus: op.URL, creds: admin}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := relay.EnsureStreams(context.Background(), js, "shop", eventstream.Limits{}); err != nil {
		t.Fatal(err)
	}
	key, err := bus.ReadSigningKey(op.WriteSigningKey(t))
	if err != nil {
		t.Fatal(err)
	}
	tick := relay.Schedule{Name: "thumbs-1a2b3c4d", Subject: "shop.dev.skiff.schedule.thumbs.1a2b3c4d"}
	r := relay.ScheduleRights("shop", tick)
	creds, err := (&bus.Minter{Key: key, Account: op.Account}).Mint("tick", r.Pub, r.Sub)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "user.creds")
	if err := os.WriteFile(file, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SKIFF_RELAY_BUS": op.URL, "SKIFF_RELAY_STREAM": "shop", "SKIFF_RELAY_CREDS": file, "SKIFF_RELAY_INBOX": r.Inbox}
	var out strings.Builder
	if err := publish(context.Background(), []string{"--source", "/s", "--job", "thumbs-1a2b3c4d-29000000", "--subject", tick.Subject},
		func(k string) string { return env[k] }, &out); err != nil {
		t.Fatalf("publish as the schedule's user: %v", err)
	}
	if !strings.Contains(out.String(), "stored thumbs-1a2b3c4d-29000000 as shop #1") {
		t.Errorf("publish printed %q", out.String())
	}
	delete(env, "SKIFF_RELAY_CREDS")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := publish(ctx, []string{"--source", "/s", "--subject", tick.Subject}, func(k string) string { return env[k] }, io.Discard); err == nil {
		t.Error("publish without the user's credentials was stored")
	}
}

// TestServeProxyOnly runs the relay as a workload without events has it:
// the proxy alone, no bus (none is reachable), its figures on /metrics
// and /stats.
func TestServeProxyOnly(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "hello")
	}))
	defer app.Close()
	proxyAddr, admin := freeAddr(t), freeAddr(t)
	env := map[string]string{"SKIFF_RELAY_TARGET": app.URL, "SKIFF_RELAY_PROXY": proxyAddr, "SKIFF_RELAY_ADMIN": admin,
		"SKIFF_RELAY_COLD_STARTS": "true", "SKIFF_RELAY_BUS": "nats://127.0.0.1:1"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, nil, func(k string) string { return env[k] }, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now())
	}()
	waitOK(t, "http://"+admin+"/readyz")
	for i := range 10 {
		path := "/"
		if i%5 == 0 {
			path = "/fail"
		}
		resp, err := http.Get("http://" + proxyAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`http_server_request_duration_seconds_count{http_request_method="GET",http_response_status_code="200"} 8`,
		`http_server_request_duration_seconds_count{http_request_method="GET",http_response_status_code="503"} 2`,
		"skiff_cold_starts_total 1\n",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	if strings.Contains(string(body), "skiff_relay_") {
		t.Errorf("a relay without events shows event series:\n%s", body)
	}
	resp, err = http.Get("http://" + admin + "/stats?window=1m")
	if err != nil {
		t.Fatal(err)
	}
	var w stats.Window
	err = json.NewDecoder(resp.Body).Decode(&w)
	resp.Body.Close()
	if err != nil || w.Requests != 10 || w.Errors != 2 || w.ColdStarts != 1 || w.Duration.Count() != 10 || w.Seconds() < 60 {
		t.Errorf("stats: %+v, %v", w, err)
	}
	if resp, err := http.Get("http://" + admin + "/stats?window=2h"); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a window over 15m: %v %v", resp, err)
	}
	// Profiles only with SKIFF_RELAY_PPROF=true.
	if resp, err := http.Get("http://" + admin + "/debug/pprof/allocs"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("profiles without SKIFF_RELAY_PPROF: %v %v", resp, err)
	}
	// The preStop hook's /drain closes a caller's kept connection before
	// it answers (the workload stops next), and the proxy still serves.
	kept, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	kept.SetDeadline(time.Now().Add(20 * time.Second))
	kbr := bufio.NewReader(kept)
	io.WriteString(kept, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if res, err := http.ReadResponse(kbr, nil); err != nil || res.StatusCode != http.StatusOK || res.Close {
		t.Fatalf("before the drain: %v %v", res, err)
	} else {
		io.Copy(io.Discard, res.Body)
	}
	if resp, err := http.Get("http://" + admin + "/drain"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("drain: %v %v", resp, err)
	}
	if n, err := kbr.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("a kept connection after the drain: %d, %v; want it closed", n, err)
	}
	if resp, err := http.Get("http://" + proxyAddr + "/"); err != nil || resp.StatusCode != http.StatusOK || !resp.Close {
		t.Errorf("after the drain: %v %v; want an answer that closes its connection", resp, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
	if runtime.MemProfileRate != 0 {
		t.Errorf("without SKIFF_RELAY_PPROF the memory profiler samples every %d bytes, want it off", runtime.MemProfileRate)
	}
	if _, err := parse("skiff-relay", nil, func(string) string { return "" }, nil); err == nil {
		t.Error("neither a stream nor a proxy was accepted")
	}
}
