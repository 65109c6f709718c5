package testscripts

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/porttest"
)

// devEvent is one JSON line of `skiff dev -o json`: an event of the one
// schema (docs/events-json.md).
type devEvent struct {
	V        int    `json:"v"`
	Event    string `json:"event"`
	Workload string `json:"workload"`
	Phase    string `json:"phase"`
	Status   string `json:"status"`
	Error    string `json:"error"`
	Detail   struct {
		URL     string `json:"url"`
		Output  string `json:"output"`
		Message string `json:"message"`
	} `json:"detail"`
}

// schemaLines checks that every line of out is an event of the schema,
// and returns them.
func schemaLines(t *testing.T, what, out string) []devEvent {
	t.Helper()
	var evs []devEvent
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev devEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.V != 1 || ev.Event == "" || ev.Phase == "" || ev.Status == "" {
			t.Errorf("%s: %q is not an event of the schema (%v)", what, line, err)
			continue
		}
		evs = append(evs, ev)
	}
	return evs
}

// TestDevLocal is the story of `skiff dev --local` for each language: the
// function answers; an edit is served after the next "ready"; a syntax or
// compile error is reported in full while the previous version keeps
// answering; the fix is served; an edit of one workload rebuilds only that
// one; Ctrl-C stops everything with exit code 0.
func TestDevLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	bin := buildSkiff(t)
	for _, tc := range []struct {
		lang, main, broken string
		tool               string
	}{
		{"go", "main.go", "handler.go", "go"},
		{"node", "index.js", "handler.js", "node"},
		{"python", "main.py", "handler.py", "python3"},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			if _, err := exec.LookPath(tc.tool); err != nil {
				t.Skipf("%s is not installed", tc.tool)
			}
			testDevLocal(t, bin, tc.lang, tc.main, tc.broken)
		})
	}
}

