package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/internal/bus"
	"github.com/skiffdev/skiff/internal/chart"
	"github.com/skiffdev/skiff/internal/deploy"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/event"
	"github.com/skiffdev/skiff/internal/kube"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/publish"
	"github.com/skiffdev/skiff/internal/publish/registry"
	"github.com/skiffdev/skiff/internal/relay"
	"github.com/skiffdev/skiff/internal/relay/relayplan"
	"github.com/skiffdev/skiff/internal/target"
)

// Session is one command's hold on a cluster: built once from the
// resolved project and the cluster's clients, it owns every operation that
// changes or watches the cluster (preflight, ship, apply, rollback,
// delete, status) and reports each step as an Event. deploy, dev, config
// --apply, rollback, delete, status and the dashboard's actions go
// through it, so they wait, roll back and clean up alike.
type Session struct {
	*Pipeline
	// Kube is the cluster.
	Kube *kube.Client
	// Deployer runs the Helm releases; the session sets its Wait to the
	// targets' wait.
	Deployer *deploy.Deployer
	// Targets say how each workload runs: how it is waited for, and what
	// deleting it removes.
	Targets *target.Cluster
	// Bus reaches the project's event bus (nil: the project has none).
	Bus Consumers
}

// NewSession returns the session of pl's project on the cluster of kc,
// whose releases d runs. Close it.
func NewSession(pl *Pipeline, kc *kube.Client, d *deploy.Deployer) *Session {
	s := &Session{Pipeline: pl, Kube: kc, Deployer: d}
	s.Targets = &target.Cluster{Clientset: kc.Clientset, Dynamic: kc.Dynamic, Namespace: pl.Project.Namespace,
		Project: pl.Project, Root: pl.Root, Releases: d, Client: kc}
	if e := pl.Project.Events; e != nil {
		files := pl.BusFiles()
		s.Bus = &busConsumers{project: pl.Project, files: files, bus: &bus.Redialer{KC: kc, URL: e.Bus, Auth: BusAuth(files)},
			secret: func(ctx context.Context, name string) (map[string][]byte, error) {
				sec, err := kc.Clientset.CoreV1().Secrets(pl.Project.Namespace).Get(ctx, name, metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					return nil, nil
				}
				if err != nil {
					return nil, err
				}
				return sec.Data, nil
			}}
	}
	// Every release the session applies (deploy, config --apply, rollback,
	// the rollback of a failed deploy) is waited for by its target.
	d.Wait = s.wait
	return s
}

// Close ends the session's connections.
func (s *Session) Close() {
	if s.Bus != nil {
		s.Bus.Close()
	}
}

// Namespace is where the project's workloads run.
func (s *Session) Namespace() string { return s.Project.Namespace }

// Target is how the workload named runs.
func (s *Session) Target(name string) (target.Target, error) {
	w, err := s.workload(name)
	if err != nil {
		return nil, err
	}
	return s.Targets.For(w), nil
}

// Forward forwards a free loopback port to the workload named: to one of
// its ready pods, or to the proxy in front of it when it has none.
func (s *Session) Forward(ctx context.Context, name string) (*target.Forwarded, error) {
	t, err := s.Target(name)
	if err != nil {
		return nil, err
	}
	return target.Forward(ctx, s.Kube, s.Namespace(), t)
}

func (s *Session) workload(name string) (*project.Workload, error) {
	w, ok := s.Project.Workload(name)
	if !ok {
		return nil, fmt.Errorf("the project has no workload %q", name)
	}
	return w, nil
}

// wait is how the session's releases are waited for: by the target of the
// workload whose release rel is; a release of no workload, as Helm checks
// resources.
func (s *Session) wait(ctx context.Context, rel *deploy.Record) error {
	for i := range s.Project.Workloads {
		w := &s.Project.Workloads[i]
		if s.Release(w) == rel.Name {
			return s.Targets.For(w).Wait(ctx, rel)
		}
	}
	return s.Deployer.WaitReady(ctx, rel)
}

