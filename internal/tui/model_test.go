package tui

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/event"
	"github.com/skiffdev/skiff/internal/kube"
)

var update = flag.Bool("update", false, "rewrite the golden frames in testdata")

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

const digest = "sha256:3f9a2c1b7d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4"

func fixtureStatuses() []engine.Status {
	exit := int32(1)
	return []engine.Status{
		{Workload: "orders", Kind: "service", Release: "shop-orders", Namespace: "shop", Revision: 3, Status: "deployed", State: engine.StateReady,
			Image: "ghcr.io/acme/orders@" + digest, Ready: 2, Desired: 2, Endpoint: "http://orders.shop.svc.cluster.local:8080", Updated: now.Add(-5 * time.Minute)},
		{Workload: "payments", Kind: "service", Release: "shop-payments", Namespace: "shop", Revision: 7, Status: "deployed", State: engine.StateProgressing,
			Image: "ghcr.io/acme/payments:v2", Ready: 1, Desired: 2, Restarts: 1, Endpoint: "http://payments.shop.svc.cluster.local:9090", Updated: now.Add(-90 * time.Second)},
		{Workload: "thumbnail", Kind: "function", Release: "shop-thumbnail", Namespace: "shop", Revision: 2, Status: "deployed", State: engine.StateDegraded,
			Image: "ghcr.io/acme/thumbnail@" + digest, Ready: 0, Desired: 1, Restarts: 4, Endpoint: "http://thumbnail.shop.svc.cluster.local:8080", Updated: now.Add(-3 * time.Hour),
			Problems: []kube.PodProblem{{Pod: "thumbnail-5d8c7b9f4-q7rtz", Container: "thumbnail", Reason: "CrashLoopBackOff", ExitCode: &exit, Restarts: 4, Logs: []string{"panic: boom"}}}},
		{Workload: "web", Kind: "service", Release: "shop-web", Namespace: "shop", State: engine.StateNotDeployed},
	}
}

func fixtureHistory() []engine.Revision {
	return []engine.Revision{
		{Revision: 1, Updated: now.Add(-72 * time.Hour), Status: "superseded", Image: "ghcr.io/acme/orders@sha256:aaaaaaaaaaaaaaaa", Description: "Install complete"},
		{Revision: 2, Updated: now.Add(-24 * time.Hour), Status: "superseded", Image: "ghcr.io/acme/orders@sha256:bbbbbbbbbbbbbbbb", Description: "Upgrade complete"},
		{Revision: 3, Updated: now.Add(-5 * time.Minute), Status: "deployed", Image: "ghcr.io/acme/orders@" + digest, Description: "Upgrade complete"},
	}
}

func logLines(workload string, n int, from time.Time) []engine.LogLine {
	out := make([]engine.LogLine, n)
	for i := range out {
		pod := workload + "-7d9f8c6b5-x2lpq"
		if i%2 == 1 {
			pod = workload + "-7d9f8c6b5-m4kzt"
		}
		msg := fmt.Sprintf("GET /orders/%d 200 in %dms", i, 3+i%7)
		if i%5 == 4 {
			msg = fmt.Sprintf("error: payment %d declined by the provider, retrying in %d seconds with a new idempotency key", i, i%3+1)
		}
		out[i] = engine.LogLine{Time: from.Add(time.Duration(i) * time.Second), Workload: workload, Pod: pod, Container: workload, Message: msg}
	}
	return out
}

