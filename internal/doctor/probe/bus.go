package probe

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/skiffdev/skiff/internal/bus"
	"github.com/skiffdev/skiff/internal/doctor"
	"github.com/skiffdev/skiff/internal/kube"
	"github.com/skiffdev/skiff/internal/pipeline"
	"github.com/skiffdev/skiff/internal/project"
)

// BusChecks are the checks of p's event bus: that it answers the
// credentials skiff's commands use and has JetStream ("event bus"), and
// whether it takes a client without credentials ("bus access"), which
// lets anyone who reaches it read, publish and delete every event.
func BusChecks(p *project.Project, files project.BusFiles, kubeconfig, kubeContext string) []doctor.Check {
	url := p.Events.Bus
	dial := func(ctx context.Context, auth bus.Auth) (*bus.Conn, error) {
		kc, err := kube.New(kube.Options{Kubeconfig: kubeconfig, Context: kubeContext})
		if err != nil {
			kc = nil // a bus outside the cluster answers without it
		}
		ctx, cancel := context.WithTimeout(ctx, doctor.Reach)
		defer cancel()
		return bus.Dial(ctx, kc, url, auth)
	}
	auth := bus.Auth{Creds: files.Creds, CA: files.CA}
	return []doctor.Check{
		{Name: "event bus", Run: func(ctx context.Context) doctor.Result {
			conn, err := dial(ctx, auth)
			if err != nil {
				return doctor.Fails(err.Error(), "point events.bus at a NATS server started with JetStream (nats-server --jetstream); docs/events.md")
			}
			defer conn.Close()
			detail, err := conn.Check(ctx)
			if err != nil {
				return doctor.Fails(err.Error(), "run nats-server with --jetstream; docs/events.md")
			}
			if auth.Creds != "" {
				detail += ", as user " + userOf(auth.Creds)
			}
			if files.Creds != "" && files.SigningKey != "" {
				kc, _ := kube.New(kube.Options{Kubeconfig: kubeconfig, Context: kubeContext})
				cctx, cancel := context.WithTimeout(ctx, doctor.Reach)
				defer cancel()
				if err := pipeline.CheckSigningKey(cctx, kc, url, files); err != nil {
					return doctor.Fails(err.Error(), "deploy mints the workloads' bus users with events.signingKey; docs/security.md")
				}
				detail += "; takes the users events.signingKey mints"
			}
			return doctor.Okay(detail)
		}},
		{Name: "bus access", Run: func(ctx context.Context) doctor.Result {
			return busAccess(ctx, url, auth, func(ctx context.Context) (*bus.Conn, error) { return dial(ctx, bus.Auth{CA: auth.CA}) })
		}},
	}
}

// busAccess tries the bus without credentials (dialOpen) and says whether
// it took the client.
func busAccess(ctx context.Context, url string, auth bus.Auth, dialOpen func(context.Context) (*bus.Conn, error)) doctor.Result {
	conn, err := dialOpen(ctx)
	if err == nil {
		conn.Close()
		if auth.Creds != "" {
			return doctor.Warns(fmt.Sprintf("the bus %s took a client without credentials, though skiff.yaml gives some: anyone who reaches it may read, publish and delete the events of its default account", url),
				"run nats-server in operator mode (or with no_auth_user unset) so every client needs a user; docs/security.md")
		}
		return doctor.Warns(fmt.Sprintf("the bus %s is open: it took a client without credentials, so any pod that reaches it may read every project's events, publish as any workload, purge the stream or delete a trigger's consumer", url),
			"run the bus with accounts (NATS decentralised auth) and set events.credentials and events.signingKey; docs/security.md")
	}
	var refused *bus.NeedsCredentialsError
	if errors.As(err, &refused) {
		return doctor.Okay(fmt.Sprintf("the bus %s refused a client without credentials", url))
	}
	return doctor.Warns(fmt.Sprintf("could not tell whether the bus %s takes clients without credentials: %v", url, err), "")
}

// userOf names the user of a .creds file (never its secrets).
func userOf(creds string) string {
	u, err := bus.ReadCreds(creds, time.Now())
	if err != nil {
		return "?"
	}
	if u.Name != "" {
		return fmt.Sprintf("%s (%s)", u.Name, u.PublicKey)
	}
	return u.PublicKey
}