// Preflight checks, before anything changes, that the cluster has the
// engines ws need (KEDA for scale) and that the event bus of a project
// with events answers and can hold them.
func (s *Session) Preflight(ctx context.Context, ws []project.Workload) error {
	if err := s.Targets.CheckEngines(ctx, ws); err != nil {
		return err
	}
	if err := s.Project.RequireBus(); err != nil {
		return err
	}
	if s.Project.Metrics.ProxyOn() && chart.RelayImage(s.Project) == "" {
		s.emit(Event{Kind: Notice, Message: "warning: no skiff-relay image is known (this build of skiff pins none), so the workloads " +
			"deploy without the metrics proxy: no request figures in status -o wide, top, dash or Prometheus; " +
			"set $SKIFF_RELAY_IMAGE (or events.relayImage) to a skiff-relay image, or metrics.proxy: false in skiff.yaml to do without"})
	}
	e := s.Project.Events
	if e == nil {
		return nil
	}
	if e.RelayImage == "" {
		return &MissingRelayImageError{}
	}
	files := s.BusFiles()
	conn, err := bus.Dial(ctx, s.Kube, e.Bus, BusAuth(files))
	var ce *bus.CredsError
	if errors.As(err, &ce) {
		return fmt.Errorf("%w; deploy changed nothing", err)
	}
	if err != nil {
		return fmt.Errorf("%w; deploy changed nothing: start the bus, or fix events.bus in skiff.yaml", err)
	}
	defer conn.Close()
	if _, err := conn.Check(ctx); err != nil {
		return fmt.Errorf("%w; deploy changed nothing: run nats-server with --jetstream", err)
	}
	if files.Creds == "" {
		s.emit(Event{Kind: Notice, Message: fmt.Sprintf("warning: the bus %s took skiff without credentials: any pod that reaches it may read, publish and delete the project's events; "+
			"run it with accounts and set events.credentials and events.signingKey (docs/security.md)", e.Bus)})
		return nil
	}
	if files.SigningKey == "" {
		s.emit(Event{Kind: Notice, Message: "warning: skiff.yaml has events.credentials but no events.signingKey: the workloads' relays connect without credentials, which the bus will refuse; " +
			"set events.signingKey (or $SKIFF_NATS_SIGNING_KEY) to the account signing key's seed file (docs/security.md)"})
		return nil
	}
	if err := CheckSigningKey(ctx, s.Kube, e.Bus, files); err != nil {
		return fmt.Errorf("%w; deploy changed nothing", err)
	}
	return nil
}

// CheckSigningKey proves that the users deploy would mint with
// files.SigningKey, in the account of files.Creds's user, are taken by
// the bus.
func CheckSigningKey(ctx context.Context, kc *kube.Client, busURL string, files project.BusFiles) error {
	user, err := bus.ReadCreds(files.Creds, time.Now())
	if err != nil {
		return err
	}
	key, err := bus.ReadSigningKey(files.SigningKey)
	if err != nil {
		return err
	}
	defer key.Wipe()
	return (&bus.Minter{Key: key, Account: user.Account}).Check(ctx, kc, busURL, files.CA, files.SigningKey)
}

// MissingRelayImageError says a project with events has no skiff-relay
// image to run.
type MissingRelayImageError = engine.MissingRelayImageError

// Releases is how the session deploys: its Deployer, the user's
// overrides, the timeout, its bus, and its targets' readiness.
func (s *Session) Releases(overrides map[string]any, timeout time.Duration) Releases {
	r := Releases{Releaser: s.Deployer, Overrides: overrides, Timeout: timeout,
		Readiness: func(ctx context.Context, w *project.Workload) (*Readiness, error) {
			st, err := target.Read(ctx, s.Deployer, s.Targets.For(w), s.Namespace())
			if err != nil {
				return nil, err
			}
			return &Readiness{Ready: st.Ready, Desired: st.Desired, Endpoint: st.Endpoint, URL: st.URL}, nil
		}}
	if s.Bus != nil {
		r.Bus = s.Bus
	}
	return r
}