// newTestModel is a dashboard at 80×24 with the fixture statuses and 30
// log lines of orders.
func newTestModel(t *testing.T) (*Model, *fakeBackend) {
	t.Helper()
	fb := newFakeBackend()
	fb.history["orders"] = fixtureHistory()
	fb.events["orders"] = []Event{
		{Time: now.Add(-4 * time.Minute), Type: "Normal", Reason: "ScalingReplicaSet", Object: "deployment/orders", Message: "Scaled up replica set orders-7d9f8c6b5 to 2"},
		{Time: now.Add(-3 * time.Minute), Type: "Normal", Reason: "Pulled", Object: "pod/orders-7d9f8c6b5-x2lpq", Message: "Container image already present on machine"},
		{Time: now.Add(-2 * time.Minute), Type: "Warning", Reason: "Unhealthy", Object: "pod/orders-7d9f8c6b5-m4kzt", Message: "Readiness probe failed: connection refused", Count: 3},
	}
	fb.resp = &Response{URL: "http://127.0.0.1:40123/", Status: "200 OK", Code: 200, Body: "{\"orders\": []}\n", Duration: 12 * time.Millisecond}
	var ws []Workload
	for _, s := range fixtureStatuses() {
		ws = append(ws, Workload{Name: s.Workload, Kind: s.Kind})
	}
	m := New(context.Background(), fb, Options{Project: "shop", Namespace: "shop", Context: "kind-skiff", Workloads: ws,
		Now: func() time.Time { return now }, Location: time.UTC})
	send(t, m, tea.WindowSizeMsg{Width: 80, Height: 24})
	send(t, m, statusMsg{StatusUpdate: StatusUpdate{Statuses: fixtureStatuses()}})
	send(t, m, logBatchMsg{workload: "orders", lines: logLines("orders", 30, now.Add(-time.Minute))})
	return m, fb
}

// cmdTimeout bounds a command run by a test: the fake backend answers at
// once, so a command still running then is blocked for good.
const cmdTimeout = 10 * time.Second

// send updates the model with msg and runs the command it returns, the way
// the program would, feeding their messages back.
//
// Subscription commands are not run: they are what the model returns for
// the messages of its subscriptions (model.go: statusSubMsg and statusMsg
// lead to waitStatus, logSubMsg and logBatchMsg to waitLogs, each blocking
// on a channel of the fake backend, which only the test fills; so do
// activitySubMsg and activityMsg, leading to waitActivity, and
// servingSubMsg and servingMsg, leading to waitServing) and for a
// tickMsg (the next tick, refreshEvery away). The tests send those
// messages themselves.
func send(t *testing.T, m *Model, msg tea.Msg) {
	t.Helper()
	_, cmd := m.Update(msg)
	if isSubscription(msg) {
		return
	}
	run(t, m, cmd)
}

// isSubscription reports whether msg is one whose command waits on a
// subscription (see send).
func isSubscription(msg tea.Msg) bool {
	switch msg.(type) {
	case statusSubMsg, statusMsg, logSubMsg, logBatchMsg, activitySubMsg, activityMsg, servingSubMsg, servingMsg, tickMsg:
		return true
	}
	return false
}

// run runs cmd to completion and sends its message (each message of a
// batch) to the model. Every command reaching run calls the fake backend
// or returns a message at once: one that blocks fails the test.
func run(t *testing.T, m *Model, cmd tea.Cmd) {
	t.Helper()
	if cmd == nil {
		return
	}
	switch msg := result(t, cmd, "a command of the model").(type) {
	case nil:
	case tea.BatchMsg:
		for _, c := range msg {
			run(t, m, c)
		}
	case tea.QuitMsg:
	default:
		send(t, m, msg)
	}
}

// result runs cmd and returns its message, failing the test (naming what
// the command was) when it does not return within cmdTimeout.
func result(t *testing.T, cmd tea.Cmd, what string) tea.Msg {
	t.Helper()
	done := make(chan tea.Msg, 1)
	go func() { done <- cmd() }()
	select {
	case msg := <-done:
		return msg
	case <-time.After(cmdTimeout):
		t.Fatalf("%s did not return within %s: a subscription or a timer run as a one-shot command?", what, cmdTimeout)
		return nil
	}
}

// quits reports whether cmd is tea.Quit, alone or in a batch.
func quits(t *testing.T, cmd tea.Cmd) bool {
	t.Helper()
	if cmd == nil {
		return false
	}
	switch msg := result(t, cmd, "the command of a key").(type) {
	case tea.QuitMsg:
		return true
	case tea.BatchMsg:
		return slices.ContainsFunc(msg, func(c tea.Cmd) bool { return quits(t, c) })
	}
	return false
}

