package tui

import (
	"image/color"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/skiffdev/skiff/internal/event"
)

func TestDevStatusFollowsTheLoop(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	m := NewDevStatus([]string{"front", "payments"}, false)
	m.now = func() time.Time { return now }
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})
	send := func(ev event.Event) { m.Update(DevEventMsg(ev)) }
	line := func(name string) string {
		t.Helper()
		for _, l := range strings.Split(m.render(), "\n") {
			if strings.Contains(l, name) {
				return l
			}
		}
		t.Fatalf("no line for %s in:\n%s", name, m.render())
		return ""
	}

	send(event.Event{Kind: event.Watching, Workload: "front", URL: "http://127.0.0.1:18080"})
	if l := line("front"); !strings.Contains(l, "starting") || !strings.Contains(l, "http://127.0.0.1:18080") {
		t.Errorf("watching: %q", l)
	}
	send(event.Event{Kind: event.CycleStarted, Workload: "front"})
	now = now.Add(1500 * time.Millisecond)
	if l := line("front"); !strings.Contains(l, "building") || !strings.Contains(l, "1.5s") {
		t.Errorf("building: %q", l)
	}
	send(event.Event{Kind: event.Ready, Workload: "front", Duration: 1234 * time.Millisecond})
	if l := line("front"); !strings.Contains(l, "✓") || !strings.Contains(l, "ready") || !strings.Contains(l, "1.23s") {
		t.Errorf("ready: %q", l)
	}
	send(event.Event{Kind: event.CycleStarted, Workload: "payments"})
	send(event.Event{Kind: event.Failed, Workload: "payments", Error: "go build of payments failed:\n./main.go:3: syntax error", Duration: time.Second})
	if l := line("payments"); !strings.Contains(l, "✗") || !strings.Contains(l, "failed") || !strings.Contains(l, "go build of payments failed:") || strings.Contains(l, "syntax") {
		t.Errorf("failed: %q (want the error's first line)", l)
	}
	// Every line fits the terminal.
	m.Update(tea.WindowSizeMsg{Width: 30, Height: 30})
	for _, l := range strings.Split(m.render(), "\n") {
		if w := ansi.StringWidth(l); w > 30 {
			t.Errorf("%d cells wide: %q", w, l)
		}
	}
	if m.Width() != 30 {
		t.Errorf("Width() = %d", m.Width())
	}
	// Ctrl-C is passed on, not acted on.
	interrupted := 0
	m.Interrupt = func() { interrupted++ }
	if _, cmd := m.Update(tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}); cmd != nil || interrupted != 1 {
		t.Errorf("ctrl-c: cmd %v, interrupted %d", cmd, interrupted)
	}
}

// With colors the panel asks the terminal for its background (and
// restyles on the answer); without, it asks nothing.
func TestDevStatusAsksBackgroundOnlyWithColors(t *testing.T) {
	if msg := NewDevStatus([]string{"front"}, false).Init()(); msg != (devTick{}) {
		t.Errorf("without colors Init returned %T, want only the clock's tick", msg)
	}
	m := NewDevStatus([]string{"front"}, true)
	batch, ok := m.Init()().(tea.BatchMsg)
	if !ok {
		t.Fatal("with colors Init returns no batch")
	}
	asked := false
	for _, c := range batch {
		if _, ok := c().(devTick); !ok {
			asked = true
		}
	}
	if !asked {
		t.Error("with colors the panel did not ask for the background")
	}
	m.Update(tea.BackgroundColorMsg{Color: color.White})
	m.Update(DevEventMsg(event.Event{Kind: event.Ready, Workload: "front"}))
	if v := m.render(); !strings.Contains(v, "\x1b[32mready") {
		t.Errorf("the panel lost its colors on a light background: %q", v)
	}
}

// On the cluster, the deployed event of an exposed workload carries its
// public URL: the panel shows it beside where the workload answers here,
// keeps it over the cycles that follow and drops it once the release is
// uninstalled.
func TestDevStatusShowsThePublicURL(t *testing.T) {
	m := NewDevStatus([]string{"front", "worker"}, false)
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 30})
	send := func(ev event.Event) { m.Update(DevEventMsg(ev)) }
	line := func(name string) string {
		t.Helper()
		for _, l := range strings.Split(m.render(), "\n") {
			if strings.Contains(l, name) {
				return l
			}
		}
		t.Fatalf("no line for %s in:\n%s", name, m.render())
		return ""
	}
	const local, public = "http://127.0.0.1:18080", "https://front.shop.example.com"

	send(event.Event{Kind: event.Watching, Workload: "front", URL: local})
	send(event.Event{Kind: event.CycleStarted, Workload: "front"})
	if l := line("front"); strings.Contains(l, "https://") {
		t.Errorf("a public URL before any deploy: %q", l)
	}
	send(event.Event{Kind: event.Deployed, Workload: "front", URL: public})
	send(event.Event{Kind: event.Deployed, Workload: "worker"})
	send(event.Event{Kind: event.Ready, Workload: "front", URL: local, Duration: time.Second})
	l := line("front")
	if !strings.Contains(l, local) || !strings.Contains(l, public) || strings.Index(l, local) > strings.Index(l, public) {
		t.Errorf("after the deploy: %q, want %s then %s", l, local, public)
	}
	if l := line("worker"); strings.Contains(l, "https://") {
		t.Errorf("a workload not exposed shows a public URL: %q", l)
	}
	// The next cycle's events carry no public URL; it stays.
	send(event.Event{Kind: event.CycleStarted, Workload: "front"})
	send(event.Event{Kind: event.Unchanged, Workload: "front", URL: local})
	if l := line("front"); !strings.Contains(l, public) {
		t.Errorf("the public URL is gone after a cycle: %q", l)
	}
	// A deploy that no longer exposes it clears it; so does removing it.
	send(event.Event{Kind: event.Deployed, Workload: "front"})
	if l := line("front"); strings.Contains(l, public) || !strings.Contains(l, local) {
		t.Errorf("after a deploy without a URL: %q", l)
	}
	send(event.Event{Kind: event.Deployed, Workload: "front", URL: public})
	send(event.Event{Kind: event.Removed, Workload: "front"})
	if l := line("front"); strings.Contains(l, public) {
		t.Errorf("after the release is removed: %q", l)
	}
}
