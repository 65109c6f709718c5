package hostrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/catalog"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/scaffold"
	"github.com/skiffdev/skiff/templates"
)

// freePort returns a port nothing listens on: one the kernel picked for a
// listener that is closed again.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// manifest is a project whose workload api depends on pay, listening on
// payPort.
func manifest(payPort int) []byte {
	return []byte(fmt.Sprintf(manifestFormat, payPort))
}

const manifestFormat = `apiVersion: skiff.dev/v1alpha1
name: shop
workloads:
  - name: api
    kind: function
    lang: python
    env: {GREETING: Ahoy}
    config: {LOG_LEVEL: debug}
    dependsOn: [pay]
  - name: pay
    kind: service
    lang: go
    port: %d
`

func TestEnv(t *testing.T) {
	p, err := project.Parse(manifest(9999))
	if err != nil {
		t.Fatal(err)
	}
	w, _ := p.Workload("api")
	env := Env(p, w, 8081)
	for _, want := range []string{"GREETING=Ahoy", "LOG_LEVEL=debug", "PAY_URL=http://127.0.0.1:9999", "PORT=8081"} {
		if !slices.Contains(env, want) {
			t.Errorf("env %v lacks %s", env, want)
		}
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestRunPython generates the Python function, runs it on the host, calls
// it, and stops it with SIGTERM: it must exit cleanly.
func TestRunPython(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed")
	}
	root := t.TempDir()
	ts, err := catalog.Discover(catalog.EmbeddedRepo, templates.Scaffold())
	if err != nil {
		t.Fatal(err)
	}
	tmpl := catalog.Filter(ts, catalog.Query{Lang: "python", Kind: "function", Name: "http"})[0]
	files, err := scaffold.Render(tmpl, scaffold.Data{Name: "api", Project: "shop", Port: 8080, Values: map[string]string{"greeting": "Hello"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := scaffold.Write(filepath.Join(root, "api"), files, false); err != nil {
		t.Fatal(err)
	}
	payPort := freePort(t)
	p, err := project.Parse(manifest(payPort))
	if err != nil {
		t.Fatal(err)
	}
	w, _ := p.Workload("api")
	port := freePort(t)
	for port == payPort {
		port = freePort(t)
	}
	plan, err := NewPlan(p, w, root, t.TempDir(), port)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Missing) != 1 || plan.Missing[0] != "pay" {
		t.Errorf("missing = %v, want pay (nothing listens on %d)", plan.Missing, payPort)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuf
	done := make(chan error, 1)
	go func() { done <- plan.Run(ctx, &out, &errOut, nil) }()
	// Call the function until it answers, for as long as it runs.
	client := &http.Client{Timeout: 5 * time.Second}
	var body string
	deadline := time.After(20 * time.Second)
	retry := time.NewTicker(100 * time.Millisecond)
	defer retry.Stop()
	for {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/?name=Ada", port))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the function exited before answering: %v\nstderr:\n%s", err, errOut.String())
		case <-deadline:
			t.Fatalf("the function did not answer on port %d within 20s: %v\nstderr:\n%s", port, err, errOut.String())
		case <-retry.C:
		}
	}
	if !strings.Contains(body, "Ahoy, Ada!") {
		t.Errorf("answer %q; want the manifest's GREETING; stderr:\n%s", body, errOut.String())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("stopping: %v\nstderr:\n%s", err, errOut.String())
		}
	case <-time.After(StopTimeout + 5*time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if !strings.Contains(out.String()+errOut.String(), `"level"`) {
		t.Errorf("no JSON log lines seen:\n%s\n%s", out.String(), errOut.String())
	}
}

func TestMissingFolder(t *testing.T) {
	p, err := project.Parse(manifest(9999))
	if err != nil {
		t.Fatal(err)
	}
	w, _ := p.Workload("pay")
	if _, err := NewPlan(p, w, t.TempDir(), t.TempDir(), 1); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("err = %v", err)
	}
}

// firstWrite closes written at its first write.
type firstWrite struct {
	once    sync.Once
	written chan struct{}
}

func (w *firstWrite) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.written) })
	return len(p), nil
}

// A program without a SIGTERM handler dies of it: that is a clean stop.
func TestStopProgramWithoutHandler(t *testing.T) {
	// The shell says it runs, then becomes sleep, which has no handler.
	pl := &Plan{Command: []string{"sh", "-c", "echo running; exec sleep 100"}, Dir: t.TempDir()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	running := &firstWrite{written: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- pl.Run(ctx, running, io.Discard, nil) }()
	select {
	case <-running.written:
	case err := <-done:
		t.Fatalf("Run returned before the program ran: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for the program to start")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want a clean stop", err)
		}
	case <-time.After(StopTimeout + 5*time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// A port another program holds is an error before the workload starts,
// naming that program (on Linux, where /proc tells).
func TestStartOnBusyPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	pl := &Plan{Dir: t.TempDir(), Port: port, Command: []string{"true"}}
	_, err = pl.Start(io.Discard, io.Discard)
	var busy *PortInUseError
	if !errors.As(err, &busy) || busy.Port != port {
		t.Fatalf("Start on a busy port: %v, want a PortInUseError", err)
	}
	if runtime.GOOS == "linux" && !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("error %q does not name this process (pid %d)", err, os.Getpid())
	}
}

// TestBuildCancelStopsItsChildren: a preparation command cancelled (skiff
// dev stopping) is killed with the programs it started (go build's compile
// and link), none of which may go on alone.
func TestBuildCancelStopsItsChildren(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("process groups")
	}
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	pl := &Plan{Dir: dir, Prepare: [][]string{{"sh", "-c", `sleep 300 >/dev/null 2>&1 & echo $! > child.pid.tmp && mv child.pid.tmp child.pid; wait`}}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- pl.Build(ctx, io.Discard, nil) }()

	var pid int
	for deadline := time.Now().Add(10 * time.Second); pid == 0; {
		if b, err := os.ReadFile(pidFile); err == nil {
			fmt.Sscan(string(b), &pid)
		} else if time.Now().After(deadline) {
			t.Fatal("the preparation command never started its child")
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Build after cancel: %v; want context.Canceled", err)
	}
	// The kill is sent to the group before Build returns; the child's
	// end is the kernel's, a moment later.
	for deadline := time.Now().Add(10 * time.Second); ; {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return // gone, or a zombie waiting for its reaper
		}
		if time.Now().After(deadline) {
			t.Fatalf("the preparation command's child %d still runs after Build was cancelled", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