// keyMsg is the message of a key press: a key's name ("enter",
// "shift+tab", "ctrl+c") or the text typed.
func keyMsg(k string) tea.KeyPressMsg {
	keys := map[string]tea.KeyPressMsg{
		"enter": {Code: tea.KeyEnter}, "esc": {Code: tea.KeyEscape}, "tab": {Code: tea.KeyTab},
		"shift+tab": {Code: tea.KeyTab, Mod: tea.ModShift},
		"up":        {Code: tea.KeyUp}, "down": {Code: tea.KeyDown}, "pgup": {Code: tea.KeyPgUp}, "pgdown": {Code: tea.KeyPgDown},
		"end": {Code: tea.KeyEnd}, "home": {Code: tea.KeyHome}, "ctrl+c": {Code: 'c', Mod: tea.ModCtrl},
		"backspace": {Code: tea.KeyBackspace},
	}
	if msg, ok := keys[k]; ok {
		return msg
	}
	if r := []rune(k); len(r) == 1 {
		return tea.KeyPressMsg{Code: r[0], Text: k}
	}
	return tea.KeyPressMsg{Code: tea.KeyExtended, Text: k}
}

func press(t *testing.T, m *Model, keys ...string) {
	t.Helper()
	for _, k := range keys {
		send(t, m, keyMsg(k))
	}
}

func typeText(t *testing.T, m *Model, s string) {
	t.Helper()
	for _, r := range s {
		send(t, m, keyMsg(string(r)))
	}
}

// golden compares a frame with testdata/NAME.golden; -update rewrites it.
func golden(t *testing.T, name, frame string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(frame), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v; run `go test ./internal/tui -run %s -update` to create it", err, t.Name())
	}
	if string(want) != frame {
		t.Errorf("frame %s differs from %s (rerun with -update if the change is intended)\n--- got:\n%s\n--- want:\n%s", name, path, frame, want)
	}
}

// checkFrame asserts a frame fills exactly the window.
func checkFrame(t *testing.T, frame string, width, height int) {
	t.Helper()
	lines := strings.Split(frame, "\n")
	if len(lines) != height {
		t.Errorf("frame has %d lines, want %d", len(lines), height)
	}
	for i, l := range lines {
		if w := lipgloss.Width(l); w > width {
			t.Errorf("line %d is %d cells wide, more than %d: %q", i+1, w, width, l)
		}
	}
}

func TestGoldenFrames(t *testing.T) {
	steps := []struct {
		name string
		do   func(t *testing.T, m *Model)
	}{
		{"overview_80x24", func(*testing.T, *Model) {}},
		{"events_80x24", func(t *testing.T, m *Model) { press(t, m, "2") }},
		{"history_80x24", func(t *testing.T, m *Model) { press(t, m, "3") }},
		{"help_80x24", func(t *testing.T, m *Model) { press(t, m, "?") }},
		{"filter_80x24", func(t *testing.T, m *Model) { press(t, m, "/"); typeText(t, m, "error") }},
		{"wrap_80x24", func(t *testing.T, m *Model) { press(t, m, "w") }},
		{"rollback_picker_80x24", func(t *testing.T, m *Model) { press(t, m, "r") }},
		{"rollback_confirm_80x24", func(t *testing.T, m *Model) { press(t, m, "r", "enter") }},
		{"invoke_80x24", func(t *testing.T, m *Model) { press(t, m, "i") }},
		{"degraded_selected_80x24", func(t *testing.T, m *Model) { press(t, m, "down", "down") }},
		{"exposed_80x24", func(t *testing.T, m *Model) { send(t, m, exposed("orders", "https://orders.shop.dev")) }},
		{"resize_120x30", func(t *testing.T, m *Model) { send(t, m, tea.WindowSizeMsg{Width: 120, Height: 30}) }},
		{"resize_60x16", func(t *testing.T, m *Model) { send(t, m, tea.WindowSizeMsg{Width: 60, Height: 16}) }},
		{"sparklines_80x24", func(t *testing.T, m *Model) { sample(t, m) }},
		{"sparklines_120x30", func(t *testing.T, m *Model) {
			send(t, m, tea.WindowSizeMsg{Width: 120, Height: 30})
			sample(t, m)
		}},
		{"serving_120x30", func(t *testing.T, m *Model) {
			send(t, m, tea.WindowSizeMsg{Width: 120, Height: 30})
			sample(t, m)
			press(t, m, "4")
		}},
		{"serving_empty_80x24", func(t *testing.T, m *Model) { press(t, m, "4") }},
		{"events_activity_120x30", func(t *testing.T, m *Model) {
			send(t, m, tea.WindowSizeMsg{Width: 120, Height: 30})
			for _, ev := range []event.Event{
				{Time: now.Add(-150 * time.Second), Kind: event.RollbackStarted, Workload: "orders", Release: "shop-orders", Revision: 2},
				{Time: now.Add(-90 * time.Second), Kind: event.RolledBack, Workload: "orders", Release: "shop-orders", Revision: 4, Duration: 61 * time.Second},
				{Time: now.Add(-time.Second), Kind: event.Failed, Phase: event.PhaseDelete, Workload: "orders", Release: "shop-orders", Error: "removing the consumers of orders's triggers: nats: timeout"},
			} {
				send(t, m, activityMsg{ev: ev})
			}
			press(t, m, "2")
		}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			m, _ := newTestModel(t)
			s.do(t, m)
			frame := m.frame()
			checkFrame(t, frame, m.width, m.height)
			golden(t, s.name, frame)
		})
	}
}

