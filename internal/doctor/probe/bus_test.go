package probe

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffdev/skiff/internal/doctor"
	"github.com/skiffdev/skiff/internal/natstest"
	"github.com/skiffdev/skiff/internal/project"
)

func runBusChecks(t *testing.T, url string, files project.BusFiles) map[string]doctor.Result {
	t.Helper()
	p := &project.Project{Name: "shop", Events: &project.Events{Bus: url}}
	out := map[string]doctor.Result{}
	for _, c := range BusChecks(p, files, filepath.Join(t.TempDir(), "no-kubeconfig"), "") {
		out[c.Name] = c.Run(context.Background())
	}
	return out
}

// doctor tries the bus without credentials and says whether it took the
// client: an open bus is a warning; one with accounts refuses it, and the
// project's user is named.
func TestBusChecks(t *testing.T) {
	open := runBusChecks(t, natstest.Start(t), project.BusFiles{})
	if r := open["event bus"]; r.Status != doctor.OK {
		t.Errorf("event bus on an open bus: %+v", r)
	}
	if r := open["bus access"]; r.Status != doctor.Warn || !strings.Contains(r.Detail, "is open") || !strings.Contains(r.Fix, "docs/security.md") {
		t.Errorf("bus access on an open bus: %+v", r)
	}

	op := natstest.StartOperator(t)
	authed := runBusChecks(t, op.URL, project.BusFiles{Creds: op.WriteUser(t, natstest.User{Name: "cli"})})
	if r := authed["event bus"]; r.Status != doctor.OK || !strings.Contains(r.Detail, "as user cli") {
		t.Errorf("event bus with accounts: %+v", r)
	}
	if r := authed["bus access"]; r.Status != doctor.OK || !strings.Contains(r.Detail, "refused a client without credentials") {
		t.Errorf("bus access with accounts: %+v", r)
	}

	cli := op.WriteUser(t, natstest.User{Name: "cli"})
	minting := runBusChecks(t, op.URL, project.BusFiles{Creds: cli, SigningKey: op.WriteSigningKey(t)})
	if r := minting["event bus"]; r.Status != doctor.OK || !strings.Contains(r.Detail, "takes the users events.signingKey mints") {
		t.Errorf("event bus with a signing key: %+v", r)
	}
	other := natstest.StartOperator(t).WriteSigningKey(t)
	wrong := runBusChecks(t, op.URL, project.BusFiles{Creds: cli, SigningKey: other})
	if r := wrong["event bus"]; r.Status != doctor.Fail || !strings.Contains(r.Detail, other) || !strings.Contains(r.Detail, "not one of that account's signing keys") {
		t.Errorf("event bus with another account's signing key: %+v", r)
	}

	none := runBusChecks(t, op.URL, project.BusFiles{})
	if r := none["event bus"]; r.Status != doctor.Fail || !strings.Contains(r.Detail, "asks for credentials") {
		t.Errorf("event bus with accounts and no credentials: %+v", r)
	}
}
