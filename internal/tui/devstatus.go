package tui

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/skiffdev/skiff/internal/event"
)

// DevStatus is `skiff dev`'s panel on a terminal: a line per workload
// (state, how long its last cycle took, where it answers on this machine
// and, once deployed on the cluster, its public URL), pinned below
// the logs and the loop's messages, which the program prints above it, so
// every log line stays in the terminal's scrollback.
type DevStatus struct {
	// Interrupt is called on Ctrl-C (the terminal is in raw mode while the
	// panel runs, so Ctrl-C is a key, not a signal).
	Interrupt func()

	names []string
	rows  map[string]*devRow
	width int
	// shared is width for other goroutines (Width).
	shared atomic.Int64
	now    func() time.Time
	st     *styles
}

type devRow struct {
	state   string        // starting, building, ready, failed, exited
	url     string        // where it answers on this machine
	public  string        // its public URL, from its last deploy when exposed
	last    time.Duration // the last cycle that ended
	started time.Time     // of the cycle that runs
	detail  string        // the last failure's first line
}

// DevEventMsg carries one of the loop's events to the panel.
type DevEventMsg event.Event

type devTick struct{}

// NewDevStatus returns the panel for workloads, drawn in colors or not.
func NewDevStatus(workloads []string, colors bool) *DevStatus {
	m := &DevStatus{names: workloads, rows: map[string]*devRow{}, width: 80, now: time.Now, st: newStyles(colors, false)}
	for _, n := range workloads {
		m.rows[n] = &devRow{state: "starting"}
	}
	return m
}

// Width is the terminal's width, once known (0 before); safe from any
// goroutine.
func (m *DevStatus) Width() int { return int(m.shared.Load()) }

// Init starts the clock that moves the time of running cycles and, with
// colors, asks the terminal for its background (answered as a message,
// which nothing waits for).
func (m *DevStatus) Init() tea.Cmd {
	if m.st.colors {
		return tea.Batch(m.tick(), tea.RequestBackgroundColor)
	}
	return m.tick()
}

func (m *DevStatus) tick() tea.Cmd {
	return tea.Tick(200*time.Millisecond, func(time.Time) tea.Msg { return devTick{} })
}

// Update applies an event or a new width.
func (m *DevStatus) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width = msg.Width
		m.shared.Store(int64(msg.Width))
	case tea.BackgroundColorMsg:
		if m.st.colors {
			m.st = newStyles(true, !msg.IsDark())
		}
	case tea.KeyPressMsg:
		if msg.String() == "ctrl+c" && m.Interrupt != nil {
			m.Interrupt()
		}
	case devTick:
		return m, m.tick()
	case DevEventMsg:
		m.apply(event.Event(msg))
	}
	return m, nil
}

func (m *DevStatus) apply(ev event.Event) {
	r := m.rows[ev.Workload]
	if r == nil {
		return
	}
	// The deployed event (dev on the cluster) carries the public URL of
	// an exposed workload; dev's own events, where it answers here.
	switch {
	case ev.Kind == event.Deployed:
		r.public = ev.URL
	case ev.URL != "":
		r.url = ev.URL
	}
	switch ev.Kind {
	case event.CycleStarted:
		r.state, r.started = "building", m.now()
	case event.Ready, event.Unchanged:
		r.state, r.last, r.detail = "ready", ev.Duration, ""
	case event.Failed:
		r.last = ev.Duration
		r.detail, _, _ = strings.Cut(ev.Error, "\n")
		if r.state == "building" && r.detail != "" {
			r.state = "failed"
		}
	case event.Exited:
		r.state, r.detail = "exited", ev.Error
	case event.Stopped, event.Removed, event.Restored, event.Left:
		r.state = string(ev.Kind)
		if ev.Kind == event.Removed {
			r.public = "" // uninstalled: nothing answers there
		}
	}
}

// View draws the panel below the lines printed above it.
func (m *DevStatus) View() tea.View { return tea.NewView(m.render()) }

// render returns a line per workload, each at most the terminal's width,
// and a blank line (the one bubbletea erases when it ends, so the states
// stay on the terminal).
func (m *DevStatus) render() string {
	nameW := 0
	for _, n := range m.names {
		nameW = max(nameW, ansi.StringWidth(n))
	}
	var b strings.Builder
	b.WriteString(m.st.rule.Render(strings.Repeat("─", max(1, m.width))) + "\n")
	for _, n := range m.names {
		r := m.rows[n]
		icon, style := "·", m.st.dim
		switch r.state {
		case "ready":
			icon, style = "✓", m.st.ok
		case "building":
			icon, style = "↻", m.st.info
		case "failed", "exited":
			icon, style = "✗", m.st.bad
		}
		took := ""
		switch {
		case r.state == "building":
			took = m.now().Sub(r.started).Round(100 * time.Millisecond).String()
		case r.last > 0:
			took = r.last.Round(10 * time.Millisecond).String()
		}
		line := fmt.Sprintf("%s %-*s  %-9s %7s  %s", style.Render(icon), nameW, n, style.Render(r.state), took, r.url)
		if r.public != "" {
			line += "  " + m.st.info.Render(r.public)
		}
		if r.detail != "" && r.state != "ready" {
			line += "  " + m.st.dim.Render(r.detail)
		}
		b.WriteString(ansi.Truncate(line, max(1, m.width), "…") + "\n")
	}
	return b.String()
}