func TestNavigation(t *testing.T) {
	m, _ := newTestModel(t)
	if m.selected() != "orders" {
		t.Fatalf("selected %q first, want orders", m.selected())
	}
	press(t, m, "down")
	if m.selected() != "payments" || !strings.Contains(m.frame(), "▸ payments") {
		t.Errorf("after down: selected %q, want payments marked in the list", m.selected())
	}
	press(t, m, "j", "j", "j", "j")
	if m.selected() != "web" {
		t.Errorf("down past the end: selected %q, want the last workload web", m.selected())
	}
	press(t, m, "up", "k")
	if m.selected() != "payments" {
		t.Errorf("up twice from web: selected %q, want payments", m.selected())
	}
	// Keys that arrive together in one message count one by one.
	send(t, m, keyMsg("jk3"))
	if m.selected() != "payments" || m.tab != tabHistory {
		t.Errorf("keys \"jk3\" in one message: selected %q, pane %s; want payments, History", m.selected(), m.tab)
	}
	press(t, m, "1", "tab")
	if m.tab != tabEvents {
		t.Errorf("tab: pane %s, want Events", m.tab)
	}
	press(t, m, "shift+tab", "shift+tab")
	if m.tab != tabServing {
		t.Errorf("shift+tab twice from Events: pane %s, want Serving (the last)", m.tab)
	}
	press(t, m, "4")
	if m.tab != tabServing {
		t.Errorf("4: pane %s, want Serving", m.tab)
	}
}

func TestTabsLoadFromBackend(t *testing.T) {
	m, fb := newTestModel(t)
	press(t, m, "2")
	if v := m.frame(); !strings.Contains(v, "Readiness probe failed") || !strings.Contains(v, "Unhealthy ×3") {
		t.Errorf("events pane misses the fake's events:\n%s", v)
	}
	press(t, m, "3")
	v := m.frame()
	if !strings.Contains(v, "*   3") || !strings.Contains(v, "Install complete") {
		t.Errorf("history pane misses the revisions or the current mark:\n%s", v)
	}
	press(t, m, "down") // payments has no release history in the fake
	if v := m.frame(); !strings.Contains(v, "release shop-payments is not deployed") {
		t.Errorf("history error not shown:\n%s", v)
	}
	want := []string{"Events(orders)", "History(orders)", "History(payments)"}
	if got := fb.seen(); !slices.Equal(got, want) {
		t.Errorf("backend calls %q, want %q", got, want)
	}
}

func TestFilter(t *testing.T) {
	m, _ := newTestModel(t)
	press(t, m, "/")
	typeText(t, m, "ERROR")
	v := m.frame()
	if strings.Contains(v, "GET /orders") {
		t.Errorf("filter ERROR still shows non-matching lines:\n%s", v)
	}
	if strings.Count(v, "declined") != 6 {
		t.Errorf("filter ERROR shows %d matching lines, want all 6:\n%s", strings.Count(v, "declined"), v)
	}
	press(t, m, "enter")
	if m.filtering || m.byName["orders"].logs.filter != "ERROR" {
		t.Errorf("enter should keep the filter and leave the input: filtering=%v filter=%q", m.filtering, m.byName["orders"].logs.filter)
	}
	// Not typed into the filter any more: q quits.
	if _, cmd := m.Update(keyMsg("q")); !quits(t, cmd) {
		t.Errorf("q after the filter was kept does not quit")
	}
	if m.filtering || m.filter.Value() != "ERROR" || m.byName["orders"].logs.filter != "ERROR" {
		t.Errorf("q after enter went to the filter: filtering=%v input=%q filter=%q", m.filtering, m.filter.Value(), m.byName["orders"].logs.filter)
	}
	press(t, m, "/", "esc")
	if m.byName["orders"].logs.filter != "" || !strings.Contains(m.frame(), "GET /orders") {
		t.Errorf("esc should clear the filter; filter=%q", m.byName["orders"].logs.filter)
	}
	press(t, m, "/")
	typeText(t, m, "zzz-nothing")
	if v := m.frame(); !strings.Contains(v, `no line matches "zzz-nothing"`) {
		t.Errorf("a filter matching nothing should say so:\n%s", v)
	}
}