func testDevLocal(t *testing.T, bin, lang, mainFile, brokenFile string) {
	work := t.TempDir()
	env := append(os.Environ(), "SKIFF_CONFIG_DIR="+filepath.Join(work, ".skiff"), "NO_COLOR=1")
	proj := filepath.Join(work, "shop")
	for _, args := range [][]string{
		{"init", proj, "--kind", "function", "--lang", lang, "--name", "hello", "--non-interactive"},
		{"add", "other", "--kind", "function", "--lang", lang, "--non-interactive"},
	} {
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env = proj, env
		if args[0] == "init" {
			cmd.Dir = work
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("skiff %s: %v\n%s", args[0], err, out)
		}
	}
	ports := porttest.Ports(t, 2)
	helloPort, otherPort := ports[0], ports[1]
	setPorts(t, filepath.Join(proj, "skiff.yaml"), map[string]int{"hello": helloPort, "other": otherPort})

	dev := exec.Command(bin, "dev", "--local", "-o", "json")
	dev.Dir, dev.Env = proj, env
	stderr, err := dev.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuilder{b: &strings.Builder{}}
	dev.Stdout = logs
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	defer dev.Process.Kill()
	events := make(chan devEvent, 64)
	errLines := &syncBuilder{b: &strings.Builder{}}
	go func() {
		defer close(events)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			errLines.Write(append(sc.Bytes(), '\n'))
			var ev devEvent
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				events <- ev
			}
		}
	}()
	// await returns the first event not awaited yet of kind for workload
	// (events of other workloads stay for their own await), failing on a
	// failure of it unless that is what is awaited.
	var seen, pending []devEvent
	await := func(kind, workload string) devEvent {
		t.Helper()
		deadline := time.After(90 * time.Second)
		for {
			idx := -1
			for i, ev := range pending {
				if ev.Workload == workload {
					idx = i
					break
				}
			}
			if idx >= 0 {
				ev := pending[idx]
				pending = append(pending[:idx:idx], pending[idx+1:]...)
				if ev.Event == kind {
					return ev
				}
				if ev.Event == "failed" {
					t.Fatalf("%s failed while waiting for %s: %s\n%s", workload, kind, ev.Error, ev.Detail.Output)
				}
				continue
			}
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatalf("skiff dev ended while waiting for %s of %s; events %+v", kind, workload, seen)
				}
				seen = append(seen, ev)
				pending = append(pending, ev)
			case <-deadline:
				t.Fatalf("no %s event of %s within 90s; events %+v", kind, workload, seen)
			}
		}
	}
	hello := fmt.Sprintf("http://127.0.0.1:%d/?name=Ada", helloPort)
	await("ready", "hello")
	await("ready", "other")
	if got := get(t, hello); !strings.Contains(got, "Hello, Ada!") {
		t.Fatalf("first answer %q", got)
	}

	// An edit of hello: served after its next ready; other is not rebuilt.
	src := filepath.Join(proj, "hello", mainFile)
	replaceIn(t, src, `"Hello"`, `"Howdy"`)
	await("cycle-started", "hello")
	await("ready", "hello")
	if got := get(t, hello); !strings.Contains(got, "Howdy, Ada!") {
		t.Fatalf("after the edit %q", got)
	}
	for _, ev := range pending {
		if ev.Workload == "other" && ev.Event == "cycle-started" {
			t.Errorf("an edit of hello cycled other too")
		}
	}

	// A syntax error: reported with the tool's output; the old version answers.
	broken := filepath.Join(proj, "hello", brokenFile)
	good, err := os.ReadFile(broken)
	if err != nil {
		t.Fatal(err)
	}
	save(t, broken, append(append([]byte{}, good...), []byte("\n)))this is not code(((\n")...))
	ev := await("failed", "hello")
	if !strings.Contains(ev.Error, "the previous version keeps running") || ev.Detail.Output == "" {
		t.Errorf("failure event %+v; want the error and the tool's output", ev)
	}
	if got := get(t, hello); !strings.Contains(got, "Howdy, Ada!") {
		t.Fatalf("during the compile error %q; want the previous version", got)
	}
	// The fix is served.
	save(t, broken, good)
	replaceIn(t, src, `"Howdy"`, `"Salut"`)
	// Two saves: one cycle, or two when they fall in two bursts.
	for {
		await("ready", "hello")
		if got := get(t, hello); strings.Contains(got, "Salut, Ada!") {
			break
		} else if !strings.Contains(got, "Howdy, Ada!") {
			t.Fatalf("after the fix %q", got)
		}
	}
	// -o json: stdout and stderr hold events of the one schema only, the
	// workloads' lines as log events.
	helloLogs := 0
	for _, ev := range schemaLines(t, "stdout", logs.String()) {
		if ev.Event == "log" && ev.Workload == "hello" && ev.Detail.Message != "" {
			helloLogs++
		}
	}
	if helloLogs == 0 {
		t.Errorf("stdout has no log event of hello:\n%s", logs.String())
	}
	schemaLines(t, "stderr", errLines.String())

	// Ctrl-C: everything stops, exit code 0.
	if err := dev.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		for range events { // drain until stderr closes
		}
		done <- dev.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("skiff dev after SIGINT: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("skiff dev did not stop within 30s of SIGINT")
	}
	if _, err := http.Get(hello); err == nil {
		t.Error("hello still answers after skiff dev stopped")
	}
}

// get returns the body of a GET, or "" when it fails.
func get(t *testing.T, u string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func replaceIn(t *testing.T, file, old, new string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s has no %s", file, old)
	}
	save(t, file, []byte(strings.ReplaceAll(string(data), old, new)))
}

// save writes a file as editors do: a temporary file (outside the watched
// folders) renamed over it, so no cycle ever sees half of it.
func save(t *testing.T, file string, data []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(file))), ".save.tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
}

