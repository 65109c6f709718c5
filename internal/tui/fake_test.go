package tui

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/event"
)

// fakeBackend records what the dashboard asked and answers from its
// fields.
type fakeBackend struct {
	mu       sync.Mutex
	calls    []string
	statuses chan StatusUpdate
	logs     map[string]chan engine.LogLine
	events   map[string][]Event
	history  map[string][]engine.Revision
	addr     string
	resp     *Response
	fail     error // returned by actions when set
	// activity gets the events Rollback and Delete report, as the
	// session does.
	activity chan event.Event
	// serving gets the samples of how the workloads serve.
	serving chan ServingUpdate
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{
		statuses: make(chan StatusUpdate, 10),
		logs:     map[string]chan engine.LogLine{},
		events:   map[string][]Event{},
		history:  map[string][]engine.Revision{},
		addr:     "127.0.0.1:40123",
		activity: make(chan event.Event, 100),
		serving:  make(chan ServingUpdate, 100),
	}
}

func (f *fakeBackend) emit(ev event.Event) {
	ev.Time = now
	f.activity <- ev
}

func (f *fakeBackend) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeBackend) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeBackend) logChan(w string) chan engine.LogLine {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.logs[w] == nil {
		f.logs[w] = make(chan engine.LogLine, 100)
	}
	return f.logs[w]
}

func (f *fakeBackend) Statuses(context.Context) (<-chan StatusUpdate, error) {
	f.record("Statuses")
	return f.statuses, nil
}

func (f *fakeBackend) Logs(_ context.Context, w string) (<-chan engine.LogLine, error) {
	f.record("Logs(%s)", w)
	return f.logChan(w), nil
}

func (f *fakeBackend) Events(_ context.Context, w string) ([]Event, error) {
	f.record("Events(%s)", w)
	return f.events[w], nil
}

func (f *fakeBackend) History(_ context.Context, w string) ([]engine.Revision, error) {
	f.record("History(%s)", w)
	h, ok := f.history[w]
	if !ok {
		// What the session says of a workload with no release.
		return nil, fmt.Errorf("release shop-%s is not deployed in namespace shop; run `skiff deploy` first", w)
	}
	return h, nil
}

func (f *fakeBackend) Rollback(_ context.Context, w string, rev int) (int, error) {
	f.record("Rollback(%s, %d)", w, rev)
	f.emit(event.Event{Kind: event.RollbackStarted, Workload: w, Release: "shop-" + w, Revision: rev})
	if f.fail != nil {
		f.emit(event.Event{Kind: event.Failed, Phase: event.PhaseRollback, Workload: w, Release: "shop-" + w, Err: f.fail})
		return 0, f.fail
	}
	n := len(f.history[w]) + 1
	f.emit(event.Event{Kind: event.RolledBack, Workload: w, Release: "shop-" + w, Revision: n, Duration: 2 * time.Second})
	return n, nil
}

func (f *fakeBackend) Restart(_ context.Context, w string) error {
	f.record("Restart(%s)", w)
	return f.fail
}

func (f *fakeBackend) Delete(_ context.Context, w string) error {
	f.record("Delete(%s)", w)
	if f.fail != nil {
		f.emit(event.Event{Kind: event.Failed, Phase: event.PhaseDelete, Workload: w, Release: "shop-" + w, Err: f.fail})
		return f.fail
	}
	f.emit(event.Event{Kind: event.Deleted, Workload: w, Release: "shop-" + w, Object: "release", Duration: time.Second})
	f.emit(event.Event{Kind: event.Deleted, Workload: w, Object: "consumers"})
	f.emit(event.Event{Kind: event.Deleted, Workload: w, Object: "secret/" + w + "-values"})
	return nil
}

func (f *fakeBackend) Activity(context.Context) (<-chan event.Event, error) {
	f.record("Activity")
	return f.activity, nil
}

func (f *fakeBackend) Serving(context.Context) (<-chan ServingUpdate, error) {
	f.record("Serving")
	return f.serving, nil
}

func (f *fakeBackend) StartPortForward(_ context.Context, w string) (string, error) {
	f.record("StartPortForward(%s)", w)
	return f.addr, f.fail
}

func (f *fakeBackend) StopPortForward(_ context.Context, w string) error {
	f.record("StopPortForward(%s)", w)
	return f.fail
}

func (f *fakeBackend) Invoke(_ context.Context, w string) (*Response, error) {
	f.record("Invoke(%s)", w)
	if f.resp == nil {
		return nil, errors.New("no ready pod")
	}
	return f.resp, nil
}
