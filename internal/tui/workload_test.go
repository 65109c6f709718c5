package tui

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/skiffdev/skiff/internal/engine"
)

// A workload's own messages change its state alone.
func TestWorkloadUpdate(t *testing.T) {
	w := newWorkload("orders", "service", 100)
	w.update(logBatchMsg{workload: "orders", lines: logLines("orders", 3, now)}, now)
	if w.logs.lines.len() != 3 {
		t.Errorf("%d log lines, want 3", w.logs.lines.len())
	}
	w.update(eventsMsg{workload: "orders", events: []Event{{Reason: "Pulled"}}}, now)
	w.update(historyMsg{workload: "orders", revs: fixtureHistory()}, now)
	if w.events == nil || len(w.events.items) != 1 || !w.events.at.Equal(now) || w.history == nil || len(w.history.items) != 3 {
		t.Fatalf("events %+v, history %+v", w.events, w.history)
	}

	w.busy = "starting a port-forward…"
	w.update(forwardMsg{workload: "orders", err: errors.New("no pod")}, now)
	if w.busy != "" || w.forward != "" {
		t.Errorf("a failed forward: busy %q, forward %q", w.busy, w.forward)
	}
	w.update(forwardMsg{workload: "orders", addr: "127.0.0.1:40123"}, now)
	if w.forward != "127.0.0.1:40123" {
		t.Errorf("forward %q after it started", w.forward)
	}

	// A failed action keeps what was loaded; one that succeeded makes it
	// stale, and a delete ends the forward.
	w.busy = "Deleting orders…"
	w.update(actionDoneMsg{action: action{kind: actDelete, workload: "orders"}, err: errors.New("forbidden")}, now)
	if w.busy != "" || w.events == nil || w.history == nil || w.forward == "" {
		t.Errorf("after a failed delete: busy %q, events %v, history %v, forward %q", w.busy, w.events != nil, w.history != nil, w.forward)
	}
	w.update(actionDoneMsg{action: action{kind: actDelete, workload: "orders"}}, now)
	if w.events != nil || w.history != nil || w.forward != "" {
		t.Errorf("after a delete: events %v, history %v, forward %q", w.events != nil, w.history != nil, w.forward)
	}
}

func TestWorkloadSetStatus(t *testing.T) {
	w := newWorkload("orders", "", 100)
	s := fixtureStatuses()[0]
	if changed, rev := w.setStatus(s); !changed || !rev || w.kind != "service" {
		t.Errorf("first status: changed %v, new revision %v, kind %q", changed, rev, w.kind)
	}
	if changed, _ := w.setStatus(s); changed {
		t.Error("the same status again counts as a change")
	}
	s.Restarts++
	if changed, rev := w.setStatus(s); !changed || rev {
		t.Errorf("a restart: changed %v, new revision %v; want a change of the same revision", changed, rev)
	}
	s.Revision++
	if _, rev := w.setStatus(s); !rev {
		t.Error("a new revision is not one")
	}
}

func TestStartLoading(t *testing.T) {
	var l *loaded[Event]
	if !startLoading(&l) || l == nil || !l.loading {
		t.Fatalf("nothing loaded: %+v", l)
	}
	if startLoading(&l) {
		t.Error("started loading twice at once")
	}
	l.loading = false
	if !startLoading(&l) || !l.loading {
		t.Error("a loaded pane does not reload")
	}
}

