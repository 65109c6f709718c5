package testscripts

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// TestInitPromptsOnTerminal drives `skiff init` through a real
// pseudo-terminal: every value the flags left out is asked with a select
// list or an input, and the answers end up in the generated project.
func TestInitPromptsOnTerminal(t *testing.T) {
	bin := buildSkiff(t)
	work := t.TempDir()
	cmd := exec.Command(bin, "init", "shop")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "SKIFF_CONFIG_DIR="+filepath.Join(work, ".skiff"), "TERM=xterm", "NO_COLOR=1")
	term, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	screen := &syncBuffer{}
	copied := make(chan struct{})
	go func() { _, _ = copyAll(screen, term); close(copied) }()

	const (
		enter = "\r"
		down  = "\x1b[B"
	)
	// An input prompt asks the terminal twice where its cursor is (copyAll
	// answers) before it reads keys: keys sent earlier would be read as the
	// answer, so the test waits for both questions. Select lists do not ask.
	steps := []struct {
		waitFor, send string
		input         bool
	}{
		{"Kind of workload:", enter, false},       // function (first)
		{"Language:", down + down + enter, false}, // go, node, python
		{"Template:", enter, false},               // http is preselected
		{"Name of the function:", "greeter" + enter, true},
		{"Greeting the function answers with", "Ahoy" + enter, true}, // the template's own prompt
		{"Registry to push images to", "registry.example.com/team" + enter, true},
	}
	for _, s := range steps {
		screen.waitFor(t, s.waitFor, 20*time.Second)
		if s.input {
			screen.waitFor(t, "\x1b[6n", 10*time.Second)
			screen.waitFor(t, "\x1b[6n", 10*time.Second)
		}
		// survey draws a prompt, then switches the terminal to raw mode:
		// keys sent before would be echoed and held until a newline.
		waitRaw(t, term, screen, 10*time.Second)
		screen.quiet(t, 150*time.Millisecond, 10*time.Second)
		if _, err := term.Write([]byte(s.send)); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("skiff init: %v\nall skiff wrote:\n%s", err, screen.transcript())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("skiff init did not finish\nall it wrote:\n%s", screen.transcript())
	}
	// Its last lines may still be in the terminal when the program has
	// exited: read to the end (the terminal then says EIO) before looking.
	select {
	case <-copied:
	case <-time.After(10 * time.Second):
		t.Fatalf("the terminal did not end within 10 s of skiff init\nall it wrote:\n%s", screen.transcript())
	}

	manifest, err := os.ReadFile(filepath.Join(work, "shop", "skiff.yaml"))
	if err != nil {
		t.Fatalf("no manifest: %v\nall skiff wrote:\n%s", err, screen.transcript())
	}
	for _, want := range []string{"name: shop", "registry: registry.example.com/team", "name: greeter", "kind: function", "lang: python"} {
		if !strings.Contains(string(manifest), want) {
			t.Errorf("skiff.yaml lacks %q:\n%s", want, manifest)
		}
	}
	if strings.Contains(string(manifest), "template:") {
		t.Errorf("the default template was written out:\n%s", manifest)
	}
	if _, err := os.Stat(filepath.Join(work, "shop", "greeter", "README.md")); err != nil {
		t.Errorf("workload files missing: %v", err)
	}
	if !strings.Contains(screen.String(), "Created project shop") {
		t.Errorf("no success message; screen:\n%s", screen.String())
	}
}

// TestInitPromptRefusesBadName checks the name prompt rejects an invalid
// name and asks again.
func TestInitPromptRefusesBadName(t *testing.T) {
	bin := buildSkiff(t)
	work := t.TempDir()
	cmd := exec.Command(bin, "init", "shop", "--kind", "service", "--lang", "go", "--registry", "r.example.com/x")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "SKIFF_CONFIG_DIR="+filepath.Join(work, ".skiff"), "TERM=xterm", "NO_COLOR=1")
	term, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	screen := &syncBuffer{}
	go func() { _, _ = copyAll(screen, term) }()

	screen.waitFor(t, "Name of the service:", 20*time.Second)
	screen.waitFor(t, "\x1b[6n", 10*time.Second) // see TestInitPromptsOnTerminal
	screen.waitFor(t, "\x1b[6n", 10*time.Second)
	waitRaw(t, term, screen, 10*time.Second)
	screen.quiet(t, 150*time.Millisecond, 10*time.Second)
	if _, err := term.Write([]byte("Bad_Name\r")); err != nil {
		t.Fatal(err)
	}
	screen.waitFor(t, "is not a valid name", 10*time.Second)
	// survey asks again: it draws the prompt and asks the terminal twice
	// where its cursor is (answered by copyAll) before it reads keys; keys
	// sent earlier would be read as the answer.
	screen.waitFor(t, "\x1b[6n", 10*time.Second)
	screen.waitFor(t, "\x1b[6n", 10*time.Second)
	waitRaw(t, term, screen, 10*time.Second)
	screen.quiet(t, 150*time.Millisecond, 10*time.Second)
	// Clear the rejected answer, then give a good one.
	if _, err := term.Write([]byte(strings.Repeat("\x7f", len("Bad_Name")) + "api\r")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("skiff init: %v\nall skiff wrote:\n%s", err, screen.transcript())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("skiff init did not finish\nall it wrote:\n%s", screen.transcript())
	}
	manifest, _ := os.ReadFile(filepath.Join(work, "shop", "skiff.yaml"))
	if !strings.Contains(string(manifest), "name: api") {
		t.Fatalf("skiff.yaml:\n%s\nscreen:\n%s", manifest, screen.String())
	}
}