func TestPauseAndJumpToEnd(t *testing.T) {
	m, _ := newTestModel(t)
	press(t, m, "p")
	send(t, m, logBatchMsg{workload: "orders", lines: []engine.LogLine{{Time: now, Pod: "orders-7d9f8c6b5-x2lpq", Message: "a brand new line"}}})
	v := m.frame()
	if strings.Contains(v, "a brand new line") || !strings.Contains(v, "paused, 1 new") {
		t.Errorf("paused view shows new lines or does not count them:\n%s", v)
	}
	press(t, m, "pgup")
	if strings.Contains(m.frame(), "GET /orders/29 ") {
		t.Errorf("page up still shows the newest old line")
	}
	press(t, m, "G")
	v = m.frame()
	if !strings.Contains(v, "a brand new line") || !strings.Contains(v, "following") {
		t.Errorf("G should jump to the end and follow:\n%s", v)
	}
}

func TestRollbackConfirmAndCancel(t *testing.T) {
	m, fb := newTestModel(t)
	press(t, m, "r")
	p, ok := m.overlay.(*picker)
	if !ok {
		t.Fatalf("r opened %T, want the revision picker", m.overlay)
	}
	if got := p.revs[p.cursor].Revision; got != 2 {
		t.Errorf("picker starts on revision %d, want 2 (the one before the current 3)", got)
	}
	press(t, m, "enter", "n")
	if m.overlay != nil || slices.ContainsFunc(fb.seen(), func(c string) bool { return strings.HasPrefix(c, "Rollback") }) {
		t.Fatalf("n should cancel without rolling back; overlay %T, calls %q", m.overlay, fb.seen())
	}
	press(t, m, "r", "down", "enter")
	if v := m.frame(); !strings.Contains(v, "Roll orders back to revision 1?") {
		t.Fatalf("confirmation does not name the chosen revision:\n%s", v)
	}
	press(t, m, "y")
	if !slices.Contains(fb.seen(), "Rollback(orders, 1)") {
		t.Fatalf("backend calls %q, want Rollback(orders, 1)", fb.seen())
	}
	if v := m.frame(); !strings.Contains(v, "orders rolled back to revision 1 (now revision 4)") {
		t.Errorf("no success message after the rollback:\n%s", v)
	}
}

func TestRollbackFailureIsShown(t *testing.T) {
	m, fb := newTestModel(t)
	fb.fail = fmt.Errorf("rolling back shop-orders: timed out waiting for the condition; `skiff status` shows why")
	press(t, m, "r", "enter", "y")
	if v := m.frame(); !strings.Contains(v, "✗ rolling back shop-orders: timed out") {
		t.Errorf("rollback error not shown:\n%s", v)
	}
}

