//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDash runs `skiff dash` in a real terminal (tmux) against the test
// cluster: the deployed workload shows Ready, a log line written by a
// request appears, a rollback from the dashboard changes the revision, and
// traffic shows as a sparkline in the list and charts in the Serving pane.
func TestDash(t *testing.T) {
	c := needCluster(t)
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatal("tmux is not installed (apt-get install tmux)")
	}
	ns := c.restrictedNamespace(t, "e2e-dash")
	root := filepath.Join(t.TempDir(), "shop")
	c.mustSkiff(t, "", "init", root, "--kind", "function", "--lang", "go", "--name", "hello",
		"--registry", c.registry+"/e2e-"+ns, "-n", ns, "--non-interactive")
	// Debug logs make the function log every request it answers.
	c.mustSkiff(t, root, "config", "set", "LOG_LEVEL=debug")
	c.mustSkiff(t, root, "deploy", "--timeout", "3m")
	firstImage := c.status(t, root)["hello"].Image
	replaceInFile(t, filepath.Join(root, "hello", "main.go"), `Greeting: "Hello"`, `Greeting: "Howdy"`)
	c.mustSkiff(t, root, "deploy", "--timeout", "3m")
	if st := c.status(t, root)["hello"]; st.Revision != 2 || st.Image == firstImage {
		t.Fatalf("before the dashboard: %+v", st)
	}

	sock := fmt.Sprintf("skiff-e2e-%d", os.Getpid())
	tmux := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("tmux", append([]string{"-L", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	var env []string
	for _, kv := range c.env {
		env = append(env, "-e", kv)
	}
	tmux(append(append([]string{"new-session", "-d", "-s", "dash", "-x", "120", "-y", "35", "-c", root}, env...),
		c.skiff, "dash")...)
	t.Cleanup(func() { exec.Command("tmux", "-L", sock, "kill-server").Run() })
	screen := func() string { return tmux("capture-pane", "-p", "-t", "dash") }
	waitScreen := func(what string, ok func(string) bool) string {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			s := screen()
			if ok(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; the screen:\n%s", what, s)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}

	row := func(s string) string {
		for _, l := range strings.Split(s, "\n") {
			if strings.Contains(l, "hello") && strings.Contains(l, "function") {
				return l
			}
		}
		return ""
	}
	s := waitScreen("hello Ready at revision 2", func(s string) bool {
		r := row(s)
		return strings.Contains(r, "Ready") && strings.Contains(r, " 2 ")
	})
	t.Logf("dashboard:\n%s", s)

	// A request writes a log line; it shows in the logs pane (wrapped, so
	// the end of the long JSON line is on screen too).
	tmux("send-keys", "-t", "dash", "w")
	c.mustSkiff(t, root, "invoke", "hello", "--path", "/?name=DashProbe")
	waitScreen("the request's log line", func(s string) bool {
		return strings.Contains(strings.Join(strings.Fields(s), ""), `"name":"DashProbe"`)
	})

	// Roll back from the dashboard: r opens the picker on the previous
	// revision, enter chooses it, y confirms.
	tmux("send-keys", "-t", "dash", "r")
	// The picker opens at once and lists the revisions when the history
	// arrives; enter means nothing before that.
	waitScreen("the revision picker with the history", func(s string) bool {
		return strings.Contains(s, "Roll hello back to") && strings.Contains(s, "(current)")
	})
	tmux("send-keys", "-t", "dash", "Enter")
	waitScreen("the confirmation", func(s string) bool { return strings.Contains(s, "back to revision 1?") })
	tmux("send-keys", "-t", "dash", "y")
	s = waitScreen("revision 3 (the rollback) Ready", func(s string) bool {
		r := row(s)
		return strings.Contains(r, "Ready") && strings.Contains(r, " 3 ")
	})
	t.Logf("after the rollback:\n%s", s)
	if st := c.status(t, root)["hello"]; st.Revision != 3 || st.Image != firstImage {
		t.Errorf("after the dashboard's rollback: %+v, want revision 3 running %s", st, firstImage)
	}

	// The Events pane lists the rollback's steps, as the session reported
	// them, among the Kubernetes events.
	tmux("send-keys", "-t", "dash", "2")
	s = waitScreen("the rollback's steps in the Events pane", func(s string) bool {
		return strings.Contains(s, "skiff   rollback-started") && strings.Contains(s, "skiff   rolled-back")
	})
	t.Logf("the Events pane:\n%s", s)

	// Traffic through the pod's skiff-relay (what the Service reaches)
	// shows as the workload's sparkline in the list and as the charts of
	// the Serving pane, sampled every 10 s.
	pod, err := readyPod(context.Background(), c.kc.Clientset, ns, "app.kubernetes.io/instance=shop-hello")
	if err != nil {
		t.Fatal(err)
	}
	fw, err := c.kc.ForwardPort(context.Background(), ns, pod.Name, 8012)
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	stop := make(chan struct{})
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				_, _ = httpGet("http://" + fw.Addr + "/?name=load")
			}
		}
	}()
	defer func() { close(stop); <-loaded }()
	tmux("send-keys", "-t", "dash", "4")
	s = waitScreen("a sparkline and a chart of the load", func(s string) bool {
		r := row(s)
		return strings.Contains(s, "REQ/S") && strings.ContainsAny(r, "▂▃▄▅▆▇█") &&
			strings.Contains(s, "requests/s  now ") && !strings.Contains(s, "requests/s  now 0 ")
	})
	t.Logf("the Serving pane under load:\n%s", s)

	tmux("send-keys", "-t", "dash", "q")
	deadline := time.Now().Add(10 * time.Second)
	for exec.Command("tmux", "-L", sock, "has-session", "-t", "dash").Run() == nil {
		if time.Now().After(deadline) {
			t.Fatalf("q did not end the dashboard:\n%s", screen())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
