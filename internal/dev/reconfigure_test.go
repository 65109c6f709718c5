package dev

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/skiffdev/skiff/internal/event"
	"github.com/skiffdev/skiff/internal/project"
)

// TestReconfigure: a skiff.yaml edit of only a liveConfig workload's config
// writes its config folder and needs no cycle; any other edit of it, and
// every edit for a workload without live config, cycles it; a workload
// gone from skiff.yaml gets a cycle that says so.
func TestReconfigure(t *testing.T) {
	proj := func(greeting string, port int, others ...string) *project.Project {
		p := &project.Project{Name: "shop", Workloads: []project.Workload{
			{Name: "live", Port: port, LiveConfig: true, Config: map[string]string{"GREETING": greeting}},
			{Name: "plain", Port: 9000, Config: map[string]string{"GREETING": greeting}},
		}}
		for _, o := range others {
			p.Workloads = append(p.Workloads, project.Workload{Name: o, Port: 9100})
		}
		return p
	}
	var notices []string
	l := &Local{Root: t.TempDir(), Project: proj("Hello", 8080, "old"), Events: &Emitter{Sink: func(ev event.Event) {
		if ev.Kind == event.Notice {
			notices = append(notices, ev.Message)
		}
	}}}
	got := l.Reconfigure(proj("Bonjour", 8080))
	slices.Sort(got)
	if !slices.Equal(got, []string{"old", "plain"}) {
		t.Errorf("a config edit cycles %v, want old (gone) and plain", got)
	}
	b, err := os.ReadFile(filepath.Join(l.Root, ".skiff", "config", "live", "GREETING"))
	if err != nil || string(b) != "Bonjour" {
		t.Errorf("live's config folder holds %q, %v", b, err)
	}
	if len(notices) != 1 || notices[0] != "live: new config written for its live config (no restart)" {
		t.Errorf("notices %q", notices)
	}
	if l.Project.Workloads[0].Config["GREETING"] != "Bonjour" {
		t.Error("the project was not replaced")
	}
	// Nothing changed: no cycle of live; plain cycles (as every edit does).
	if got := l.Reconfigure(proj("Bonjour", 8080)); !slices.Equal(got, []string{"plain"}) {
		t.Errorf("an edit of nothing of theirs cycles %v", got)
	}
	// Its port too: a restart.
	if got := l.Reconfigure(proj("Hi", 8081)); !slices.Contains(got, "live") {
		t.Errorf("a port and config edit cycles %v, want live among them", got)
	}
}
