package devsync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/skiffdev/skiff/internal/fsutil"
)

// Supervisor runs a workload's process in its container and, on PUT
// /sync, applies a patch to its app folder, restarts the process on it and
// waits until it is ready; when the new version exits or does not get
// ready, the old files and the old process come back and the answer says
// why. The process's output goes to the supervisor's. When the process
// ends on its own, Run returns its exit status, as if there were no
// supervisor.
type Supervisor struct {
	// Command is the process: the image's entrypoint and arguments.
	Command []string
	// Dir is the app folder patches go to; Backup an empty folder on the
	// same file system for the replaced files.
	Dir, Backup string
	// Ready is the process's readiness URL.
	Ready string
	// Version names what Dir holds (the image's reference); a patch from
	// another version is refused (409), and a kept one moves it on.
	Version string
	// ReadyTimeout bounds the wait for a new version (0: a minute).
	ReadyTimeout time.Duration
	// Grace is how long a process may take to stop after SIGTERM before
	// it is killed (0: 5 s).
	Grace time.Duration
	// State, when set, is a file that outlives the container (on the
	// pod's volume): the version Dir holds, or that a sync was cut short
	// there. A restarted container reads it, so its answers name what
	// Dir holds rather than the image's version.
	State  string
	Stdout io.Writer
	Stderr io.Writer

	syncMu  sync.Mutex // one sync at a time
	once    sync.Once
	started chan struct{} // closed once Run started the first process
	mu      sync.Mutex
	cur     *child
	syncing bool // exits during a sync are the sync's to handle
	exited  chan *child
	tail    tail
}

type child struct {
	cmd      *exec.Cmd
	done     chan struct{}
	err      error
	stopping bool // set under Supervisor.mu before a deliberate stop
}

// ExitError is the status of a process that ended on its own.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("the process exited with status %d", e.Code) }

// Run starts the process and supervises it until ctx ends (it stops the
// process then, SIGTERM first) or the process ends on its own.
func (s *Supervisor) Run(ctx context.Context) error {
	if len(s.Command) == 0 {
		return errors.New("no command to supervise")
	}
	if s.State != "" {
		switch data, err := os.ReadFile(s.State); {
		case err == nil && string(data) == stateDirty:
			// A sync was cut short (the container stopped in the middle):
			// Dir holds no version a patch can start from.
			s.Version = ""
		case err == nil:
			s.Version = string(data)
		case !errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("reading %s: %w", s.State, err)
		}
	}
	s.exited = make(chan *child, 4)
	s.mu.Lock()
	c, err := s.start()
	s.cur = c
	s.mu.Unlock()
	if err != nil {
		return err
	}
	close(s.startedCh())
	for {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			c := s.cur
			s.mu.Unlock()
			s.stop(c)
			return exitStatus(c.err)
		case c := <-s.exited:
			s.mu.Lock()
			mine := c == s.cur && !c.stopping && !s.syncing
			s.mu.Unlock()
			if mine {
				return exitStatus(c.err)
			}
		}
	}
}

func exitStatus(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			if ws.Signal() == syscall.SIGTERM {
				return nil
			}
			return &ExitError{Code: 128 + int(ws.Signal())} // as a shell says it
		}
		return &ExitError{Code: ee.ExitCode()}
	}
	return err
}

// stateDirty is State's content while a sync changes Dir.
const stateDirty = "!syncing"

// saveState records what Dir holds, replacing State whole.
func (s *Supervisor) saveState(v string) error {
	if s.State == "" {
		return nil
	}
	return fsutil.WriteFileAtomic(s.State, []byte(v), 0o644)
}

func (s *Supervisor) startedCh() chan struct{} {
	s.once.Do(func() { s.started = make(chan struct{}) })
	return s.started
}

// start starts the process; called with mu held.
func (s *Supervisor) start() (*child, error) {
	cmd := exec.Command(s.Command[0], s.Command[1:]...)
	cmd.Stdout = io.MultiWriter(orDiscard(s.Stdout), &s.tail)
	cmd.Stderr = io.MultiWriter(orDiscard(s.Stderr), &s.tail)
	ownGroup(cmd)
	// A child of the workload that outlives it keeps the output pipes
	// open: the wait ends this long after the workload itself.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", strings.Join(s.Command, " "), err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
		s.exited <- c
	}()
	return c, nil
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// stop ends c: SIGTERM, then SIGKILL after the grace period.
func (s *Supervisor) stop(c *child) {
	s.mu.Lock()
	c.stopping = true
	s.mu.Unlock()
	_ = signalGroup(c.cmd, syscall.SIGTERM)
	grace := s.Grace
	if grace <= 0 {
		grace = 5 * time.Second
	}
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = signalGroup(c.cmd, syscall.SIGKILL)
		<-c.done
	}
	// What the workload started and left behind goes with it.
	_ = signalGroup(c.cmd, syscall.SIGKILL)
}

// Result is the answer to a sync.
type Result struct {
	// Seconds is how long the sync took, from the patch's arrival to the
	// new version's readiness.
	Seconds float64 `json:"seconds"`
	// Error says why the new version was not kept ("" when it was).
	Error string `json:"error,omitempty"`
	// ExitCode is the new version's exit status, when it exited.
	ExitCode *int `json:"exitCode,omitempty"`
	// Output is the last lines it wrote.
	Output string `json:"output,omitempty"`
	// Version is what the pod runs after the sync.
	Version string `json:"version"`
}