// The Model routes a message to the workload it is about, and a status
// naming a workload it did not know adds it, wrapped and filtered as the
// others, and follows its logs.
func TestModelRoutesToWorkloads(t *testing.T) {
	m, fb := newTestModel(t)
	send(t, m, logBatchMsg{workload: "payments", lines: logLines("payments", 2, now)})
	send(t, m, logBatchMsg{workload: "nope", lines: logLines("nope", 2, now)})
	if n := m.byName["payments"].logs.lines.len(); n != 2 {
		t.Errorf("payments has %d lines, want 2", n)
	}
	if n := m.byName["orders"].logs.lines.len(); n != 30 {
		t.Errorf("orders has %d lines, want its 30", n)
	}
	if m.byName["nope"] != nil {
		t.Error("a log batch of an unknown workload added it")
	}

	press(t, m, "w", "/")
	typeText(t, m, "declined")
	press(t, m, "enter")
	sts := append(fixtureStatuses(), engine.Status{Workload: "extra", Kind: "function", State: engine.StateReady})
	_, cmd := m.Update(statusMsg{StatusUpdate: StatusUpdate{Statuses: sts}})
	w := m.byName["extra"]
	if w == nil || m.list[len(m.list)-1] != w {
		t.Fatal("a new workload is not added at the end of the list")
	}
	if !w.logs.wrap || w.logs.filter != "declined" {
		t.Errorf("the new workload's logs: wrap %v, filter %q; want those of the others", w.logs.wrap, w.logs.filter)
	}
	// The batch holds the wait for the next statuses (which blocks on the
	// fake's channel, closed at the end) and the log subscription of extra.
	t.Cleanup(func() { close(fb.statuses) })
	batch, ok := result(t, cmd, "the statuses' command").(tea.BatchMsg)
	if !ok {
		t.Fatal("the statuses' command is no batch")
	}
	msgs := make(chan tea.Msg, len(batch))
	for _, c := range batch {
		go func() { msgs <- c() }()
	}
	deadline := time.After(cmdTimeout)
	for {
		select {
		case msg := <-msgs:
			if sub, ok := msg.(logSubMsg); ok && sub.workload == "extra" {
				if !slices.Contains(fb.seen(), "Logs(extra)") {
					t.Errorf("backend calls %q, want Logs(extra)", fb.seen())
				}
				return
			}
		case <-deadline:
			t.Fatalf("the logs of extra are not followed: backend calls %q", fb.seen())
		}
	}
}

// exposed is a status update of the fixture in which workload is exposed
// at url.
func exposed(workload, url string) statusMsg {
	ss := fixtureStatuses()
	for i := range ss {
		if ss[i].Workload == workload {
			ss[i].URL = url
		}
	}
	return statusMsg{StatusUpdate: StatusUpdate{Statuses: ss}}
}

// An exposed workload's public URL shows in its row (in place of the
// in-cluster endpoint) and in the pane's header, only while its status has
// one.
func TestExposedWorkloadShowsItsURL(t *testing.T) {
	m, _ := newTestModel(t)
	send(t, m, tea.WindowSizeMsg{Width: 120, Height: 30}) // room for the whole URL in the row
	const url = "https://orders.shop.dev"
	row := func(name string) string {
		t.Helper()
		for _, l := range strings.Split(m.frame(), "\n") {
			if strings.HasPrefix(strings.TrimLeft(l, "▸ "), name+" ") {
				return l
			}
		}
		t.Fatalf("no row for %s in:\n%s", name, m.frame())
		return ""
	}
	header := func() string { return strings.Split(m.frame(), "\n")[6] }
	if strings.Contains(m.frame(), "https://") {
		t.Fatalf("a URL before any workload is exposed:\n%s", m.frame())
	}

	send(t, m, exposed("orders", url))
	if r := row("orders"); !strings.Contains(r, url) || strings.Contains(r, "orders.shop:8080") {
		t.Errorf("orders' row: %q, want %s in place of its endpoint", r, url)
	}
	if r := row("payments"); !strings.Contains(r, "payments.shop:9090") {
		t.Errorf("payments' row (not exposed): %q, want its endpoint", r)
	}
	if h := header(); !strings.Contains(h, "orders · "+url+" · following") {
		t.Errorf("pane header: %q, want orders' URL", h)
	}
	// Another workload's header says nothing of orders' URL.
	press(t, m, "down")
	if h := header(); !strings.Contains(h, "payments") || strings.Contains(h, "https://") {
		t.Errorf("payments' pane header: %q", h)
	}
	press(t, m, "up")
	// A port-forward takes the row's cell; the header keeps the URL.
	press(t, m, "f")
	if r := row("orders"); !strings.Contains(r, "⇄ 127.0.0.1:40123") {
		t.Errorf("orders' row with a port-forward: %q", r)
	}
	if h := header(); !strings.Contains(h, url) {
		t.Errorf("pane header with a port-forward: %q, want %s", h, url)
	}
	// No longer exposed: the URL goes.
	send(t, m, statusMsg{StatusUpdate: StatusUpdate{Statuses: fixtureStatuses()}})
	if f := m.frame(); strings.Contains(f, url) {
		t.Errorf("the URL stays once the status has none:\n%s", f)
	}
}