// EnsureNamespace creates the project's namespace when it is missing.
func (s *Session) EnsureNamespace(ctx context.Context) error {
	created, err := s.Kube.EnsureNamespace(ctx, s.Namespace())
	if created {
		s.emit(Event{Kind: Notice, Namespace: s.Namespace(), Message: "Created namespace " + s.Namespace()})
	}
	return err
}

// PullOptions say how the registry is reached for the pull Secret.
type PullOptions = engine.PullOptions

// EnsurePullSecret keeps the project's pull Secret in its namespace when
// the pods of ws need one to pull from the registry (registryAuth
// pull-secret, or auto and the registry refuses an anonymous pull), from
// the credentials skiff pushes with, for that registry alone. It returns
// the Secret's name, or "" when the pods need none. The Secret is not part
// of any release; Delete with all removes it.
func (s *Session) EnsurePullSecret(ctx context.Context, ws []project.Workload, o PullOptions) (string, error) {
	p := s.Project
	if p.Registry == "" || p.RegistryAuth == project.RegistryAuthNone || len(ws) == 0 {
		return "", nil
	}
	regs, err := registry.New(registry.Options{Insecure: o.Insecure, UserAgent: o.UserAgent})
	if err != nil {
		return "", err
	}
	repo := publish.ImageName(p.Registry, ws[0].Name)
	ref, err := regs.ParseReference(repo)
	if err != nil {
		return "", err
	}
	host := ref.Context().RegistryStr()
	if p.RegistryAuth == project.RegistryAuthAuto {
		open, err := regs.AnonymousPull(ctx, repo)
		if err != nil {
			// The images may come from elsewhere (--image, --no-build): say
			// so, and let the nodes pull as they can.
			s.emit(Event{Kind: Notice, Message: fmt.Sprintf("warning: could not ask %s whether pods may pull without credentials (%v); "+
				"deploying without a pull secret; set registryAuth in skiff.yaml to decide", host, err)})
			return "", nil
		}
		if open {
			return "", nil
		}
	}
	data, err := publish.DockerConfigJSON(host, authn.DefaultKeychain)
	if err != nil {
		return "", err
	}
	name := chart.PullSecretName(p)
	labels := map[string]string{"app.kubernetes.io/part-of": p.Name, "app.kubernetes.io/managed-by": "skiff"}
	changed, err := s.Kube.ApplyPullSecret(ctx, s.Namespace(), name, labels, data)
	if err != nil {
		return "", fmt.Errorf("keeping the pull secret %s/%s: %w", s.Namespace(), name, err)
	}
	if changed {
		s.emit(Event{Kind: Notice, Message: fmt.Sprintf("%s wants credentials to pull: pods pull with Secret %s/%s (from your credentials for %s)",
			host, s.Namespace(), name, host)})
	}
	return name, nil
}

// WithPullSecret lays the pull Secret's name (none: "") under the user's
// chart values.
func WithPullSecret(values map[string]any, pull string) map[string]any {
	if pull == "" {
		return values
	}
	return chart.Merge(map[string]any{"image": map[string]any{"pullSecret": pull}}, values)
}

// NotDeployedError says a workload has no release to act on.
type NotDeployedError = engine.NotDeployedError

// Applied is what Apply deployed.
type Applied = engine.Applied

// Apply redeploys what runs of a workload (its image and all its values,
// including earlier --set overrides) with only its configuration replaced
// by config, and waits for it as a deploy does.
func (s *Session) Apply(ctx context.Context, name string, config map[string]string, timeout time.Duration) (*Applied, error) {
	w, err := s.workload(name)
	if err != nil {
		return nil, err
	}
	rel, err := s.Deployer.LastGoodRelease(ctx, s.Release(w), s.Namespace())
	var nf *deploy.NotFoundError
	if errors.As(err, &nf) {
		return nil, &NotDeployedError{Workload: w.Name}
	}
	if err != nil {
		return nil, err
	}
	cfg := map[string]any{}
	for k, v := range config {
		cfg[k] = v
	}
	vals := chart.Merge(rel.Config, nil)
	vals["config"] = cfg
	d, err := s.DeployValues(ctx, s.Releases(nil, timeout), w, deploy.ImageOf(rel), vals)
	if err != nil {
		return nil, err
	}
	live, _ := vals["liveConfig"].(bool)
	return &Applied{Deployment: *d, Live: live}, nil
}

