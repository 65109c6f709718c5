// Command skiff-relay runs next to every workload in its pod: in front of
// its port it proxies and measures the requests (package proxy), and, for
// a workload with events, it moves its CloudEvents to and from NATS
// JetStream (package relay):
//
//	skiff-relay            serve: the proxy, the sink (K_SINK) and the triggers' deliveries
//	skiff-relay publish    store one event and exit (a schedule's CronJob)
//	skiff-relay install | copy | supervise
//	                       skiff dev's live updates (dev.go)
//
// skiff's chart configures it with environment variables (flags override
// them): SKIFF_RELAY_BUS, _STREAM, _WORKLOAD, _TARGET, _TRIGGERS (JSON),
// _READY (the workload's readiness URL: deliveries wait for it, and the
// admin's /workload/ready asks it for the kubelet, ready.go), _RETRIES,
// _BACKOFF, _TIMEOUT, _CONCURRENCY, _SINK (address), _ADMIN (address of
// /healthz, /readyz, /workload/ready, /metrics, /stats and /drain), _PROXY
// (the proxy's address; off when empty), _PROXY_TIMEOUT, _COLD_STARTS
// (true: the workload scales from zero), _PPROF (true: CPU and memory
// profiles at /debug/pprof/ on the admin address), and on a bus with
// accounts _CREDS (the user's .creds file skiff deploy mints), _INBOX (its
// reply prefix) and _CA (the CA of a tls:// bus). Without _STREAM it runs
// the proxy alone and never touches NATS.
//
// In the pod it is a native sidecar: it starts before the workload (whose
// K_SINK it is) and stops after it. The function's preStop hook calls
// /drain, which stops the deliveries (those in flight finish, fetched ones
// go back to the stream) before the function is told to stop.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skiffdev/skiff/internal/devsync"
	"github.com/skiffdev/skiff/internal/proxy"
	"github.com/skiffdev/skiff/internal/relay"
)

func main() {
	started := time.Now() // as near to the pod's start as the relay can tell: it is the pod's first container
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	logger := slog.New(slog.NewJSONHandler(os.Stdout, nil)).With("service", "skiff-relay")
	var err error
	sub := ""
	if len(os.Args) > 1 {
		sub = os.Args[1]
	}
	switch sub {
	case "publish":
		err = publish(ctx, os.Args[2:], os.Getenv, os.Stdout)
	case "install":
		err = install(os.Args[2:])
	case "copy":
		err = copyDir(os.Args[2:])
	case "supervise":
		err = supervise(ctx, os.Args[2:], os.Stdout, os.Stderr)
		if ee := (*devsync.ExitError)(nil); errors.As(err, &ee) {
			os.Exit(ee.Code) // the workload's own status
		}
	default:
		err = serve(ctx, os.Args[1:], os.Getenv, logger, started)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "skiff-relay:", err)
		os.Exit(1)
	}
}

// options are what serve and publish read from flags and the environment.
type options struct {
	bus, stream, workload, target, ready, triggers string
	creds, ca, inbox                               string
	sink, admin                                    string
	delivery                                       relay.Delivery
	proxy                                          string
	proxyTimeout                                   time.Duration
	coldStarts                                     bool
	pprof                                          bool
}

func parse(name string, args []string, getenv func(string) string, extra func(*flag.FlagSet)) (*options, error) {
	env := func(k, def string) string {
		if v := getenv("SKIFF_RELAY_" + k); v != "" {
			return v
		}
		return def
	}
	o := &options{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.bus, "bus", env("BUS", nats.DefaultURL), "the NATS server")
	fs.StringVar(&o.creds, "creds", env("CREDS", ""), "the bus user's .creds file (minted by skiff deploy)")
	fs.StringVar(&o.ca, "ca", env("CA", ""), "the CA certificates of a tls:// bus, PEM")
	fs.StringVar(&o.inbox, "inbox", env("INBOX", ""), "the prefix of the bus user's reply subjects")
	fs.StringVar(&o.stream, "stream", env("STREAM", ""), "the project's stream")
	fs.StringVar(&o.workload, "workload", env("WORKLOAD", ""), "the workload this relay serves")
	fs.StringVar(&o.target, "target", env("TARGET", "http://127.0.0.1:8080/"), "the function's handler")
	fs.StringVar(&o.ready, "ready", env("READY", ""), "the function's readiness URL: deliveries wait for it")
	fs.StringVar(&o.triggers, "triggers", env("TRIGGERS", "[]"), "the triggers, as JSON")
	fs.StringVar(&o.sink, "sink", env("SINK", "127.0.0.1:8099"), "where the sink listens (K_SINK)")
	fs.StringVar(&o.admin, "admin", env("ADMIN", ":9091"), "where /healthz, /readyz and /metrics answer")
	fs.IntVar(&o.delivery.Retries, "retries", atoi(env("RETRIES", "3")), "retries of a failed delivery")
	fs.DurationVar(&o.delivery.Backoff, "backoff", dur(env("BACKOFF", "1s")), "the wait before the first retry; it doubles")
	fs.DurationVar(&o.delivery.Timeout, "timeout", dur(env("TIMEOUT", "30s")), "how long one delivery may take")
	fs.IntVar(&o.delivery.Concurrency, "concurrency", atoi(env("CONCURRENCY", strconv.Itoa(relay.DefaultConcurrency))), "events in flight to the function, per trigger")
	fs.StringVar(&o.proxy, "proxy", env("PROXY", ""), "where the proxy in front of the target listens (none when empty)")
	fs.DurationVar(&o.proxyTimeout, "proxy-timeout", dur(env("PROXY_TIMEOUT", "5m")), "how long the proxy waits for the target's answer before a 504")
	fs.BoolVar(&o.coldStarts, "cold-starts", env("COLD_STARTS", "") == "true", "the workload scales from zero: its first request is a cold start")
	fs.BoolVar(&o.pprof, "pprof", env("PPROF", "") == "true", "serve CPU and memory profiles at /debug/pprof/ on the admin address")
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.stream == "" && (name != "skiff-relay" || o.proxy == "") {
		return nil, errors.New("no stream: set SKIFF_RELAY_STREAM or --stream")
	}
	if o.proxyTimeout <= 0 {
		return nil, errors.New("the proxy's timeout must be a positive duration")
	}
	if o.delivery.Timeout <= 0 || o.delivery.Backoff <= 0 || o.delivery.Retries < 0 {
		return nil, errors.New("timeout and backoff must be positive durations, retries 0 or more")
	}
	return o, nil
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1 // rejected by parse
	}
	return n
}

