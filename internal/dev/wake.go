package dev

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/skiffdev/skiff/internal/event"
	"github.com/skiffdev/skiff/internal/hostrun"
	"github.com/skiffdev/skiff/internal/project"
)

// waker is a scale-to-zero workload on this machine, as KEDA's HTTP
// add-on is on the cluster: it listens on the workload's port, and a
// request that finds no process holds while the current version starts
// and gets ready, then goes to it; after idle without a request, the
// process is stopped. The relay's deliveries come through it too, so an
// event wakes it as well.
type waker struct {
	name string
	// port is the process's (a free loopback port, the same all session);
	// the workload's own is the waker's.
	port int
	idle time.Duration
	ln   net.Listener
	srv  *http.Server
	l    *Local
	ctx  context.Context

	mu    sync.Mutex
	start func(context.Context) (*hostrun.Process, error)
	// version counts replace's and setVersion's calls: a start of a
	// version since replaced is not the workload's.
	version int
	// switching is closed when the version being replaced (replace) has
	// its successor (setVersion); nil otherwise. Requests wait for it.
	switching chan struct{}
	proc      *hostrun.Process
	// stopping is closed when the process put to sleep has exited (and
	// let go of the port); nil when none is being stopped. A wake waits
	// for it.
	stopping chan struct{}
	starting chan struct{} // closed when the start in flight is done
	startErr error
	inFlight int
	timer    *time.Timer
	closed   bool
}

// sleeps reports whether w runs only while it has traffic (scale.min 0,
// unless --keep-warm).
func (l *Local) sleeps(w *project.Workload) bool { return SleepsLocally(w, l.KeepWarm) }

// SleepsLocally reports whether w, run by dev --local, runs only while it
// has traffic: scale.min 0, unless keepWarm (dev/localbus then wakes it
// for its deliveries instead of asking its readiness path).
func SleepsLocally(w *project.Workload, keepWarm bool) bool {
	return !keepWarm && w.Scale != nil && w.Scale.Min == 0
}

// wakerFor returns w's waker, listening on w's port from its first cycle
// on; fresh says it was made now.
func (l *Local) wakerFor(ctx context.Context, w *project.Workload) (wk *waker, fresh bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if wk := l.wakers[w.Name]; wk != nil {
		wk.setIdle(w.Scale.IdleDuration())
		return wk, false, nil
	}
	if err := hostrun.CheckPort(w.Port); err != nil {
		return nil, false, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(w.Port))
	if err != nil {
		if inUse := hostrun.CheckPort(w.Port); inUse != nil {
			return nil, false, inUse // taken meanwhile: say by whom
		}
		return nil, false, err
	}
	port, err := hostrun.FreePort() // the process listens there
	if err != nil {
		ln.Close()
		return nil, false, err
	}
	wk = &waker{name: w.Name, port: port, idle: w.Scale.IdleDuration(), ln: ln, l: l, ctx: ctx}
	target, _ := url.Parse("http://127.0.0.1:" + strconv.Itoa(port))
	proxy := httputil.NewSingleHostReverseProxy(target)
	wk.srv = &http.Server{Handler: wk.handler(proxy), ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = wk.srv.Serve(ln) }()
	if l.wakers == nil {
		l.wakers = map[string]*waker{}
	}
	l.wakers[w.Name] = wk
	return wk, true, nil
}

func (wk *waker) setIdle(d time.Duration) {
	wk.mu.Lock()
	wk.idle = d
	wk.mu.Unlock()
}

// replace says a cycle is about to stop the version that runs (or
// starts) for a new one: a start in flight is then superseded, not a
// failure, and requests wait for the new version (setVersion) instead of
// starting the old one again.
func (wk *waker) replace() {
	wk.mu.Lock()
	wk.proc = nil
	wk.version++
	if wk.switching == nil {
		wk.switching = make(chan struct{})
	}
	wk.mu.Unlock()
}

// setVersion makes start the way to start the workload from now on; the
// version running, if any, was stopped by the cycle.
func (wk *waker) setVersion(start func(context.Context) (*hostrun.Process, error)) {
	wk.mu.Lock()
	wk.start, wk.proc = start, nil
	wk.version++
	if wk.switching != nil {
		close(wk.switching)
		wk.switching = nil
	}
	wk.mu.Unlock()
}

func (wk *waker) handler(proxy http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := wk.enter(r.Context()); err != nil {
			http.Error(w, fmt.Sprintf("skiff dev: %s did not start: %v", wk.name, err), http.StatusServiceUnavailable)
			return
		}
		defer wk.leave()
		proxy.ServeHTTP(w, r)
	})
}