// ServeHTTP answers PUT /sync (the body is a patch) and GET /healthz.
func (s *Supervisor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/healthz":
		w.WriteHeader(http.StatusOK)
		return
	case r.URL.Path != "/sync":
		http.NotFound(w, r)
		return
	case r.Method != http.MethodPut:
		w.Header().Set("Allow", http.MethodPut)
		http.Error(w, "PUT a patch", http.StatusMethodNotAllowed)
		return
	}
	res, code := s.Sync(r.Context(), r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(res)
}

// Sync applies the patch read from body, restarts the process on it and
// waits until it is ready, or puts the old version back. The status is
// 200 (kept), 422 (the new version did not get ready; the old one runs),
// 409 (the patch is from another version; nothing changed), 400 (not a
// patch; nothing changed) or 503 (the first process has not started).
func (s *Supervisor) Sync(ctx context.Context, body io.Reader) (Result, int) {
	select {
	case <-s.startedCh():
	case <-ctx.Done():
		return Result{Error: "the process has not started yet"}, http.StatusServiceUnavailable
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	s.syncing = true
	s.mu.Unlock()
	defer func() {
		// A process that ended during the sync is Run's again.
		s.mu.Lock()
		defer s.mu.Unlock()
		s.syncing = false
		select {
		case <-s.cur.done:
			s.cur.stopping = false
			s.exited <- s.cur
		default:
		}
	}()
	start := time.Now()
	var stale bool
	applied, err := apply(s.Dir, s.Backup, body, func(m manifest) error {
		if s.Version == "" || m.From != s.Version {
			stale = true
			return fmt.Errorf("the patch is from version %q; this pod runs %q", m.From, s.Version)
		}
		// From here on Dir changes: a container that stops before the
		// end must not claim a version.
		return s.saveState(stateDirty)
	})
	if err != nil {
		code := http.StatusBadRequest
		if stale {
			code = http.StatusConflict
		}
		return Result{Error: err.Error(), Version: s.Version, Seconds: time.Since(start).Seconds()}, code
	}
	s.mu.Lock()
	old := s.cur
	s.mu.Unlock()
	s.stop(old)
	s.tail.reset()
	res, ok := s.restart(ctx)
	if ok {
		res.Seconds = time.Since(start).Seconds()
		s.Version = applied.to
		res.Version = s.Version
		if err := applied.Commit(); err != nil {
			res.Error = "the new version runs, but its old files stay in " + s.Backup + ": " + err.Error()
		}
		if err := s.saveState(s.Version); err != nil {
			res.Error = "the new version runs, but " + err.Error()
		}
		return res, http.StatusOK
	}
	// Put the old version back.
	s.mu.Lock()
	cur := s.cur
	s.mu.Unlock()
	s.stop(cur)
	if err := applied.Undo(); err != nil {
		res.Error += "; putting the old files back: " + err.Error()
		s.Version = "" // Dir holds no known version: only a new pod helps
	} else if err := s.saveState(s.Version); err != nil {
		res.Error += "; " + err.Error()
	}
	if _, ok := s.restart(context.WithoutCancel(ctx)); !ok {
		res.Error += "; the old version did not get ready again either"
	}
	res.Seconds = time.Since(start).Seconds()
	res.Version = s.Version
	return res, http.StatusUnprocessableEntity
}

// restart starts the process and waits until it is ready.
func (s *Supervisor) restart(ctx context.Context) (Result, bool) {
	s.mu.Lock()
	c, err := s.start()
	if err == nil {
		s.cur = c
	}
	s.mu.Unlock()
	if err != nil {
		return Result{Error: err.Error()}, false
	}
	timeout := s.ReadyTimeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if ready(ctx, client, s.Ready) {
			return Result{}, true
		}
		select {
		case <-c.done:
			res := Result{Error: "the new version exited before it was ready", Output: s.tail.String()}
			var ee *exec.ExitError
			if errors.As(c.err, &ee) {
				code := ee.ExitCode()
				res.ExitCode = &code
				res.Error = fmt.Sprintf("the new version exited with status %d before it was ready", code)
			}
			return res, false
		case <-ctx.Done():
			return Result{Error: fmt.Sprintf("the new version was not ready at %s within %s", s.Ready, timeout), Output: s.tail.String()}, false
		case <-tick.C:
		}
	}
}

func ready(ctx context.Context, client *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 400
}

// tail keeps the last lines a process wrote.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailBytes = 4 << 10

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailBytes {
		t.buf = t.buf[len(t.buf)-tailBytes:]
		if i := bytes.IndexByte(t.buf, '\n'); i >= 0 {
			t.buf = t.buf[i+1:]
		}
	}
	return len(p), nil
}

func (t *tail) reset() {
	t.mu.Lock()
	t.buf = nil
	t.mu.Unlock()
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// Copy copies the folder from into to (which exists), keeping links and
// executable bits: what the pod's init step does to make the image's app
// folder writable for syncs. What to held before goes first: the step
// runs again on the same volume when the pod's sandbox is made again.
func Copy(from, to string) error {
	entries, err := os.ReadDir(to)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(to, e.Name())); err != nil {
			return err
		}
	}
	return os.CopyFS(to, os.DirFS(from))
}

// Push sends a patch to the supervisor at base ("http://127.0.0.1:PORT")
// and returns its answer and status (see Sync).
func Push(ctx context.Context, client *http.Client, base string, patch []byte) (Result, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+"/sync", bytes.NewReader(patch))
	if err != nil {
		return Result{}, 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return Result{}, 0, err
	}
	defer resp.Body.Close()
	var res Result
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return Result{}, resp.StatusCode, fmt.Errorf("reading the pod's answer (%s): %w", resp.Status, err)
	}
	return res, resp.StatusCode, nil
}
