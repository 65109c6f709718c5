//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/internal/deploy"
	"github.com/skiffdev/skiff/internal/event"
)

// devEvent is a line of `skiff dev -o json` on stderr: an event of the
// one schema (docs/events-json.md).
type devEvent = event.Event

// devEvents reads the events printed so far.
func devEvents(buf *lockedBuffer) []devEvent {
	var out []devEvent
	for _, line := range strings.Split(buf.String(), "\n") {
		var ev devEvent
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Kind != "" {
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

// startDev starts `skiff dev -o json` in root, with env added to the
// cluster's; it is killed, and its output shown on failure, when the test
// ends.
func (c *cluster) startDev(t *testing.T, root string, env ...string) *devProcess {
	t.Helper()
	p := &devProcess{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, exited: make(chan error, 1)}
	p.cmd = exec.Command(c.skiff, "dev", "-o", "json", "--timeout", "2m")
	p.cmd.Dir, p.cmd.Env = root, append(append(os.Environ(), c.env...), env...)
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
		if string(ev.Kind) == kind && ev.Workload == workload {
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
		if string(ev.Kind) == kind && ev.Workload == workload {
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

// podsOf is the names of the pods of release that are not going away.
func (c *cluster) podsOf(t *testing.T, ns, release string) []string {
	t.Helper()
	pods, err := c.kc.Clientset.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + release})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			names = append(names, p.Name)
		}
	}
	slices.Sort(names)
	return names
}

// TestDevCluster runs `skiff dev` on a two-workload project on the real
// cluster, with live updates (a skiff-relay image built from this
// checkout): both deploy and answer on their printed local ports; an edit
// of one is synced into its running pod (no new revision, the same pod)
// and only it is rebuilt, its new text served through dev's own forward;
// a compile error is shown and the old text keeps being served; so is a
// version that exits before it is ready (its status and output shown);
// the fix is served; a skiff.yaml edit rolls out a new pod, which the next
// edit is synced into; the pods' logs stream throughout; SIGINT uninstalls
// the release dev installed and rolls back the one that was there before.
func TestDevCluster(t *testing.T) {
	c := needCluster(t)
	relay := c.relayImage(t)
	ns := c.restrictedNamespace(t, "e2e-dev")
	root := filepath.Join(t.TempDir(), "shop")
	c.mustSkiff(t, "", "init", root, "--kind", "function", "--lang", "go", "--name", "front",
		"--registry", c.registry+"/e2e-"+ns, "-n", ns, "--non-interactive")
	c.mustSkiff(t, root, "add", "back", "--kind", "service", "--lang", "go", "--non-interactive")
	// back exists before dev starts: dev must put it back as it was.
	c.mustSkiff(t, root, "deploy", "back", "--timeout", "3m")
	d := deploy.ForCluster(c.kc, nil)
	before, err := d.Get(context.Background(), "shop-back", ns)
	if err != nil {
		t.Fatal(err)
	}

	p := c.startDev(t, root, "SKIFF_RELAY_IMAGE="+relay)
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
	pods := c.podsOf(t, ns, "shop-front")
	revision := func() int {
		t.Helper()
		rel, err := d.Get(context.Background(), "shop-front", ns)
		if err != nil {
			t.Fatal(err)
		}
		return rel.Version
	}
	// synced checks that the last cycle put the new version into the
	// pods that ran, without a new revision.
	synced := func(ev devEvent, what string, rev int) {
		t.Helper()
		if _, ok := ev.Steps["sync"]; !ok || ev.Revision != 0 {
			t.Errorf("%s was not synced: %+v", what, ev)
		}
		if got := c.podsOf(t, ns, "shop-front"); !slices.Equal(got, pods) {
			t.Errorf("%s: front's pods are %v, were %v", what, got, pods)
		}
		if r := revision(); r != rev {
			t.Errorf("%s: front's release is at revision %d, want %d", what, r, rev)
		}
	}

	// An edit of front: only front is rebuilt, its new files go into the
	// running pod, and its new text is served through the same local port.
	main := filepath.Join(root, "front", "main.go")
	replaceInFile(t, main, `Greeting: "Hello"`, `Greeting: "Howdy"`)
	synced(waitEvents("ready", "front", 2), "the edit", 1)
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
	// A version that compiles but exits before it is ready: its status
	// and output are shown, and the pod serves the old version again.
	// (One write: a version that compiles and cannot listen.)
	src, err := os.ReadFile(main)
	if err != nil {
		t.Fatal(err)
	}
	next := strings.Replace(string(src), `Greeting: "Oops" +`, `Greeting: "Hiya"`, 1)
	replaceInFile(t, main, string(src), strings.Replace(next, `net.Listen("tcp", ":"+cfg.Port)`, `net.Listen("tcp", ":"+cfg.Port+"x")`, 1))
	p.failuresExpected = 2
	failed = waitEvents("failed", "front", 2)
	if !strings.Contains(failed.Error, "status 1") || !strings.Contains(failed.Output, "listen tcp") {
		t.Errorf("the failed version is not shown with its status and output: %+v", failed)
	}
	if body := get("front"); !strings.Contains(body, "Howdy, Ada!") {
		t.Fatalf("after a version that exited, front answered %q", body)
	}
	// The fix is served.
	replaceInFile(t, main, `":"+cfg.Port+"x"`, `":"+cfg.Port`)
	synced(waitEvents("ready", "front", 3), "the fix", 1)
	if body := get("front"); !strings.Contains(body, "Hiya, Ada!") {
		t.Fatalf("after the fix, front answered %q", body)
	}

	if n := count("cycle-started", "back"); n != backCycles {
		t.Errorf("edits of front ran %d cycles of back", n-backCycles)
	}

	// skiff.yaml changes front's settings: a rollout, a new pod; the next
	// edit goes into that pod. (A skiff.yaml edit cycles back too, whose
	// image and values are the same: unchanged.)
	manifest := filepath.Join(root, "skiff.yaml")
	replaceInFile(t, manifest, "    kind: function\n", "    kind: function\n    env: {LOG_LEVEL: debug}\n")
	if ev := waitEvents("ready", "front", 4); ev.Revision != 2 {
		t.Errorf("the settings change deployed revision %d, want 2: %+v", ev.Revision, ev)
	}
	if got := c.podsOf(t, ns, "shop-front"); slices.Equal(got, pods) {
		t.Errorf("the settings change left the pods %v", got)
	} else {
		pods = got
	}
	if body := get("front"); !strings.Contains(body, "Hiya, Ada!") {
		t.Fatalf("after the rollout, front answered %q", body)
	}
	replaceInFile(t, main, `Greeting: "Hiya"`, `Greeting: "Yo"`)
	synced(waitEvents("ready", "front", 5), "the edit after the rollout", 2)
	if body := get("front"); !strings.Contains(body, "Yo, Ada!") {
		t.Fatalf("after the edit after the rollout, front answered %q", body)
	}
	// The logs of each start of front's process reached stdout: the first,
	// three synced versions, the old one back after the failure, and the
	// rollout's.
	starts := 0
	for _, line := range strings.Split(stdout.String(), "\n") {
		// A log event (docs/events-json.md): the line in detail.message.
		var l struct {
			Event, Workload string
			Detail          struct{ Message string }
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Event == "log" && l.Workload == "front" && strings.Contains(l.Detail.Message, "listening") {
			starts++
		}
	}
	if starts < 6 {
		t.Errorf("dev's logs show %d starts of front, want 6:\n%s", starts, tail(stdout.String(), 30))
	}

	// SIGINT: the cluster as dev found it.
	p.interrupt(t)
	if _, err := d.Get(context.Background(), "shop-front", ns); err == nil {
		t.Error("the release dev installed is still there")
	}
	after, err := d.Get(context.Background(), "shop-back", ns)
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
// answers on its local port, an edit is served (synced into its pod with
// live updates, a rollout without), SIGINT uninstalls it.
func TestDevClusterInterpreted(t *testing.T) {
	c := needCluster(t)
	b := pushBases(t, c.registry)
	relay := c.relayImage(t)
	for _, tc := range []struct {
		lang, file, old, new, base string
		sync                       bool
	}{
		{"node", "index.js", `DEFAULT_GREETING = "Hello"`, `DEFAULT_GREETING = "Howdy"`, b.Node, true},
		{"python", "main.py", `DEFAULT_GREETING = "Hello"`, `DEFAULT_GREETING = "Howdy"`, b.Python, true},
		{"python-no-sync", "main.py", `DEFAULT_GREETING = "Hello"`, `DEFAULT_GREETING = "Howdy"`, b.Python, false},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			lang, _, _ := strings.Cut(tc.lang, "-")
			ns := c.restrictedNamespace(t, "e2e-dev-"+tc.lang)
			root := filepath.Join(t.TempDir(), "web")
			c.mustSkiff(t, "", "init", root, "--kind", "function", "--lang", lang, "--name", "greeter",
				"--registry", c.registry+"/e2e-"+ns, "-n", ns, "--non-interactive")
			manifest := filepath.Join(root, "skiff.yaml")
			data, _ := os.ReadFile(manifest)
			data = []byte(strings.Replace(string(data), "workloads:", "build:\n  base:\n    "+lang+": "+tc.base+"\nworkloads:", 1))
			if err := os.WriteFile(manifest, data, 0o644); err != nil {
				t.Fatal(err)
			}
			env := []string{"SKIFF_RELAY_IMAGE=" + relay}
			if !tc.sync {
				env = []string{"SKIFF_RELAY_IMAGE="} // over the harness's: no relay image at all
			}
			p := c.startDev(t, root, env...)
			url := p.wait(t, "ready", "greeter", 1).URL
			if body, err := httpGet(url + "/?name=Ada"); err != nil || !strings.Contains(body, "Hello, Ada!") {
				t.Fatalf("answered %q, %v", body, err)
			}
			replaceInFile(t, filepath.Join(root, "greeter", tc.file), tc.old, tc.new)
			ev := p.wait(t, "ready", "greeter", 2)
			if _, synced := ev.Steps["sync"]; synced != tc.sync || (ev.Revision == 2) == tc.sync {
				t.Errorf("the edit's cycle (live updates %v): %+v", tc.sync, ev)
			}
			if body, err := httpGet(url + "/?name=Ada"); err != nil || !strings.Contains(body, "Howdy, Ada!") {
				t.Fatalf("after the edit, answered %q, %v", body, err)
			}
			p.interrupt(t)
			if _, err := deploy.ForCluster(c.kc, nil).Get(context.Background(), "web-greeter", ns); err == nil {
				t.Error("the release dev installed is still there")
			}
		})
	}
}
