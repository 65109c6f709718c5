package tui

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/event"
)

// deliver hands the model every event the fake backend's actions have
// reported so far, as its Activity subscription would.
func deliver(t *testing.T, m *Model, fb *fakeBackend) {
	t.Helper()
	for {
		select {
		case ev := <-fb.activity:
			send(t, m, activityMsg{ev: ev, ch: fb.activity})
		default:
			return
		}
	}
}

// While an action runs, the message line shows its last step as the
// session reports it; the Events pane keeps every step among the
// Kubernetes events.
func TestActionsShowTheSessionsEvents(t *testing.T) {
	m, fb := newTestModel(t)
	// The rollback starts: its command (the session's Rollback) has not
	// returned yet.
	_, cmd := m.Update(confirmedMsg{action{kind: actRollback, workload: "orders", revision: 2}})
	send(t, m, activityMsg{ev: event.Event{Time: now, Kind: event.RollbackStarted, Workload: "orders", Release: "shop-orders", Revision: 2}, ch: fb.activity})
	if v := m.frame(); !strings.Contains(v, "Rolling orders back to revision 2… · rolling shop-orders back to revision 2") {
		t.Errorf("the message line does not show the rollback's step:\n%s", v)
	}
	run(t, m, cmd)
	deliver(t, m, fb)
	press(t, m, "2")
	v := m.frame()
	for _, want := range []string{
		"skiff   rollback-started",
		"rolling shop-orders back to revision 2",
		"skiff   rolled-back",
		"shop-orders rolled back: revision 4 is ready in 2s",
		"Readiness probe failed", // the Kubernetes events stay
	} {
		if !strings.Contains(v, want) {
			t.Errorf("the Events pane lacks %q:\n%s", want, v)
		}
	}
	if strings.Count(v, "rollback-started") != 2 {
		t.Errorf("want the step the test sent and the fake's, in order:\n%s", v)
	}
	checkFrame(t, v, m.width, m.height)
}

// A delete's pane says everything it removed; a failed action says why,
// in red, on the message line and in the pane.
func TestDeleteAndFailureInTheEventsPane(t *testing.T) {
	m, fb := newTestModel(t)
	send(t, m, keyMsg("2"))
	press(t, m, "D", "y")
	deliver(t, m, fb)
	// The delete made the events stale: they are loaded again.
	v := m.frame()
	for _, want := range []string{"uninstalled release shop-orders in 1s", "removed the consumers of its triggers", "deleted secret/orders-values", "✓ deleted orders"} {
		if !strings.Contains(v, want) {
			t.Errorf("after a delete the screen lacks %q:\n%s", want, v)
		}
	}

	m, fb = newTestModel(t)
	fb.fail = errors.New("forbidden: cannot delete secrets\nin namespace shop")
	press(t, m, "2", "D", "y")
	deliver(t, m, fb)
	v = m.frame()
	if !strings.Contains(v, "delete failed: forbidden: cannot delete secrets\n") {
		t.Errorf("the failure's first line is not in the pane:\n%s", v)
	}
	// An error of two lines is one on the message line.
	if !strings.Contains(v, "✗ forbidden: cannot delete secrets in namespace shop") {
		t.Errorf("the failure is not on the message line:\n%s", v)
	}
	checkFrame(t, v, m.width, m.height)
}

// An event about no workload shown (the project's pull Secret) goes to the
// message line; the subscription goes on.
func TestActivityOfTheProject(t *testing.T) {
	m, fb := newTestModel(t)
	_, cmd := m.Update(activityMsg{ev: event.Event{Kind: event.Deleted, Object: "pull-secret/shop-pull"}, ch: fb.activity})
	if v := m.frame(); !strings.Contains(v, "deleted pull-secret/shop-pull") {
		t.Errorf("the message line does not say it:\n%s", v)
	}
	if cmd == nil {
		t.Fatal("the subscription ended after an event")
	}
	fb.emit(event.Event{Kind: event.Notice, Workload: "payments", Message: "hello"})
	msg, ok := result(t, cmd, "waitActivity").(activityMsg)
	if !ok || msg.ev.Message != "hello" {
		t.Errorf("the next wait returned %+v", msg)
	}
}

// The wait for the next event ends with the dashboard's context (the
// session's channel stays open), and there is none without a channel.
func TestWaitActivityEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	m := New(ctx, newFakeBackend(), Options{})
	if m.waitActivity(nil) != nil {
		t.Error("a wait on no channel")
	}
	cmd := m.waitActivity(make(chan event.Event))
	cancel()
	if msg := result(t, cmd, "waitActivity after the context ended"); msg != nil {
		t.Errorf("got %T", msg)
	}
}

func TestNewActivity(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	sink, ch := NewActivity(ctx)
	sink(event.Event{Kind: event.Deleted, Workload: "orders", Object: "release"})
	if ev := <-ch; ev.Workload != "orders" {
		t.Errorf("got %+v", ev)
	}
	// A full channel holds the session back until the context ends.
	for i := 0; i < cap(ch); i++ {
		sink(event.Event{})
	}
	done := make(chan struct{})
	go func() { sink(event.Event{}); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(cmdTimeout):
		t.Fatal("the sink still blocks after the context ended")
	}
}