// enter counts a request in, starting the process when none runs (one
// start for every request that arrives meanwhile).
func (wk *waker) enter(ctx context.Context) error {
	for {
		wk.mu.Lock()
		if wk.closed {
			wk.mu.Unlock()
			return errors.New("skiff dev is stopping")
		}
		if switching := wk.switching; switching != nil {
			wk.mu.Unlock()
			select {
			case <-switching:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if wk.proc != nil && processRunning(wk.proc) {
			wk.inFlight++
			if wk.timer != nil {
				wk.timer.Stop()
			}
			wk.mu.Unlock()
			return nil
		}
		if wk.starting == nil {
			if wk.start == nil {
				wk.mu.Unlock()
				return errors.New("it has not been built yet")
			}
			wk.starting = make(chan struct{})
			go wk.wake(wk.start, wk.version, wk.starting)
		}
		starting := wk.starting
		wk.mu.Unlock()
		select {
		case <-starting:
		case <-ctx.Done():
			return ctx.Err()
		}
		wk.mu.Lock()
		err := wk.startErr
		wk.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// wake starts the process of version and says how long that took. When
// a new version came meanwhile (a cycle, which stopped this start's
// process if it had registered already), the start was neither a wake
// nor a failure: what it started is stopped, and the requests waiting
// start the new version.
func (wk *waker) wake(start func(context.Context) (*hostrun.Process, error), version int, done chan struct{}) {
	began := time.Now()
	wk.mu.Lock()
	stopping := wk.stopping
	wk.mu.Unlock()
	if stopping != nil {
		// The process that just went to sleep still holds the port.
		select {
		case <-stopping:
		case <-wk.ctx.Done():
		}
	}
	proc, err := start(wk.ctx)
	wk.mu.Lock()
	superseded := wk.version != version
	wk.starting, wk.startErr = nil, err
	switch {
	case superseded:
		wk.startErr = nil
	case err == nil:
		wk.proc = proc
		wk.armLocked()
	}
	wk.mu.Unlock()
	close(done)
	if superseded {
		if err == nil {
			wk.l.forget(wk.name, proc)
			_ = proc.Stop()
		}
		return
	}
	if err != nil {
		wk.l.Events.Emit(Event{Kind: Failed, Phase: event.PhaseCycle, Workload: wk.name, Error: "waking it: " + err.Error()})
		return
	}
	wk.l.Events.Emit(Event{Kind: event.Notice, Workload: wk.name, Duration: time.Since(began),
		Message: fmt.Sprintf("%s: woken by a request, ready in %s", wk.name, time.Since(began).Round(time.Millisecond))})
}

// leave counts a request out; the last one starts the idle time.
func (wk *waker) leave() {
	wk.mu.Lock()
	wk.inFlight--
	wk.armLocked()
	wk.mu.Unlock()
}

func (wk *waker) armLocked() {
	if wk.inFlight > 0 || wk.proc == nil {
		return
	}
	if wk.timer != nil {
		wk.timer.Stop()
	}
	proc := wk.proc
	wk.timer = time.AfterFunc(wk.idle, func() { wk.sleep(proc) })
}

// sleep stops proc after its idle time, unless a request came meanwhile.
func (wk *waker) sleep(proc *hostrun.Process) {
	wk.mu.Lock()
	if wk.proc != proc || wk.inFlight > 0 || wk.closed {
		wk.mu.Unlock()
		return
	}
	wk.proc = nil
	idle := wk.idle
	stopping := make(chan struct{})
	wk.stopping = stopping
	wk.mu.Unlock()
	wk.l.forget(wk.name, proc)
	_ = proc.Stop()
	wk.mu.Lock()
	if wk.stopping == stopping {
		wk.stopping = nil
	}
	wk.mu.Unlock()
	close(stopping)
	wk.l.Events.Emit(Event{Kind: event.Notice, Workload: wk.name, Message: fmt.Sprintf("%s: stopped after %s without a request (scale.min 0)", wk.name, idle)})
}

// close stops listening; the process is Local's to stop.
func (wk *waker) close() {
	wk.mu.Lock()
	wk.closed = true
	if wk.switching != nil {
		close(wk.switching)
		wk.switching = nil
	}
	if wk.timer != nil {
		wk.timer.Stop()
	}
	wk.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := wk.srv.Shutdown(ctx); err != nil {
		wk.srv.Close()
	}
}

func processRunning(p *hostrun.Process) bool {
	select {
	case <-p.Exited():
		return false
	default:
		return true
	}
}
