//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/deploy"
)

// devEvent is a line of `skiff dev -o json` on stderr.
type devEvent struct {
	Event    string
	Workload string
	URL      string
	Release  string
	Revision int
	Error    string
	Output   string
}

// devEvents reads the events printed so far.
func devEvents(buf *lockedBuffer) []devEvent {
	var out []devEvent
	for _, line := range strings.Split(buf.String(), "\n") {
		var ev devEvent
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Event != "" {
			out = append(out, ev)
		}
	}
	return out
}

// devProcess is a running `skiff dev -o json`.
type devProcess struct {
	cmd            *exec.Cmd
	stdout, stderr *lockedBuffer
	exited         chan error
	// failuresExpected is how many failed events of a workload wait lets
	// pass before it fails the test.
	failuresExpected int
}

// startDev starts `skiff dev -o json` in root; it is killed, and its
// output shown on failure, when the test ends.
func (c *cluster) startDev(t *testing.T, root string) *devProcess {
	t.Helper()
	p := &devProcess{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, exited: make(chan error, 1)}
	p.cmd = exec.Command(c.skiff, "dev", "-o", "json", "--timeout", "2m")
	p.cmd.Dir, p.cmd.Env = root, append(os.Environ(), c.env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("dev's stderr:\n%s\ndev's stdout:\n%s", p.stderr, tail(p.stdout.String(), 40))
		}
	})
	return p
}

// count is how many events of kind there are for workload.
func (p *devProcess) count(kind, workload string) int {
	n := 0
	for _, ev := range devEvents(p.stderr) {
		if ev.Event == kind && ev.Workload == workload {
			n++
		}
	}
	return n
}

// wait waits for the nth event of kind for workload and returns the last
// such event; a failure beyond failuresExpected fails the test at once.
func (p *devProcess) wait(t *testing.T, kind, workload string, n int) devEvent {
	t.Helper()
	waitFor(t, 3*time.Minute, kind+" of "+workload, func() bool {
		if kind != "failed" && p.count("failed", workload) > p.failuresExpected {
			t.Fatalf("dev failed on %s:\n%s", workload, p.stderr)
		}
		return p.count(kind, workload) >= n
	})
	var last devEvent
	for _, ev := range devEvents(p.stderr) {
		if ev.Event == kind && ev.Workload == workload {
			last = ev
		}
	}
	return last
}

// interrupt sends SIGINT and waits until dev has restored the cluster and
// exited (0, or 130).
func (p *devProcess) interrupt(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if code := p.cmd.ProcessState.ExitCode(); err != nil && code != 130 {
			t.Fatalf("dev exited with %v", err)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("dev did not exit within 3 minutes of SIGINT")
	}
}

