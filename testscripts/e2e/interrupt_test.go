//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// deployProcess is a `skiff deploy` running in the background, its
// stderr read line by line.
type deployProcess struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []string
	seen   chan struct{} // a line arrived
	exited chan error
}

func (c *cluster) startDeploy(t *testing.T, dir string, args ...string) *deployProcess {
	t.Helper()
	cmd := exec.Command(c.skiff, append([]string{"deploy"}, args...)...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), c.env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &deployProcess{cmd: cmd, seen: make(chan struct{}, 1), exited: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
			select {
			case p.seen <- struct{}{}:
			default:
			}
		}
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return p
}

func (p *deployProcess) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// waitFor waits until stderr holds want.
func (p *deployProcess) waitFor(t *testing.T, want string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for !strings.Contains(p.output(), want) {
		select {
		case <-p.seen:
		case <-deadline:
			t.Fatalf("deploy did not say %q within %s:\n%s", want, within, p.output())
		}
	}
}

func (p *deployProcess) signal(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
}

// exit waits for the process to end within d and returns its exit code.
func (p *deployProcess) exit(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		t.Fatalf("deploy did not exit within %s:\n%s", d, p.output())
	}
	return 0
}

// appliedRevision waits until Helm has recorded revision rev of release in
// ns: the apply returned, and deploy waits for the new pods.
func (c *cluster) appliedRevision(t *testing.T, ns, release string, rev int) {
	t.Helper()
	name := fmt.Sprintf("sh.helm.release.v1.%s.v%d", release, rev)
	waitFor(t, 2*time.Minute, "revision "+fmt.Sprint(rev)+" of "+release, func() bool {
		_, err := c.kc.Clientset.CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
		return err == nil
	})
}

// Ctrl-C during a deploy's wait stops the wait, rolls the release back and
// leaves the previous revision serving, the process gone (with it, every
// goroutine and port-forward it had; goleak checks the same in-process in
// the pipeline, deploy and dev tests); a second Ctrl-C ends skiff at once.
func TestInterruptDuringDeploy(t *testing.T) {
	c := needCluster(t)
	ns := c.restrictedNamespace(t, "e2e-intr")
	root := filepath.Join(t.TempDir(), "shop")
	c.mustSkiff(t, "", "init", root, "--kind", "function", "--lang", "go", "--name", "hello",
		"--registry", c.registry+"/e2e-"+ns, "-n", ns, "--non-interactive")
	c.mustSkiff(t, root, "deploy", "--timeout", "3m")

	// The next revision never gets ready: its readiness path answers 404.
	manifest := filepath.Join(root, "skiff.yaml")
	data, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(data), "    kind: function\n", "    kind: function\n    ready: /never-ready\n", 1)
	if edited == string(data) {
		t.Fatalf("no workload to edit in:\n%s", data)
	}
	if err := os.WriteFile(manifest, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}

	// 1. One Ctrl-C while deploy waits: rolled back, revision 1's content serving.
	p := c.startDeploy(t, root, "--no-build", "--timeout", "3m")
	p.waitFor(t, "Deploying hello", 2*time.Minute)
	c.appliedRevision(t, ns, "shop-hello", 2)
	p.signal(t)
	// An interrupted command exits 130 (cmdutil.ExitCancel), as for SIGINT.
	if code := p.exit(t, 2*time.Minute); code != 130 {
		t.Fatalf("interrupted deploy exited %d:\n%s", code, p.output())
	}
	for _, want := range []string{"Interrupted: stopping hello's deploy", "was interrupted", "rolled back to revision 1"} {
		if !strings.Contains(p.output(), want) {
			t.Errorf("interrupted deploy did not say %q:\n%s", want, p.output())
		}
	}
	st := c.status(t, root)["hello"]
	if st.State != "Ready" || st.Revision != 3 {
		t.Errorf("after the interrupt: %+v, want revision 3 (revision 1 again) ready", st)
	}
	if body := c.call(t, ns, "shop-hello", "/?name=Ada", 8080); !strings.Contains(body, "Hello, Ada!") {
		t.Errorf("after the interrupt the workload answered %q", body)
	}

	// 2. A second Ctrl-C (while the rollback runs) ends skiff at once.
	p = c.startDeploy(t, root, "--no-build", "--timeout", "3m")
	p.waitFor(t, "Deploying hello", 2*time.Minute)
	c.appliedRevision(t, ns, "shop-hello", 4)
	p.signal(t)
	p.waitFor(t, "Interrupted: stopping hello's deploy", time.Minute)
	start := time.Now()
	p.signal(t)
	code := p.exit(t, 10*time.Second)
	if took := time.Since(start); took > 3*time.Second || code == 0 {
		t.Errorf("after the second Ctrl-C skiff took %s to exit, with code %d:\n%s", took, code, p.output())
	}
}