func dur(s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		return -1
	}
	return d
}

func connect(o *options, logger *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	opts := []nats.Option{nats.Name("skiff-relay " + o.workload), nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true), nats.ReconnectWait(500 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("disconnected from the bus", "error", err.Error())
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { logger.Info("reconnected to the bus", "url", c.ConnectedUrlRedacted()) })}
	// The file's content is read at each (re)connect and never logged.
	if o.creds != "" {
		opts = append(opts, nats.UserCredentials(o.creds))
	}
	if o.ca != "" {
		opts = append(opts, nats.RootCAs(o.ca))
	}
	if o.inbox != "" {
		opts = append(opts, nats.CustomInboxPrefix(o.inbox))
	}
	nc, err := nats.Connect(o.bus, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to %s: %w", o.bus, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

func serve(ctx context.Context, args []string, getenv func(string) string, logger *slog.Logger, started time.Time) error {
	o, err := parse("skiff-relay", args, getenv, nil)
	if err != nil {
		return err
	}
	if !o.pprof {
		// The memory profiler samples an allocation in every 512 KiB and
		// keeps the stacks for /debug/pprof/heap: 0.1 MiB of the pod's
		// memory after a load, for profiles nobody can read.
		runtime.MemProfileRate = 0
	}
	var triggers []relay.Trigger
	if err := json.Unmarshal([]byte(o.triggers), &triggers); err != nil {
		return fmt.Errorf("SKIFF_RELAY_TRIGGERS: %w", err)
	}
	metrics := &relay.Metrics{}
	var pm *proxy.Metrics
	var px *proxy.Proxy
	var front *proxy.Front
	var servers []server
	if o.proxy != "" {
		target, err := url.Parse(o.target)
		if err != nil || target.Host == "" {
			return fmt.Errorf("SKIFF_RELAY_TARGET %q is not a URL", o.target)
		}
		pm = proxy.NewMetrics()
		px = proxy.New(proxy.Options{Target: target, Timeout: o.proxyTimeout, ColdStarts: o.coldStarts, Started: started,
			Metrics: pm, Logger: logger})
		srv := &http.Server{Addr: o.proxy, Handler: px, ReadHeaderTimeout: 10 * time.Second}
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true) // h2c callers (gRPC) pass through
		// The front of our own takes plain HTTP/1.x requests and hands
		// srv the rest (upgrades, h2c).
		front = proxy.NewFront(srv)
		servers = append(servers, server{o.proxy, front})
	}
	// Without a stream, the relay is the proxy alone: nothing of NATS.
	var nc *nats.Conn
	var js jetstream.JetStream
	if o.stream != "" {
		if nc, js, err = connect(o, logger); err != nil {
			return err
		}
		defer nc.Close()
	}

	admin := http.NewServeMux()
	admin.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	admin.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if nc != nil && !nc.IsConnected() {
			http.Error(w, "not connected to the bus", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	if o.ready != "" {
		admin.Handle("GET /workload/ready", workloadReady(&http.Client{Timeout: time.Second}, o.ready, readyWait, 10*time.Millisecond))
	}
	admin.Handle("GET /metrics", metricsHandler(pm, metrics, nc != nil))
	admin.Handle("GET /stats", statsHandler(pm, metrics, time.Now))
	if o.pprof {
		admin.Handle("GET /debug/pprof/", profileHandler())
	}
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	if len(triggers) == 0 || nc == nil {
		done <- nil
	}
	// drained is closed once the deliveries stopped, for every caller of
	// /drain (the kubelet's preStop hook may call it again).
	drained := make(chan struct{})
	var drainErr error
	go func() { drainErr = <-done; close(drained) }()
	admin.HandleFunc("/drain", func(w http.ResponseWriter, r *http.Request) {
		cancel()
		select {
		case <-drained:
		case <-r.Context().Done():
			return
		}
		if px != nil {
			// Callers' kept connections close, so that their next
			// requests go through the Service, to pods that stay
			// (proxy.Front.Drain); callers it still routes here while
			// the pod's endpoint is being removed everywhere are
			// answered until then (proxy.Quiet).
			front.Drain()
			qctx, qcancel := context.WithTimeout(r.Context(), drainQuietMax)
			px.Quiet(qctx, drainQuiet)
			qcancel()
		}
		fmt.Fprintln(w, "drained")
	})
	servers = append(servers, httpServer(&http.Server{Addr: o.admin, Handler: admin, ReadHeaderTimeout: 10 * time.Second}))
	if nc != nil {
		sink := &relay.Sink{Stream: o.stream, JS: js, Logger: logger, Metrics: metrics}
		servers = append(servers, httpServer(&http.Server{Addr: o.sink, Handler: sink, ReadHeaderTimeout: 10 * time.Second}))
	}
	errc := make(chan error, len(servers)+1)
	for _, srv := range servers {
		ln, err := net.Listen("tcp", srv.addr)
		if err != nil {
			return err
		}
		go func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	if nc != nil {
		logger.Info("relaying", "bus", nc.ConnectedUrlRedacted(), "stream", o.stream, "sink", o.sink, "triggers", len(triggers), "proxy", o.proxy)
	} else {
		logger.Info("proxying", "proxy", o.proxy, "to", o.target)
	}

	if len(triggers) > 0 && nc != nil {
		d := &relay.Dispatcher{JS: js, Stream: o.stream, Workload: o.workload, Target: o.target, Ready: o.ready, Triggers: triggers,
			Delivery: o.delivery, Concurrency: o.delivery.Concurrency, Client: relay.HandlerClient(o.delivery.Concurrency), Logger: logger, Metrics: metrics}
		go func() { done <- d.Run(dctx) }()
	}
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	// Stop delivering (in-flight deliveries finish, fetched ones go back),
	// then stop the servers in reverse order: the sink, which the function
	// may use while it drains, the admin, and the proxy last, so that the
	// requests in flight are answered (the kubelet stops the relay only
	// after the workload).
	cancel()
	<-drained
	if err == nil {
		err = drainErr
	}
	logger.Info("stopping")
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	for i := len(servers) - 1; i >= 0; i-- {
		servers[i].Shutdown(sctx)
	}
	if nc != nil {
		if derr := nc.Drain(); derr != nil && err == nil {
			err = derr
		}
	}
	return err
}

// server is one of the relay's listeners: the proxy's front, the admin
// and the sink's http.Server.
type server struct {
	addr string
	serving
}

type serving interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}

func httpServer(s *http.Server) server { return server{s.Addr, s} }

// publish stores one event: a schedule's tick. It exits 0 only once
// JetStream has stored it.
func publish(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var typ, subject, source, id, job, data string
	o, err := parse("skiff-relay publish", args, getenv, func(fs *flag.FlagSet) {
		fs.StringVar(&typ, "type", "dev.skiff.schedule", "the event's type")
		fs.StringVar(&subject, "subject", "", "the subject (default: <stream>.<type>)")
		fs.StringVar(&source, "source", "", "the event's source")
		fs.StringVar(&id, "id", "", "the event's id (default: a new one)")
		fs.StringVar(&job, "job", "", "the CronJob's Job: the event's id, and its time the scheduled one")
		fs.StringVar(&data, "data", "", "the event's data, JSON")
	})
	if err != nil {
		return err
	}
	if source == "" {
		return errors.New("publish needs --source")
	}
	at := time.Now()
	if job != "" {
		// The CronJob controller names a Job <cronjob>-<scheduled minute
		// since the epoch>: a retried Job stores the same event once.
		id = cmp.Or(id, job)
		if i := strings.LastIndexByte(job, '-'); i >= 0 {
			if m, err := strconv.ParseInt(job[i+1:], 10, 64); err == nil {
				at = time.Unix(m*60, 0)
			}
		}
	}
	if id == "" {
		id = nats.NewInbox()[len(nats.InboxPrefix):]
	}
	if subject == "" {
		if subject, err = relay.Subject(o.stream, typ); err != nil {
			return err
		}
	} else if !strings.HasPrefix(subject, o.stream+".") {
		return fmt.Errorf("--subject %s is not under the stream's subjects %s.>", subject, o.stream)
	}
	nc, js, err := connect(o, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	defer nc.Close()
	var body []byte
	if data != "" {
		if !json.Valid([]byte(data)) {
			return errors.New("--data is not JSON")
		}
		body = []byte(data)
	}
	ev := relay.NewEvent(typ, source, id, at, body)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ack, err := relay.PublishTo(pctx, js, subject, ev)
	if err != nil {
		return fmt.Errorf("publishing to %s: %w", subject, err)
	}
	fmt.Fprintf(stdout, "stored %s as %s #%d\n", id, ack.Stream, ack.Sequence)
	return nil
}
