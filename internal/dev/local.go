package dev

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/event"
	"github.com/skiffdev/skiff/internal/hostrun"
	"github.com/skiffdev/skiff/internal/project"
)

// DefaultReadyTimeout bounds how long a new version has to answer its
// readiness path.
const DefaultReadyTimeout = 30 * time.Second

// LocalDir is the folder of a project (beside skiff.yaml) where `skiff dev
// --local` keeps what it makes: its bus's store and state (package bus's
// LocalDir, the same folder) and liveConfig workloads' config.
const LocalDir = ".skiff"

// HasEvents reports whether p uses the event bus: an events section, or a
// workload with triggers.
func HasEvents(p *project.Project) bool {
	return p.Events != nil || slices.ContainsFunc(p.Workloads, func(w project.Workload) bool { return len(w.Triggers) > 0 })
}

// readyPoll is how often the readiness path is asked while a new version
// starts: every 5 ms for its first second (a compiled server listens within
// a few milliseconds, and each tick missed is the developer's wait), then
// every 25 ms.
const (
	readyPollFast = 5 * time.Millisecond
	readyPollSlow = 25 * time.Millisecond
	readyFastFor  = time.Second
)

// Local runs workloads on this machine (as `skiff run` does) and replaces
// a workload's process with a new one when its cycle builds.
type Local struct {
	// Project is the project; SetProject replaces it (skiff.yaml changed).
	Project *project.Project
	Root    string
	// Logs receives every line the workloads print, prefixed by the
	// workload's name (one writer shared by all: it must serialise writes).
	Logs io.Writer
	// LogEvents, when set, receives each line as a Log event instead (-o
	// json: one schema for every line).
	LogEvents *Emitter
	// Events receives the loop's events.
	Events *Emitter
	// BinDir holds the programs built (one folder per build).
	BinDir string
	// ReadyTimeout bounds the wait for readiness (0: DefaultReadyTimeout).
	ReadyTimeout time.Duration
	// Bus, when the project uses events, is the bus in this process:
	// every workload gets its K_SINK, and its relays follow skiff.yaml.
	// Package dev/localbus is the real one (cmdutil.Factory.DevLocalBus).
	Bus engine.DevBus
	// KeepWarm runs scale.min 0 workloads all the time; otherwise each
	// starts on its first request or event and stops after scale.idle.
	KeepWarm bool

	mu     sync.Mutex
	logMu  sync.Mutex
	procs  map[string]*hostrun.Process
	wakers map[string]*waker
	bins   map[string]string // the folder of the program each runs
	builds int
	client *http.Client
}

// logs is Logs with one line written at a time.
func (l *Local) logs() io.Writer {
	w := l.Logs
	if w == nil {
		w = os.Stderr
	}
	return &lockedWriter{mu: &l.logMu, w: w}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (lw *lockedWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.w.Write(p)
}

// SetProject replaces the project (after skiff.yaml changed), and the
// bus's consumers and relays follow its triggers.
func (l *Local) SetProject(p *project.Project) {
	l.mu.Lock()
	l.Project = p
	l.mu.Unlock()
	if l.Bus != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := l.Bus.SetProject(ctx, p); err != nil {
			l.Events.Emit(Event{Kind: ManifestError, Error: err.Error()})
		}
	}
}

// configDir is where a liveConfig workload's config is kept for its
// plumbing to read (SKIFF_CONFIG_FILES).
func (l *Local) configDir(workload string) string {
	return filepath.Join(l.Root, LocalDir, "config", workload)
}

// Reconfigure takes the new project (as SetProject does) and returns the
// workloads whose edit needs a cycle: every one, but a liveConfig
// workload whose edit is its config alone, which gets the new config in
// its folder and keeps running (its plumbing reads it within 2 s).
func (l *Local) Reconfigure(np *project.Project) []string {
	l.mu.Lock()
	old := l.Project
	l.mu.Unlock()
	l.SetProject(np)
	var cycle []string
	for _, ow := range old.Workloads {
		if _, ok := np.Workload(ow.Name); !ok {
			cycle = append(cycle, ow.Name) // its cycle says it is gone
		}
	}
	for i := range np.Workloads {
		w := &np.Workloads[i]
		ow, ok := old.Workload(w.Name)
		if !ok || !w.LiveConfig || !sameButConfig(old, ow, np, w) {
			cycle = append(cycle, w.Name)
			continue
		}
		if maps.Equal(ow.Config, w.Config) {
			continue
		}
		if err := hostrun.WriteConfig(l.configDir(w.Name), w.Config); err != nil {
			l.Events.Emit(Event{Kind: Failed, Phase: event.PhaseCycle, Workload: w.Name, Error: "writing its live config: " + err.Error()})
			continue
		}
		l.Events.Emit(Event{Kind: event.Notice, Workload: w.Name, Message: w.Name + ": new config written for its live config (no restart)"})
	}
	return cycle
}