func TestRestartAndDeleteAskFirst(t *testing.T) {
	m, fb := newTestModel(t)
	press(t, m, "R")
	if v := m.frame(); !strings.Contains(v, "Restart the pods of orders?") {
		t.Fatalf("R shows no confirmation:\n%s", v)
	}
	press(t, m, "y")
	press(t, m, "D")
	if v := m.frame(); !strings.Contains(v, "uninstalls release shop-orders") {
		t.Fatalf("D shows no confirmation naming the release:\n%s", v)
	}
	press(t, m, "esc")
	want := []string{"Restart(orders)"}
	var got []string
	for _, c := range fb.seen() {
		if strings.HasPrefix(c, "Restart") || strings.HasPrefix(c, "Delete") {
			got = append(got, c)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("actions %q, want %q (delete cancelled)", got, want)
	}
}

func TestPortForwardAndInvoke(t *testing.T) {
	m, fb := newTestModel(t)
	press(t, m, "f")
	if v := m.frame(); !strings.Contains(v, "⇄ 127.0.0.1:40123") {
		t.Errorf("the endpoint column does not show the forward:\n%s", v)
	}
	press(t, m, "i")
	v := m.frame()
	if !strings.Contains(v, "200 OK") || !strings.Contains(v, `{"orders": []}`) {
		t.Errorf("invoke response not shown:\n%s", v)
	}
	press(t, m, "esc", "f")
	if strings.Contains(m.frame(), "⇄") {
		t.Errorf("the forward is still shown after stopping it")
	}
	want := []string{"StartPortForward(orders)", "Invoke(orders)", "StopPortForward(orders)"}
	if got := fb.seen(); !slices.Equal(got, want) {
		t.Errorf("backend calls %q, want %q", got, want)
	}
}

func TestQuit(t *testing.T) {
	for _, k := range []string{"q", "ctrl+c"} {
		m, _ := newTestModel(t)
		_, cmd := m.Update(keyMsg(k))
		if cmd == nil {
			t.Fatalf("%s: no command", k)
		}
		if _, ok := cmd().(tea.QuitMsg); !ok {
			t.Errorf("%s does not quit", k)
		}
	}
	// ctrl+c quits even from a dialog or the filter input.
	m, _ := newTestModel(t)
	press(t, m, "/")
	_, cmd := m.Update(keyMsg("ctrl+c"))
	if cmd == nil {
		t.Fatal("ctrl+c in the filter: no command")
	}
	if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Errorf("ctrl+c in the filter does not quit")
	}
}

func TestSubscriptions(t *testing.T) {
	fb := newFakeBackend()
	m := New(context.Background(), fb, Options{Workloads: []Workload{{Name: "orders", Kind: "service"}}, Now: func() time.Time { return now }, Location: time.UTC})
	fb.statuses <- StatusUpdate{Statuses: fixtureStatuses()[:1]}
	fb.logChan("orders") <- engine.LogLine{Time: now, Pod: "orders-1-abcde", Message: "listening on :8080"}
	fb.logChan("orders") <- engine.LogLine{Time: now, Pod: "orders-1-abcde", Message: "ready"}
	// Run Init's commands at once and take the messages of the
	// subscriptions they start: statusSubMsg and one logSubMsg per
	// workload. The tick among them is due only in refreshEvery: it is
	// left running.
	cmds, ok := result(t, m.Init(), "Init").(tea.BatchMsg)
	if !ok {
		t.Fatal("Init returns no batch of commands")
	}
	results := make(chan tea.Msg, len(cmds))
	for _, c := range cmds {
		go func() { results <- c() }()
	}
	var subs []tea.Msg
	gotStatus, gotLogs := false, false
	deadline := time.After(cmdTimeout)
	for !gotStatus || !gotLogs {
		select {
		case msg := <-results:
			switch msg := msg.(type) {
			case statusSubMsg:
				gotStatus = true
			case logSubMsg:
				gotLogs = gotLogs || msg.workload == "orders"
			case tickMsg, activitySubMsg, servingSubMsg:
				continue
			default:
				t.Fatalf("an Init command returned %T, want a subscription or the tick", msg)
			}
			subs = append(subs, msg)
		case <-deadline:
			t.Fatalf("Init's subscriptions did not answer within %s (status %v, logs %v)", cmdTimeout, gotStatus, gotLogs)
		}
	}
	// Each subscription leads to a wait on its channel, which holds values.
	for _, msg := range subs {
		_, wait := m.Update(msg)
		if wait == nil {
			t.Fatalf("%T led to no wait", msg)
		}
		m.Update(result(t, wait, fmt.Sprintf("the wait after %T", msg)))
	}
	v := m.frame()
	if !strings.Contains(v, "● Ready") || !strings.Contains(v, "listening on :8080") || !strings.Contains(v, "ready") {
		t.Errorf("status and log subscriptions did not reach the view:\n%s", v)
	}
	if got := m.byName["orders"].logs.lines.len(); got != 2 {
		t.Errorf("one wait took %d lines, want both waiting lines in one batch", got)
	}
}