var buildOnce struct {
	sync.Once
	bin string
	err error
}

// buildSkiff compiles the skiff binary once per test run.
func buildSkiff(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "skiff-bin-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.bin = filepath.Join(dir, "skiff")
		out, err := exec.Command("go", "build", "-o", buildOnce.bin, "github.com/skiffdev/skiff/cmd/skiff").CombinedOutput()
		if err != nil {
			buildOnce.err = err
			buildOnce.bin = string(out)
		}
	})
	if buildOnce.err != nil {
		t.Fatalf("building skiff: %v\n%s", buildOnce.err, buildOnce.bin)
	}
	return buildOnce.bin
}

// syncBuffer is the screen: what the program wrote to the terminal.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer // what waitFor has not consumed yet
	all bytes.Buffer // everything, for failure messages
	// wrote holds a value when something was written since the last
	// receive.
	wrote chan struct{}
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.notifyLocked()
	b.all.Write(p)
	return b.buf.Write(p)
}

// written returns the channel that gets a value after a write.
func (b *syncBuffer) written() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.wrote == nil {
		b.wrote = make(chan struct{}, 1)
	}
	return b.wrote
}

func (b *syncBuffer) notifyLocked() {
	if b.wrote == nil {
		b.wrote = make(chan struct{}, 1)
	}
	select {
	case b.wrote <- struct{}{}:
	default:
	}
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// transcript is all the program wrote, control sequences quoted, for a
// failure message: what waitFor consumed shows what came before.
func (b *syncBuffer) transcript() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return fmt.Sprintf("%q", b.all.String())
}

// waitFor waits until s has appeared on the screen since the last wait,
// looking again after each write to the screen.
func (b *syncBuffer) waitFor(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	wrote := b.written()
	for {
		b.mu.Lock()
		i := strings.Index(b.buf.String(), s)
		if i >= 0 {
			b.buf.Next(i + len(s))
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		select {
		case <-wrote:
		case <-deadline:
			t.Fatalf("timed out waiting for %q; all the program wrote:\n%s", s, b.transcript())
		}
	}
}

// quiet waits until nothing has been written to the screen for d: survey
// asks the terminal where its cursor is a varying number of times as it
// draws (copyAll answers each at once); keys sent while it waits for an
// answer are read as part of that answer and lost.
func (b *syncBuffer) quiet(t *testing.T, d, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	wrote := b.written()
	for {
		select {
		case <-wrote:
		case <-time.After(d):
			return
		case <-deadline:
			t.Fatalf("the screen did not settle within %s; all the program wrote:\n%s", timeout, b.transcript())
		}
	}
}

// waitRaw waits until the program put the terminal in raw mode (no
// canonical line editing, no echo), as survey does once it has drawn a
// prompt and reads the answer key by key. The terminal's mode is not an
// event anything tells of: it is read with stty, which on the terminal's
// master side reports the mode of the side the program uses, again every
// 10ms until the deadline.
func waitRaw(t *testing.T, term *os.File, screen *syncBuffer, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	var mode []string
	for {
		stty := exec.Command("stty", "-a")
		stty.Stdin = term
		out, err := stty.Output()
		if err != nil {
			t.Fatalf("reading the terminal's mode with stty -a: %v", err)
		}
		mode = strings.Fields(string(out))
		if slices.Contains(mode, "-icanon") && slices.Contains(mode, "-echo") {
			return
		}
		select {
		case <-poll.C:
		case <-deadline:
			t.Fatalf("timed out waiting for the terminal to be in raw mode (stty: %s); all the program wrote:\n%s", strings.Join(mode, " "), screen.transcript())
		}
	}
}

// copyAll records what the program writes to the terminal and, like a
// terminal, answers its cursor position requests (ESC [ 6 n).
func copyAll(dst *syncBuffer, term *os.File) (int64, error) {
	buf := make([]byte, 4096)
	var n int64
	for {
		k, err := term.Read(buf)
		if k > 0 {
			// Answer survey's cursor queries as a terminal would, before
			// the screen shows them: a test that waits for a query on the
			// screen knows its answer is already on the way.
			for range bytes.Count(buf[:k], []byte("\x1b[6n")) {
				term.Write([]byte("\x1b[1;1R"))
			}
			dst.Write(buf[:k])
			n += int64(k)
		}
		if err != nil {
			return n, err
		}
	}
}