// setPorts gives workloads their ports in skiff.yaml.
func setPorts(t *testing.T, manifest string, ports map[string]int) {
	t.Helper()
	data, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "    port: ") {
			continue // add wrote one: replaced
		}
		out = append(out, line)
		for name, port := range ports {
			if strings.TrimSpace(line) == "- name: "+name {
				out = append(out, fmt.Sprintf("    port: %d", port))
			}
		}
	}
	if err := os.WriteFile(manifest, []byte(strings.Join(out, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
}

// syncBuilder is a strings.Builder safe for the writes of a process's
// output goroutine and the test's reads.
type syncBuilder struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// TestDevPanelOnTerminal runs `skiff dev --local` on a terminal: the panel
// shows the workload ready at its URL below the logs, an edit is rebuilt,
// and Ctrl-C (a key, the terminal being raw) stops it with exit code 0.
func TestDevPanelOnTerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go is not installed")
	}
	// The panel is redrawn by what changed in it, so the bytes written
	// are not its lines: a terminal (tmux) shows the screen they make.
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed")
	}
	bin := buildSkiff(t)
	work := t.TempDir()
	env := []string{"SKIFF_CONFIG_DIR=" + filepath.Join(work, ".skiff"), "NO_COLOR=1"}
	proj := filepath.Join(work, "shop")
	initCmd := exec.Command(bin, "init", proj, "--kind", "function", "--lang", "go", "--name", "hello", "--non-interactive")
	initCmd.Env = append(os.Environ(), env...)
	if out, err := initCmd.CombinedOutput(); err != nil {
		t.Fatalf("skiff init: %v\n%s", err, out)
	}
	port := porttest.Port(t)
	setPorts(t, filepath.Join(proj, "skiff.yaml"), map[string]int{"hello": port})

	sock := fmt.Sprintf("skiff-dev-test-%d", os.Getpid())
	tmux := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("tmux", append([]string{"-L", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	exitFile := filepath.Join(work, "exit")
	args := []string{"-f", "/dev/null", "new-session", "-d", "-s", "dev", "-x", "100", "-y", "30", "-c", proj}
	for _, kv := range append(env, "TERM=xterm-256color", "PATH="+os.Getenv("PATH"), "HOME="+os.Getenv("HOME")) {
		args = append(args, "-e", kv)
	}
	// tmux does not always record a dead pane's exit status: the shell
	// leaves it in a file.
	tmux(append(args, "sh", "-c", fmt.Sprintf("%q dev --local; echo $? > %q", bin, exitFile))...)
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", sock, "kill-server").Run() })
	tmux("set-option", "-t", "dev", "remain-on-exit", "on")

	// panel is the state and the rest of the panel's line of hello ("" when
	// it is not on the screen): icon, name, state, time, URL.
	screen := func() string { return tmux("capture-pane", "-p", "-t", "dev") }
	panelLine := regexp.MustCompile(`(?m)^[·✓↻✗] hello  (\S+)(.*)$`)
	waitPanel := func(state string, timeout time.Duration) string {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for {
			s := screen()
			if m := panelLine.FindAllStringSubmatch(s, -1); len(m) > 0 && m[len(m)-1][1] == state {
				return m[len(m)-1][2]
			}
			if time.Now().After(deadline) {
				t.Fatalf("the panel never said hello is %s; the screen:\n%s", state, s)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	if rest := waitPanel("ready", 2*time.Minute); !strings.Contains(rest, url) {
		t.Errorf("the panel's line of hello does not end with its URL %s: %q", url, rest)
	}
	if body := get(t, url+"/?name=Ada"); !strings.Contains(body, "Hello, Ada!") {
		t.Fatalf("answered %q", body)
	}
	replaceIn(t, filepath.Join(proj, "hello", "main.go"), `Greeting: "Hello"`, `Greeting: "Howdy"`)
	waitPanel("building", time.Minute)
	waitPanel("ready", time.Minute)
	if body := get(t, url+"/?name=Ada"); !strings.Contains(body, "Howdy, Ada!") {
		t.Fatalf("after the edit, answered %q", body)
	}
	// The terminal is raw while the panel runs: Ctrl-C is a key, which the
	// panel passes on as an interrupt.
	tty, err := os.Open(strings.TrimSpace(tmux("display-message", "-p", "-t", "dev", "#{pane_tty}")))
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	stty := exec.Command("stty", "-a")
	stty.Stdin = tty
	if mode, err := stty.Output(); err != nil || !strings.Contains(string(mode), "-icanon") || !strings.Contains(string(mode), "-isig") {
		t.Fatalf("the panel's terminal is not raw (%v): %s", err, mode)
	}
	tmux("send-keys", "-t", "dev", "C-c")
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, err := os.ReadFile(exitFile)
		if err == nil && strings.TrimSpace(string(code)) != "" {
			if c := strings.TrimSpace(string(code)); c != "0" {
				t.Fatalf("skiff dev exited with %s after Ctrl-C; the screen:\n%s", c, screen())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("skiff dev did not stop on Ctrl-C; the screen:\n%s", screen())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The panel's last state stays on the terminal.
	waitPanel("stopped", 10*time.Second)
}
