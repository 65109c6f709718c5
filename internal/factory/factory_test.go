package factory

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
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
		"LocalBus": f.LocalBus == nil, "DevLocalBus": f.DevLocalBus == nil, "Verifier": f.Verifier == nil,
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

// dev --local's bus is the real one, one per project: a second start is
// the error naming the first, and no bus (not a nil *Bus in the interface,
// which would pass skiff dev's nil checks); once the first is closed, the
// project's bus can start again.
func TestDevLocalBusIsOnePerProject(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	f := New(ios, func(string) string { return "" })
	root := t.TempDir()
	p := &project.Project{Name: "shop", Events: &project.Events{}}
	cfg := engine.DevBusConfig{Root: root, Project: p, Logs: io.Discard}
	b, err := f.DevLocalBus(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	at := b.Info()
	if !strings.HasPrefix(at.URL, "nats://127.0.0.1:") || at.Stream != "shop" || !strings.HasPrefix(at.Sink, "http://127.0.0.1:") {
		t.Errorf("Info = %+v; want the bus and sink on loopback and the project's stream", at)
	}
	if env := b.Env(); len(env) != 1 || env[0] != "K_SINK="+at.Sink {
		t.Errorf("Env = %q; want K_SINK=%s", env, at.Sink)
	}
	second, err := f.DevLocalBus(context.Background(), cfg)
	if err == nil || second != nil || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("a second bus = %v, %v; want none and the error naming this process", second, err)
	}
	b.Close()
	again, err := f.DevLocalBus(context.Background(), cfg)
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	again.Close()
}