// Rollback returns a workload's release to revision (0: the one before the
// current) and waits for it as a deploy does (its target's wait), until
// ctx ends or timeout passes. It returns the new revision.
func (s *Session) Rollback(ctx context.Context, name string, revision int, timeout time.Duration) (int, error) {
	w, err := s.workload(name)
	if err != nil {
		return 0, err
	}
	rel := s.Release(w)
	start := s.now()
	s.emit(Event{Kind: RollbackStarted, Workload: w.Name, Release: rel, Namespace: s.Namespace(), Revision: revision})
	now, err := s.Deployer.Rollback(ctx, rel, s.Namespace(), revision, timeout)
	if err != nil {
		s.emit(Event{Kind: Failed, Phase: event.PhaseRollback, Workload: w.Name, Release: rel, Namespace: s.Namespace(), Duration: s.since(start), Err: err})
		return 0, err
	}
	s.emit(Event{Kind: RolledBack, Workload: w.Name, Release: rel, Namespace: s.Namespace(), Revision: now, Duration: s.since(start)})
	return now, nil
}

// History is the release history of a workload, oldest first.
func (s *Session) History(ctx context.Context, name string) ([]deploy.Revision, error) {
	w, err := s.workload(name)
	if err != nil {
		return nil, err
	}
	return s.Deployer.History(ctx, s.Release(w), s.Namespace())
}

// DeleteOptions say what Delete keeps.
type DeleteOptions = engine.DeleteOptions

// Delete removes the named workloads from the cluster, dependents first
// (names in deploy order): each one's release and everything it created,
// then what its target says deleting it removes beside (its triggers'
// consumers on the bus, the Secret of its values). Each removal is
// reported as a Deleted event. When a workload has consumers, the bus is
// reached before anything is removed.
func (s *Session) Delete(ctx context.Context, o DeleteOptions, names ...string) error {
	var ws []*project.Workload
	consumers := false
	for _, n := range names {
		w, err := s.workload(n)
		if err != nil {
			return err
		}
		ws = append(ws, w)
		consumers = consumers || s.Targets.For(w).Remains().Consumers
	}
	if consumers {
		if s.Bus == nil {
			return errors.New("skiff.yaml names no event bus to remove the consumers of the triggers from; delete changed nothing")
		}
		if err := s.Bus.Check(ctx); err != nil {
			return fmt.Errorf("%w; delete changed nothing: the consumers of the triggers are on the bus", err)
		}
	}
	for i := len(ws) - 1; i >= 0; i-- {
		if err := s.deleteOne(ctx, ws[i], o); err != nil {
			return err
		}
	}
	if o.All {
		return s.deletePullSecret(ctx)
	}
	return nil
}