func TestStatusErrorShown(t *testing.T) {
	m, _ := newTestModel(t)
	m.Update(statusMsg{StatusUpdate: StatusUpdate{Err: fmt.Errorf("watching deployments in shop: forbidden")}})
	if v := m.frame(); !strings.Contains(v, "✗ watching deployments in shop: forbidden") {
		t.Errorf("status error not shown:\n%s", v)
	}
}

func TestRingBufferIsBounded(t *testing.T) {
	fb := newFakeBackend()
	m := New(context.Background(), fb, Options{Workloads: []Workload{{Name: "orders"}}, LogLines: 100, Location: time.UTC})
	for i := 0; i < 100; i++ {
		m.Update(logBatchMsg{workload: "orders", lines: logLines("orders", 100, now)})
	}
	v := m.byName["orders"].logs
	if v.lines.len() != 100 || v.lines.next() != 10000 || v.lines.first() != 9900 {
		t.Errorf("ring holds %d lines (first %d, next %d), want the last 100 of 10000", v.lines.len(), v.lines.first(), v.lines.next())
	}
	if !strings.Contains(m.frame(), "GET /orders/98 ") {
		t.Errorf("the newest lines are not shown:\n%s", m.frame())
	}
	// Holding the view at a line that is then dropped moves it to the oldest kept.
	press(t, m, "p")
	m.Update(logBatchMsg{workload: "orders", lines: logLines("orders", 150, now)})
	if v.bottom != v.lines.first() {
		t.Errorf("held line %d fell out of the ring, want it moved to the oldest kept %d", v.bottom, v.lines.first())
	}
}

func TestLogLinesCannotDriveTheTerminal(t *testing.T) {
	m, _ := newTestModel(t)
	m.Update(logBatchMsg{workload: "orders", lines: []engine.LogLine{{Time: now, Pod: "p-1", Message: "\x1b[2J\x1b]0;pwned\x07red \x1b[31mtext\x1b[0m\tafter tab\r"}}})
	v := m.frame()
	if strings.Contains(v, "\x1b") {
		t.Errorf("escape sequences from a log line reached the screen: %q", v)
	}
	if !strings.Contains(v, "red text    after tab") {
		t.Errorf("the text of the line was lost:\n%s", v)
	}
}

func TestColors(t *testing.T) {
	m, _ := newTestModel(t)
	if strings.Contains(m.frame(), "\x1b[") {
		t.Errorf("a dashboard without a color renderer (NO_COLOR) printed escape codes")
	}
	m.setStyles(newStyles(true, false))
	lines := strings.Split(m.frame(), "\n")
	// The STATE cell of each workload's row is its symbol and state in the
	// state's color, and only that cell has that color in the row.
	for workload, want := range map[string]struct{ code, cell string }{
		"orders":    {"\x1b[32m", "● Ready"},
		"payments":  {"\x1b[33m", "◐ Progressing"},
		"thumbnail": {"\x1b[1;31m", "▲ Degraded"},
		"web":       {"\x1b[90m", "○ NotDeployed"},
	} {
		var rows []string
		for _, l := range lines {
			if strings.HasPrefix(strings.TrimLeft(ansi.Strip(l), "▸ "), workload+" ") {
				rows = append(rows, l)
			}
		}
		if len(rows) != 1 {
			t.Errorf("%d rows for %s in the workload list, want 1: %q", len(rows), workload, rows)
			continue
		}
		row := rows[0]
		if !strings.Contains(row, want.code+want.cell+"\x1b[m") {
			t.Errorf("the state of %s is not drawn as %q in color %q: %q", workload, want.cell, want.code, row)
		}
		if n := strings.Count(row, want.code); n != 1 {
			t.Errorf("color %q appears %d times in the row of %s, want only on its state: %q", want.code, n, workload, row)
		}
	}
}

func TestProgramExitsAndRestoresTerminal(t *testing.T) {
	fb := newFakeBackend()
	m := New(context.Background(), fb, Options{Workloads: []Workload{{Name: "orders"}}})
	var out bytes.Buffer
	p := tea.NewProgram(m, tea.WithInput(strings.NewReader("q")), tea.WithOutput(&out))
	done := make(chan error, 1)
	go func() { _, err := p.Run(); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		p.Kill()
		t.Fatal("q did not end the program")
	}
	if !strings.Contains(out.String(), "\x1b[?1049h") || !strings.Contains(out.String(), "\x1b[?1049l") {
		t.Errorf("the program did not enter and leave the alternate screen: %q", out.String())
	}
}

