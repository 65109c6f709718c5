package factory

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/iostreams"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/tui"
)

// Every dependency a command may ask for is there: a nil one would be a
// panic in the middle of a command.
func TestNewWiresEveryDependency(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	f := New(ios, func(string) string { return "" })
	for name, missing := range map[string]bool{
		"Session": f.Session == nil, "Probes": f.Probes == nil, "Builder": f.Builder == nil, "Render": f.Render == nil,
		"ChartValues": f.ChartValues == nil, "Registry": f.Registry == nil, "Bus": f.Bus == nil, "Dashboard": f.Dashboard == nil, "DevCluster": f.DevCluster == nil,
		"Prompter": f.Prompter == nil, "Templates": f.Templates == nil,
	} {
		if missing {
			t.Errorf("Factory.%s is nil", name)
		}
	}
}

// The session reads --kubeconfig when a command connects, after its flags
// are parsed: a kubeconfig that is not there is said so.
func TestSessionReadsTheKubeconfigFlagLate(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	f := New(ios, func(string) string { return "" })
	missing := filepath.Join(t.TempDir(), "nope")
	f.Globals.Kubeconfig = missing // set after New, as cobra does
	_, err := f.Session(context.Background(), engine.SessionConfig{Project: &project.Project{Name: "shop", Namespace: "shop"}})
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("err = %v, want one naming %s", err, missing)
	}
}

// The dashboard's backend and dev's runner drive a session the Factory
// opened; on any other (a test's fake) they say what they need.
func TestBackendsNeedTheFactorysSession(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	f := New(ios, func(string) string { return "" })
	var other struct{ engine.Session }
	b, err := f.Dashboard(other, tui.ClusterConfig{Namespace: "shop"})
	if err == nil || !strings.Contains(err.Error(), "needs a session on a real cluster") {
		t.Errorf("Dashboard on another session = %v, %v; want the error that says so", b, err)
	}
	r, err := f.DevCluster(context.Background(), other, engine.DevConfig{})
	if err == nil || !strings.Contains(err.Error(), "needs a session on a real cluster") {
		t.Errorf("DevCluster on another session = %v, %v; want the error that says so", r, err)
	}
}