func (s *Session) deleteOne(ctx context.Context, w *project.Workload, o DeleteOptions) error {
	rel, ns := s.Release(w), s.Namespace()
	remains := s.Targets.For(w).Remains()
	start := s.now()
	err := s.Deployer.Uninstall(ctx, rel, ns, o.Timeout)
	var nf *deploy.NotFoundError
	switch {
	case errors.As(err, &nf) && o.All:
	case err != nil:
		s.emit(Event{Kind: Failed, Phase: event.PhaseDelete, Workload: w.Name, Release: rel, Namespace: ns, Err: err})
		return err
	default:
		s.emit(Event{Kind: Deleted, Workload: w.Name, Release: rel, Namespace: ns, Object: "release", Duration: s.since(start)})
	}
	if remains.Consumers {
		if err := s.Bus.Unsubscribe(ctx, w); err != nil {
			err = fmt.Errorf("removing the consumers of %s's triggers: %w", w.Name, err)
			s.emit(Event{Kind: Failed, Phase: event.PhaseDelete, Workload: w.Name, Err: err})
			return err
		}
		s.emit(Event{Kind: Deleted, Workload: w.Name, Namespace: ns, Object: "consumers"})
	}
	if remains.Listener {
		name, err := s.Targets.RemoveListener(ctx, w)
		if err != nil {
			s.emit(Event{Kind: Failed, Phase: event.PhaseDelete, Workload: w.Name, Err: err})
			return err
		}
		if name != "" {
			s.emit(Event{Kind: Deleted, Workload: w.Name, Namespace: ns, Object: "listener/" + name})
		}
	}
	if o.KeepSecrets {
		return nil
	}
	for _, sec := range remains.Secrets {
		gone, err := s.Kube.DeleteSecret(ctx, ns, sec)
		if err != nil {
			s.emit(Event{Kind: Failed, Phase: event.PhaseDelete, Workload: w.Name, Err: err})
			return err
		}
		if gone {
			s.emit(Event{Kind: Deleted, Workload: w.Name, Namespace: ns, Object: "secret/" + sec})
		}
	}
	return nil
}

// deletePullSecret removes the project's pull Secret, which serves every
// workload (delete --all).
func (s *Session) deletePullSecret(ctx context.Context) error {
	name := chart.PullSecretName(s.Project)
	gone, err := s.Kube.DeleteSecret(ctx, s.Namespace(), name)
	if err != nil {
		return err
	}
	if gone {
		s.emit(Event{Kind: Deleted, Namespace: s.Namespace(), Object: "pull-secret/" + name})
	}
	return nil
}

// Statuses reads the status of each workload of ws, with the backlog of
// its triggers on the bus when it has triggers and the bus answers.
func (s *Session) Statuses(ctx context.Context, ws []project.Workload) ([]*target.Status, error) {
	var out []*target.Status
	for i := range ws {
		st, err := target.Read(ctx, s.Deployer, s.Targets.For(&ws[i]), s.Namespace())
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	if s.Bus == nil || !slices.ContainsFunc(ws, func(w project.Workload) bool { return len(w.Triggers) > 0 }) {
		return out, nil
	}
	// The bus may not answer: the statuses go without their lag, soon.
	lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if lags, err := s.Bus.Lag(lctx, ws); err == nil {
		for _, st := range out {
			if l, ok := lags[st.Workload]; ok {
				st.Events = &l
			}
		}
	}
	return out, nil
}

// Consumers readies and reads the project's event bus for its workloads.
type Consumers interface {
	Subscriber
	// Check reaches the bus.
	Check(ctx context.Context) error
	// Unsubscribe removes the consumers of w's triggers.
	Unsubscribe(ctx context.Context, w *project.Workload) error
	// Lag reads the backlog of the triggers of each workload of ws that
	// has some.
	Lag(ctx context.Context, ws []project.Workload) (map[string]target.EventLag, error)
	// Close ends the connection.
	Close()
}

// busConsumers is Consumers over one connection to the bus, made again
// after it dropped, so a long `skiff dev` or dashboard outlives a restart
// of the bus.
type busConsumers struct {
	project *project.Project
	bus     *bus.Redialer
	files   project.BusFiles
	// secret reads a Secret of the project's namespace (nil, nil: none).
	secret func(ctx context.Context, name string) (map[string][]byte, error)
}

// Users are the chart's events.auth values of w's release: with
// credentials and a signing key, the users of w's relay and of each of its
// schedules, minted by the account signing key with exactly the rights
// they need (relay.RelayRights, relay.ScheduleRights), and the bus's CA.
// A user in w's Secret that still fits is kept, so a deploy that changes
// nothing changes no Secret. Nil: no Secret to fill.
func (b *busConsumers) Users(ctx context.Context, w *project.Workload) (map[string]any, error) {
	f := b.files
	if f.CA == "" && (f.Creds == "" || f.SigningKey == "") {
		return nil, nil
	}
	plan, err := relayplan.For(b.project, w)
	if err != nil {
		return nil, err
	}
	var current map[string][]byte
	if b.secret != nil {
		if current, err = b.secret(ctx, relay.CredsSecret(w.Name)); err != nil {
			return nil, fmt.Errorf("reading the Secret %s: %w", relay.CredsSecret(w.Name), err)
		}
	}
	data := map[string]any{}
	auth := map[string]any{"enabled": true, "secret": relay.CredsSecret(w.Name), "data": data}
	out := map[string]any{"auth": auth}
	if f.CA != "" {
		ca, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, fmt.Errorf("the bus's CA: %w", err)
		}
		data["ca.crt"], auth["ca"] = string(ca), true
	}
	if f.Creds == "" || f.SigningKey == "" {
		return out, nil
	}
	user, err := bus.ReadCreds(f.Creds, time.Now())
	if err != nil {
		return nil, err
	}
	key, err := bus.ReadSigningKey(f.SigningKey)
	if err != nil {
		return nil, err
	}
	defer key.Wipe()
	m := &bus.Minter{Key: key, Account: user.Account}
	mint := func(key, name string, r relay.Rights) error {
		if old := current[key]; old != nil && m.Current(old, r.Pub, r.Sub) {
			data[key] = string(old)
			return nil
		}
		c, err := m.Mint(name, r.Pub, r.Sub)
		if err != nil {
			return err
		}
		data[key] = string(c)
		return nil
	}
	inboxes := map[string]any{}
	r := relay.RelayRights(plan, w.Name)
	inboxes["relay"] = r.Inbox
	if err := mint(relay.RelayCredsKey, "skiff-relay "+plan.Stream+"/"+w.Name, r); err != nil {
		return nil, err
	}
	for _, s := range plan.Schedules {
		r := relay.ScheduleRights(plan.Stream, s)
		inboxes[s.Name] = r.Inbox
		if err := mint(relay.ScheduleCredsKey(s), "skiff schedule "+plan.Stream+"/"+s.Name, r); err != nil {
			return nil, err
		}
	}
	auth["creds"], auth["inboxes"] = true, inboxes
	// KEDA reads the consumers' lag in the account's JetStream.
	out["account"] = user.Account
	return out, nil
}

