// Package bus reaches a project's event bus (skiff.yaml events.bus, a NATS
// server with JetStream) from the machine skiff runs on. It also runs the
// bus of `skiff dev --local` (Embedded, nats-server in skiff's process) and
// keeps that run's address in the project's .skiff folder under a lock
// (LockLocal), where the events commands find it (FindLocal).
package bus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skiffdev/skiff/internal/kube"
)

// Conn is a connection to the bus, through a port-forward when the bus is
// a Service of the cluster.
type Conn struct {
	NC      *nats.Conn
	JS      jetstream.JetStream
	URL     string // the bus as skiff.yaml names it
	Via     string // the pod a port-forward goes to, or ""
	forward *kube.Forward
}

// Close ends the connection and its port-forward.
func (c *Conn) Close() {
	c.NC.Close()
	if c.forward != nil {
		c.forward.Close()
	}
}

// DefaultDialTimeout bounds the wait for the bus to answer a connection.
const DefaultDialTimeout = 5 * time.Second

// Dialer connects to buses.
type Dialer struct {
	// Timeout bounds the wait for the bus to answer (0: DefaultDialTimeout;
	// sooner when the context ends sooner).
	Timeout time.Duration
	// Auth are the credentials and the CA (zero: none).
	Auth Auth
}

// Dial connects to busURL with auth and the default timeout.
func Dial(ctx context.Context, kc *kube.Client, busURL string, auth Auth) (*Conn, error) {
	return (&Dialer{Auth: auth}).Dial(ctx, kc, busURL)
}

// Dial connects to busURL. A host <service>.<namespace>.svc[.<domain>]
// is reached through a port-forward to one of the Service's ready pods
// (kc must be set); any other host directly.
func (d *Dialer) Dial(ctx context.Context, kc *kube.Client, busURL string) (*Conn, error) {
	u, err := url.Parse(busURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("events.bus %q is not a URL such as nats://nats.nats.svc.cluster.local:4222", busURL)
	}
	if err := d.Auth.check(time.Now()); err != nil {
		return nil, err
	}
	port := 4222
	if p := u.Port(); p != "" {
		port, _ = strconv.Atoi(p)
	}
	c := &Conn{URL: busURL}
	target := busURL
	if svc, ns, ok := kube.ServiceHost(u.Hostname()); ok && kc != nil {
		fw, err := kc.ForwardService(ctx, ns, svc, port)
		if err != nil {
			return nil, fmt.Errorf("reaching the bus %s through the cluster: %w", busURL, err)
		}
		c.forward, c.Via = fw, fw.Pod
		fu := *u
		fu.Host = fw.Addr
		target = fu.String()
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	opts := append([]nats.Option{nats.Name("skiff"), nats.Timeout(timeout), nats.MaxReconnects(0)}, d.Auth.options()...)
	if c.forward != nil && u.Scheme == "tls" {
		// Through a port-forward the address is loopback: the bus's
		// certificate still names the Service's host.
		opts = append(opts, nats.Secure(&tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}))
	}
	nc, err := nats.Connect(target, opts...)
	if err != nil {
		c.closeForward()
		if aerr := d.Auth.authErr(busURL, err); aerr != nil {
			return nil, aerr
		}
		return nil, dialErr(busURL, target, timeout, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		c.closeForward()
		return nil, err
	}
	c.NC, c.JS = nc, js
	return c, nil
}

// dialErr says why the bus did not take the connection: nats.go reports
// only "no servers available"; a plain TCP dial tells a refused or
// unreachable address from a server that accepts and does not speak.
func dialErr(busURL, target string, timeout time.Duration, err error) error {
	var nerr net.Error
	if !errors.Is(err, nats.ErrNoServers) && !errors.Is(err, nats.ErrTimeout) && !(errors.As(err, &nerr) && nerr.Timeout()) {
		return fmt.Errorf("connecting to the bus %s: %w", busURL, err)
	}
	u, perr := url.Parse(target)
	if perr != nil {
		return fmt.Errorf("connecting to the bus %s: %w", busURL, err)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "4222")
	}
	conn, derr := net.DialTimeout("tcp", host, timeout)
	if derr != nil {
		return fmt.Errorf("connecting to the bus %s: %w; check that the NATS server runs there (events.bus in skiff.yaml)", busURL, derr)
	}
	conn.Close()
	return fmt.Errorf("the bus %s accepted the connection but did not answer within %s; is it a NATS server, and is it up? (events.bus in skiff.yaml)", busURL, timeout)
}

func (c *Conn) closeForward() {
	if c.forward != nil {
		c.forward.Close()
	}
}

// Check says what the bus is (its server and JetStream's use), or why it
// cannot hold skiff's events: JetStream off or unreachable.
func (c *Conn) Check(ctx context.Context) (string, error) {
	info, err := c.JS.AccountInfo(ctx)
	if err != nil {
		return "", fmt.Errorf("the bus %s has no JetStream: %w", c.URL, err)
	}
	where := ""
	if c.Via != "" {
		where = " (through pod " + c.Via + ")"
	}
	return fmt.Sprintf("nats-server %s at %s%s, JetStream on: %d streams, %d consumers", c.NC.ConnectedServerVersion(), c.URL, where,
		info.Streams, info.Consumers), nil
}

// Redialer keeps one connection to a bus for a long-running command,
// dialled on first use and again after it dropped (a port-forward's pod
// gone, the bus restarted).
type Redialer struct {
	KC   *kube.Client
	URL  string
	Auth Auth

	mu   sync.Mutex
	conn *Conn
}

// Do runs f with a live connection, dialling one (within 10s) when there
// is none; a failure of f drops the connection, so the next Do dials
// again.
func (r *Redialer) Do(ctx context.Context, f func(*Conn) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn != nil && !r.conn.NC.IsConnected() {
		r.closeLocked()
	}
	if r.conn == nil {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		conn, err := Dial(dctx, r.KC, r.URL, r.Auth)
		cancel()
		if err != nil {
			return err
		}
		r.conn = conn
	}
	err := f(r.conn)
	if err != nil {
		r.closeLocked()
	}
	return err
}

// Close ends the connection, if there is one.
func (r *Redialer) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closeLocked()
}

func (r *Redialer) closeLocked() {
	if r.conn != nil {
		r.conn.Close()
		r.conn = nil
	}
}