// sameButConfig reports whether workload a of project pa and b of pb run
// the same way, their config aside: the same settings and environment.
func sameButConfig(pa *project.Project, a *project.Workload, pb *project.Project, b *project.Workload) bool {
	ac, bc := *a, *b
	ac.Config, bc.Config = nil, nil
	return reflect.DeepEqual(ac, bc) && slices.Equal(hostrun.Env(pa, &ac, ac.Port), hostrun.Env(pb, &bc, bc.Port)) &&
		pa.Name == pb.Name && reflect.DeepEqual(pa.Events, pb.Events)
}

// URL is where a workload answers on this machine.
func URL(w *project.Workload) string { return "http://127.0.0.1:" + strconv.Itoa(w.Port) }

// URL is where the named workload answers.
func (l *Local) URL(name string) string {
	l.mu.Lock()
	w, ok := l.Project.Workload(name)
	l.mu.Unlock()
	if !ok {
		return ""
	}
	return URL(w)
}

// Cycle builds a workload; when that works, it stops the process that ran
// and starts the new one, and waits until it answers its readiness path.
// When the build fails, the process that ran keeps serving.
func (l *Local) Cycle(ctx context.Context, name string) {
	start := time.Now()
	l.mu.Lock()
	p := l.Project
	l.builds++
	bin := filepath.Join(l.BinDir, strconv.Itoa(l.builds))
	l.mu.Unlock()
	w, ok := p.Workload(name)
	if !ok {
		l.Events.Emit(Event{Kind: Failed, Phase: event.PhaseCycle, Workload: name, Error: name + " is no longer in skiff.yaml"})
		return
	}
	l.Events.Emit(Event{Kind: CycleStarted, Workload: name})
	port := w.Port
	var wk *waker
	fresh := false
	if l.sleeps(w) {
		var err error
		if wk, fresh, err = l.wakerFor(ctx, w); err != nil {
			l.Events.Emit(Event{Kind: Failed, Phase: event.PhaseCycle, Workload: name, Error: err.Error(), Duration: time.Since(start)})
			return
		}
		port = wk.port // the process's; the workload's port is the waker's
	}
	plan, err := hostrun.NewPlan(p, w, l.Root, bin, port)
	if err != nil {
		l.Events.Emit(Event{Kind: Failed, Phase: event.PhaseCycle, Workload: name, Error: err.Error(), Duration: time.Since(start)})
		return
	}
	plan.ForDev(w.Lang)
	if l.Bus != nil {
		plan.Env = append(plan.Env, l.Bus.Env()...)
	}
	if w.LiveConfig {
		dir := l.configDir(w.Name)
		if err := hostrun.WriteConfig(dir, w.Config); err != nil {
			l.Events.Emit(Event{Kind: Failed, Phase: event.PhaseCycle, Workload: name, Error: "writing its live config: " + err.Error(), Duration: time.Since(start)})
			return
		}
		plan.Env = append(plan.Env, hostrun.ConfigEnv(w, dir)...)
	}
	if err := plan.CheckSyntax(w.Lang); err != nil {
		l.Events.Emit(Event{Kind: Failed, Phase: event.PhaseCycle, Workload: name, Error: err.Error(), Duration: time.Since(start)})
		return
	}
	var out bytes.Buffer
	if err := plan.Build(ctx, &out, nil); err != nil {
		if ctx.Err() != nil {
			return
		}
		l.Events.Emit(Event{Kind: Failed, Phase: event.PhaseCycle, Workload: name, Error: err.Error() + "; the previous version keeps running", Output: out.String(), Duration: time.Since(start)})
		return
	}
	l.mu.Lock()
	old := l.procs[name]
	delete(l.procs, name) // replaced: its exit is not news
	oldBin := l.bins[name]
	if l.bins == nil {
		l.bins = map[string]string{}
	}
	l.bins[name] = bin
	l.mu.Unlock()
	if wk != nil {
		wk.replace() // a wake of the old version in flight is not news
	}
	if old != nil {
		_ = old.Stop()
	}
	if oldBin != "" {
		_ = os.RemoveAll(oldBin) // the program that ran
	}
	if wk != nil {
		// Scaled to zero: the new version starts on the next request or
		// event (the waker holds it meanwhile).
		wk.setVersion(func(ctx context.Context) (*hostrun.Process, error) { return l.launch(ctx, w, plan, port) })
		l.Events.Emit(Event{Kind: Ready, Workload: name, URL: URL(w), Duration: time.Since(start)})
		if fresh {
			l.Events.Emit(Event{Kind: event.Notice, Workload: name, Message: fmt.Sprintf("%s: scale.min is 0: it starts on its first request or event, and stops after %s without one (--keep-warm: always on)", name, w.Scale.IdleDuration())})
		}
		return
	}
	if _, err := l.launch(ctx, w, plan, port); err != nil {
		if ctx.Err() == nil {
			l.Events.Emit(Event{Kind: Failed, Phase: event.PhaseCycle, Workload: name, Error: err.Error(), Duration: time.Since(start)})
		}
		return
	}
	l.Events.Emit(Event{Kind: Ready, Workload: name, URL: URL(w), Duration: time.Since(start)})
}