// Subscribe creates the project's streams and w's consumers, and removes
// the consumers of triggers w no longer has.
func (b *busConsumers) Subscribe(ctx context.Context, w *project.Workload) error {
	plan, err := relayplan.For(b.project, w)
	if err != nil {
		return err
	}
	return b.bus.Do(ctx, func(conn *bus.Conn) error {
		return relay.Subscribe(ctx, conn.JS, w.Name, plan, plan.Delivery.Concurrency)
	})
}

func (b *busConsumers) Check(ctx context.Context) error {
	return b.bus.Do(ctx, func(*bus.Conn) error { return nil })
}

func (b *busConsumers) Unsubscribe(ctx context.Context, w *project.Workload) error {
	return b.bus.Do(ctx, func(conn *bus.Conn) error {
		return relay.Unsubscribe(ctx, conn.JS, relayplan.Stream(b.project), w.Name, nil)
	})
}

func (b *busConsumers) Lag(ctx context.Context, ws []project.Workload) (map[string]target.EventLag, error) {
	out := map[string]target.EventLag{}
	err := b.bus.Do(ctx, func(conn *bus.Conn) error {
		for _, w := range ws {
			if len(w.Triggers) == 0 {
				continue
			}
			plan, err := relayplan.For(b.project, &w)
			if err != nil {
				return err
			}
			sts, err := relay.Status(ctx, conn.JS, w.Name, plan)
			if err != nil {
				return err
			}
			var l target.EventLag
			for _, st := range sts {
				l.Lag += st.Lag()
				l.DeadLetters = st.DeadLetters // the workload's, on every trigger
			}
			out[w.Name] = l
		}
		return nil
	})
	return out, err
}

func (b *busConsumers) Close() { b.bus.Close() }
