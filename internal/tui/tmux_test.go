package tui

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
)

// TestMain lets the test binary act as a dashboard on the fake backend
// when SKIFF_TUI_DEMO is set, for TestTmuxDashboard.
func TestMain(m *testing.M) {
	if os.Getenv("SKIFF_TUI_DEMO") == "1" {
		code := runDemo()
		// tmux does not always record a dead pane's exit status: leave it
		// in a file for the test.
		if f := os.Getenv("SKIFF_TUI_DEMO_EXIT"); f != "" {
			_ = os.WriteFile(f, []byte(fmt.Sprint(code)), 0o644)
		}
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func runDemo() int {
	fb := newFakeBackend()
	fb.history["orders"] = fixtureHistory()
	fb.resp = &Response{URL: "http://127.0.0.1:40123/", Status: "200 OK", Code: 200, Body: "hello from orders", Duration: time.Millisecond}
	fb.statuses <- StatusUpdate{Statuses: fixtureStatuses()}
	for _, l := range logLines("orders", 40, time.Now().Add(-time.Minute)) {
		fb.logChan("orders") <- l
	}
	var ws []Workload
	for _, s := range fixtureStatuses() {
		ws = append(ws, Workload{Name: s.Workload, Kind: s.Kind})
	}
	m := New(context.Background(), fb, Options{Project: "shop", Namespace: "shop", Workloads: ws, Color: true})
	if _, err := tea.NewProgram(m).Run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestTmuxDashboard runs the dashboard (this test binary on the fake
// backend) in a real terminal: tmux, 80×24, keys sent with send-keys, the
// screen read with capture-pane.
func TestTmuxDashboard(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed")
	}
	if testing.Short() {
		t.Skip("-short")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sock := fmt.Sprintf("skiff-tui-test-%d", os.Getpid())
	tmux := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("tmux", append([]string{"-L", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	exitFile := filepath.Join(t.TempDir(), "exit")
	tmux("-f", "/dev/null", "new-session", "-d", "-s", "dash", "-x", "80", "-y", "24",
		"env", "SKIFF_TUI_DEMO=1", "SKIFF_TUI_DEMO_EXIT="+exitFile, "TERM=xterm-256color", exe)
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", sock, "kill-server").Run() })
	tmux("set-option", "-t", "dash", "remain-on-exit", "on")

	screen := func() string { return tmux("capture-pane", "-p", "-t", "dash") }
	waitFor := func(what string) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			s := screen()
			if strings.Contains(s, what) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("the screen never showed %q:\n%s", what, s)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	s := waitFor("● Ready")
	waitFor("GET /orders/38")
	if lines := strings.Split(strings.TrimRight(s, "\n"), "\n"); len(lines) > 24 {
		t.Errorf("the screen has %d lines at 80×24", len(lines))
	}
	tmux("send-keys", "-t", "dash", "j")
	waitFor("▸ payments")
	tmux("send-keys", "-t", "dash", "k", "r")
	waitFor("(current)")
	tmux("send-keys", "-t", "dash", "Enter")
	waitFor("Roll orders back to revision 2?")
	tmux("send-keys", "-t", "dash", "y")
	waitFor("orders rolled back to revision 2 (now revision 4)")
	tmux("resize-window", "-t", "dash", "-x", "120", "-y", "30")
	waitFor("thumbnail.shop:8080") // no longer cut at 120 columns
	tmux("send-keys", "-t", "dash", "?")
	waitFor("skiff dash keys")
	tmux("send-keys", "-t", "dash", "Escape")
	// Wait for the help to close: an Escape followed at once by q reads
	// as alt+q.
	for deadline := time.Now().Add(10 * time.Second); strings.Contains(screen(), "skiff dash keys"); {
		if time.Now().After(deadline) {
			t.Fatalf("Escape did not close the help:\n%s", screen())
		}
		time.Sleep(50 * time.Millisecond)
	}
	tmux("send-keys", "-t", "dash", "q")
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, err := os.ReadFile(exitFile)
		if err == nil && strings.Contains(tmux("list-panes", "-t", "dash", "-F", "#{pane_dead}"), "1") {
			if string(code) != "0" {
				t.Fatalf("the dashboard exited with %s after q", code)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("q did not end the dashboard:\n%s", screen())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s := screen(); strings.Contains(s, "WORKLOAD") {
		t.Errorf("the dashboard is still on screen after q (alternate screen not left):\n%s", s)
	}
}