// A workload with triggers shows its backlog on the bus and its dead
// letters; without any, the column is not there.
func TestEventLagColumn(t *testing.T) {
	m, _ := newTestModel(t)
	if v := m.frame(); strings.Contains(v, "EVENTS") {
		t.Errorf("an EVENTS column without events:\n%s", v)
	}
	sts := fixtureStatuses()
	sts[0].Events = &engine.EventLag{Lag: 3, DeadLetters: 1}
	send(t, m, tea.WindowSizeMsg{Width: 120, Height: 24})
	send(t, m, statusMsg{StatusUpdate: StatusUpdate{Statuses: sts}})
	v := m.frame()
	if !strings.Contains(v, "EVENTS") || !strings.Contains(v, "lag 3 dlq 1") {
		t.Errorf("no lag for %s:\n%s", sts[0].Workload, v)
	}
}

// With colors on, the dashboard asks the terminal for its background (a
// message, which nothing waits for) and, told it is light, draws yellow
// darker; without colors it asks nothing.
func TestBackgroundAskedOnlyWithColors(t *testing.T) {
	asks := func(m *Model) bool {
		cmds, ok := result(t, m.Init(), "Init").(tea.BatchMsg)
		if !ok {
			t.Fatal("Init returns no batch of commands")
		}
		// Every command but the tick (due in refreshEvery) returns at
		// once: the subscriptions' first messages and the request.
		results := make(chan tea.Msg, len(cmds))
		for _, c := range cmds {
			go func() { results <- c() }()
		}
		asked := false
		for range len(cmds) - 1 {
			select {
			case msg := <-results:
				if _, ok := msg.(tickMsg); ok {
					t.Fatal("the tick came at once")
				}
				asked = asked || fmt.Sprintf("%T", msg) == fmt.Sprintf("%T", tea.RequestBackgroundColor())
			case <-time.After(cmdTimeout):
				t.Fatalf("Init's commands did not return within %s", cmdTimeout)
			}
		}
		return asked
	}
	ws := []Workload{{Name: "orders", Kind: "service"}}
	if m := New(context.Background(), newFakeBackend(), Options{Workloads: ws}); asks(m) {
		t.Error("a dashboard without colors asked the terminal for its background")
	}
	m := New(context.Background(), newFakeBackend(), Options{Workloads: ws, Color: true, Location: time.UTC})
	if !asks(m) {
		t.Fatal("a dashboard with colors did not ask the terminal for its background")
	}
	m.Update(statusMsg{StatusUpdate: StatusUpdate{Statuses: []engine.Status{{Workload: "orders", Kind: "service", State: engine.StateProgressing}}}})
	if v := m.frame(); !strings.Contains(v, "\x1b[33m◐ Progressing") {
		t.Errorf("before an answer, Progressing is not in the terminal's yellow: %q", v)
	}
	m.Update(tea.BackgroundColorMsg{Color: color.White})
	if v := m.frame(); !strings.Contains(v, "\x1b[38;5;136m◐ Progressing") {
		t.Errorf("on a light background, Progressing is not in dark yellow: %q", v)
	}
	m.Update(tea.BackgroundColorMsg{Color: color.Black})
	if v := m.frame(); !strings.Contains(v, "\x1b[33m◐ Progressing") {
		t.Errorf("on a dark background, Progressing is not in the terminal's yellow: %q", v)
	}
}

// Text pasted into the filter input filters as typed text does; pasted
// elsewhere it does nothing.
func TestPasteIntoTheFilter(t *testing.T) {
	m, _ := newTestModel(t)
	send(t, m, tea.PasteMsg{Content: "declined"})
	if f := m.byName["orders"].logs.filter; f != "" {
		t.Errorf("a paste outside the filter set the filter %q", f)
	}
	press(t, m, "/")
	send(t, m, tea.PasteMsg{Content: "declined"})
	if f := m.byName["orders"].logs.filter; f != "declined" {
		t.Errorf("filter %q after a paste, want %q", f, "declined")
	}
}