// TestDevCluster runs `skiff dev` on a two-workload project on the real
// cluster: both deploy and answer on their printed local ports; an edit
// of one redeploys only it and its new text is served through dev's own
// forward; a compile error is shown and the old text keeps being served;
// the fix is served; the pods' logs stream through each rollout; SIGINT
// uninstalls the release dev installed and rolls back the one that was
// there before.
func TestDevCluster(t *testing.T) {
	c := needCluster(t)
	ns := c.restrictedNamespace(t, "e2e-dev")
	root := filepath.Join(t.TempDir(), "shop")
	c.mustSkiff(t, "", "init", root, "--kind", "function", "--lang", "go", "--name", "front",
		"--registry", c.registry+"/e2e-"+ns, "-n", ns, "--non-interactive")
	c.mustSkiff(t, root, "add", "back", "--kind", "service", "--lang", "go", "--non-interactive")
	// back exists before dev starts: dev must put it back as it was.
	c.mustSkiff(t, root, "deploy", "back", "--timeout", "3m")
	d := deploy.ForCluster(c.kc, nil)
	before, err := d.Get("shop-back", ns)
	if err != nil {
		t.Fatal(err)
	}

	p := c.startDev(t, root)
	stdout, stderr, count := p.stdout, p.stderr, p.count
	waitEvents := func(kind, workload string, n int) devEvent { t.Helper(); return p.wait(t, kind, workload, n) }
	urls := map[string]string{}
	for _, w := range []string{"front", "back"} {
		ev := waitEvents("ready", w, 1)
		urls[w] = ev.URL
		if !strings.HasPrefix(ev.URL, "http://127.0.0.1:") {
			t.Fatalf("%s's ready event has no local URL: %+v", w, ev)
		}
	}
	if urls["front"] == urls["back"] {
		t.Fatalf("front and back share %s", urls["front"])
	}
	get := func(w string) string {
		t.Helper()
		body, err := httpGet(urls[w] + "/?name=Ada")
		if err != nil {
			t.Fatalf("GET %s through dev's forward: %v", w, err)
		}
		return body
	}
	if body := get("front"); !strings.Contains(body, "Hello, Ada!") {
		t.Fatalf("front answered %q", body)
	}
	if body := get("back"); body == "" {
		t.Fatal("back answered nothing")
	}
	backCycles := count("cycle-started", "back")

	// An edit of front: only front is rebuilt, and its new text is served
	// through the same local port.
	main := filepath.Join(root, "front", "main.go")
	replaceInFile(t, main, `Greeting: "Hello"`, `Greeting: "Howdy"`)
	if ev := waitEvents("ready", "front", 2); ev.Revision != 2 {
		t.Errorf("the edit deployed revision %d, want 2", ev.Revision)
	}
	if body := get("front"); !strings.Contains(body, "Howdy, Ada!") {
		t.Fatalf("after the edit, front answered %q", body)
	}

	// A compile error: shown in full, and the old text keeps being served.
	replaceInFile(t, main, `Greeting: "Howdy"`, `Greeting: "Oops" +`)
	p.failuresExpected = 1
	failed := waitEvents("failed", "front", 1)
	if !strings.Contains(failed.Error+failed.Output, "main.go") {
		t.Errorf("the compile error does not name the file: %+v", failed)
	}
	if body := get("front"); !strings.Contains(body, "Howdy, Ada!") {
		t.Fatalf("during the compile error, front answered %q", body)
	}
	// The fix is served.
	replaceInFile(t, main, `Greeting: "Oops" +`, `Greeting: "Hiya"`)
	waitEvents("ready", "front", 3)
	if body := get("front"); !strings.Contains(body, "Hiya, Ada!") {
		t.Fatalf("after the fix, front answered %q", body)
	}
	if n := count("cycle-started", "back"); n != backCycles {
		t.Errorf("edits of front ran %d cycles of back", n-backCycles)
	}
	// The logs of the pods of each rollout reached stdout.
	pods := map[string]bool{}
	for _, line := range strings.Split(stdout.String(), "\n") {
		var l struct{ Workload, Pod, Message string }
		if json.Unmarshal([]byte(line), &l) == nil && l.Workload == "front" && strings.Contains(l.Message, "listening") {
			pods[l.Pod] = true
		}
	}
	if len(pods) < 3 {
		t.Errorf("dev's logs show the start of %d pods of front, want one per rollout (3):\n%s", len(pods), tail(stdout.String(), 20))
	}

	// SIGINT: the cluster as dev found it.
	p.interrupt(t)
	if _, err := d.Get("shop-front", ns); err == nil {
		t.Error("the release dev installed is still there")
	}
	after, err := d.Get("shop-back", ns)
	if err != nil {
		t.Fatal(err)
	}
	if deploy.ImageOf(after) != deploy.ImageOf(before) || after.Info.Status != before.Info.Status {
		t.Errorf("back after dev: %s %s, before: %s %s", deploy.ImageOf(after), after.Info.Status, deploy.ImageOf(before), before.Info.Status)
	}
	if !reflect.DeepEqual(after.Config, before.Config) {
		t.Errorf("back's values after dev: %v, before: %v", after.Config, before.Config)
	}
	for _, kind := range []string{"removed", "restored"} {
		if !strings.Contains(stderr.String(), `"event":"`+kind+`"`) {
			t.Errorf("dev did not say %s:\n%s", kind, stderr)
		}
	}
}

// TestDevClusterInterpreted runs `skiff dev` on a Node.js and a Python
// function (base images made from the host's node and python3): each
// answers on its local port, an edit is served, SIGINT uninstalls it.
func TestDevClusterInterpreted(t *testing.T) {
	c := needCluster(t)
	b := pushBases(t, c.registry)
	for _, tc := range []struct{ lang, file, old, new, base string }{
		{"node", "index.js", `DEFAULT_GREETING = "Hello"`, `DEFAULT_GREETING = "Howdy"`, b.Node},
		{"python", "main.py", `DEFAULT_GREETING = "Hello"`, `DEFAULT_GREETING = "Howdy"`, b.Python},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			ns := c.restrictedNamespace(t, "e2e-dev-"+tc.lang)
			root := filepath.Join(t.TempDir(), "web")
			c.mustSkiff(t, "", "init", root, "--kind", "function", "--lang", tc.lang, "--name", "greeter",
				"--registry", c.registry+"/e2e-"+ns, "-n", ns, "--non-interactive")
			manifest := filepath.Join(root, "skiff.yaml")
			data, _ := os.ReadFile(manifest)
			data = []byte(strings.Replace(string(data), "workloads:", "build:\n  base:\n    "+tc.lang+": "+tc.base+"\nworkloads:", 1))
			if err := os.WriteFile(manifest, data, 0o644); err != nil {
				t.Fatal(err)
			}
			p := c.startDev(t, root)
			url := p.wait(t, "ready", "greeter", 1).URL
			if body, err := httpGet(url + "/?name=Ada"); err != nil || !strings.Contains(body, "Hello, Ada!") {
				t.Fatalf("answered %q, %v", body, err)
			}
			replaceInFile(t, filepath.Join(root, "greeter", tc.file), tc.old, tc.new)
			p.wait(t, "ready", "greeter", 2)
			if body, err := httpGet(url + "/?name=Ada"); err != nil || !strings.Contains(body, "Howdy, Ada!") {
				t.Fatalf("after the edit, answered %q, %v", body, err)
			}
			p.interrupt(t)
			if _, err := deploy.ForCluster(c.kc, nil).Get("web-greeter", ns); err == nil {
				t.Error("the release dev installed is still there")
			}
		})
	}
}