// launch starts the built plan of w listening on port and waits until it
// answers its readiness path. Its exit, unless it was replaced or
// stopped, is an Exited event.
func (l *Local) launch(ctx context.Context, w *project.Workload, plan *hostrun.Plan, port int) (*hostrun.Process, error) {
	name := w.Name
	logs, closeLogs := Prefixed(l.logs(), name, l.LogEvents)
	proc, err := plan.Start(logs, logs)
	if err != nil {
		closeLogs()
		return nil, err
	}
	l.mu.Lock()
	if l.procs == nil {
		l.procs = map[string]*hostrun.Process{}
	}
	l.procs[name] = proc
	if l.client == nil {
		l.client = &http.Client{Timeout: time.Second}
	}
	l.mu.Unlock()
	if err := l.waitReady(ctx, w, "http://127.0.0.1:"+strconv.Itoa(port), proc); err != nil {
		go func() { <-proc.Exited(); closeLogs() }()
		return nil, err
	}
	go func() {
		<-proc.Exited()
		closeLogs()
		l.mu.Lock()
		current := l.procs[name] == proc
		l.mu.Unlock()
		if current && ctx.Err() == nil {
			msg := "exited"
			if err := proc.Err(); err != nil {
				msg = err.Error()
			}
			l.Events.Emit(Event{Kind: Exited, Workload: name, Error: msg + "; the next change starts it again"})
		}
	}()
	return proc, nil
}

// forget takes proc out of the running ones (its exit is then not news):
// the waker stops an idle workload.
func (l *Local) forget(name string, proc *hostrun.Process) {
	l.mu.Lock()
	if l.procs[name] == proc {
		delete(l.procs, name)
	}
	l.mu.Unlock()
}

// waitReady asks the workload's readiness path until it answers 2xx, the
// process exits, or ReadyTimeout passes.
func (l *Local) waitReady(ctx context.Context, w *project.Workload, base string, proc *hostrun.Process) error {
	timeout := l.ReadyTimeout
	if timeout <= 0 {
		timeout = DefaultReadyTimeout
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	started := time.Now()
	tick := time.NewTicker(readyPollFast)
	defer tick.Stop()
	slow := false
	u := base + w.Ready
	l.mu.Lock()
	client := l.client
	l.mu.Unlock()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-proc.Exited():
			if err := proc.Err(); err != nil {
				return fmt.Errorf("%w before it was ready", err)
			}
			return fmt.Errorf("%s exited before it was ready", w.Name)
		case <-deadline.C:
			return fmt.Errorf("%s did not answer %s within %s", w.Name, u, timeout)
		case <-tick.C:
			if !slow && time.Since(started) > readyFastFor {
				tick.Reset(readyPollSlow)
				slow = true
			}
		}
	}
}

// Stop stops every workload's process (after the bus's deliveries, so
// that no event is sent to a process on its way out).
func (l *Local) Stop() {
	if l.Bus != nil {
		l.Bus.StopDelivery()
	}
	l.mu.Lock()
	wakers := l.wakers
	l.wakers = nil
	l.mu.Unlock()
	for _, wk := range wakers {
		wk.close()
	}
	l.mu.Lock()
	procs := l.procs
	l.procs = nil
	l.mu.Unlock()
	var wg sync.WaitGroup
	for name, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = p.Stop()
			l.Events.Emit(Event{Kind: Stopped, Workload: name})
		}()
	}
	wg.Wait()
}

// Prefixed writes each line to w as "name | line" (asEvents, when set,
// receives each as a Log event of name instead); close it once the
// process has exited.
func Prefixed(w io.Writer, name string, asEvents *Emitter) (io.Writer, func()) {
	pr, pw := io.Pipe()
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if asEvents != nil {
				asEvents.Emit(Event{Kind: Log, Workload: name, Message: sc.Text()})
				continue
			}
			_, _ = w.Write([]byte(name + " | " + sc.Text() + "\n")) // one write a line
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	return pw, func() { _ = pw.Close() }
}
