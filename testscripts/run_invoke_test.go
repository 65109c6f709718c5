package testscripts

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/porttest"
)

// TestRunAndInvokeLocal runs a generated Python CloudEvents function with
// `skiff run`, sends it CloudEvents in both modes with `skiff invoke
// --local`, and stops it with Ctrl-C (SIGINT): it must exit cleanly.
func TestRunAndInvokeLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed")
	}
	bin := buildSkiff(t)
	work := t.TempDir()
	env := append(os.Environ(), "SKIFF_CONFIG_DIR="+filepath.Join(work, ".skiff"), "NO_COLOR=1")
	skiff := func(args ...string) (string, string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env = filepath.Join(work, "shop"), env
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errOut.String(), code
	}
	init := exec.Command(bin, "init", "shop", "--kind", "function", "--lang", "python", "--template", "cloudevents", "--name", "events")
	init.Dir, init.Env = work, env
	if out, err := init.CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}

	port := porttest.Port(t)
	run := exec.Command(bin, "run", "events", "--port", fmt.Sprint(port))
	run.Dir, run.Env = filepath.Join(work, "shop"), env
	var runOut, runErr bytes.Buffer
	run.Stdout, run.Stderr = &runOut, &runErr
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	defer run.Process.Kill()

	portFlag := fmt.Sprint(port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, _, code := skiff("invoke", "events", "--local", "--port", portFlag, "--path", "/healthz")
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("skiff run never answered:\n%s\n%s", runOut.String(), runErr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}

	out, errOut, code := skiff("invoke", "events", "--local", "--port", portFlag, "--cloudevent", "--type", "com.example.ping", "-d", `{"n":1}`, "-o", "json")
	if code != 0 || !strings.Contains(out, `"Ce-Type"`) || !strings.Contains(out, `"statusCode": 200`) {
		t.Errorf("binary mode: exit %d\n%s\n%s", code, out, errOut)
	}
	// --event TYPE is --cloudevent --type TYPE; both at once is a usage error.
	out, errOut, code = skiff("invoke", "events", "--local", "--port", portFlag, "--event", "com.example.ping", "-d", `{"n":1}`, "-o", "json")
	if code != 0 || !strings.Contains(out, `"Ce-Type"`) || !strings.Contains(out, `"statusCode": 200`) {
		t.Errorf("--event: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, errOut, code = skiff("invoke", "events", "--local", "--event", "a.b", "--type", "a.b"); code != 2 || !strings.Contains(errOut, "--event TYPE is --cloudevent --type TYPE") {
		t.Errorf("--event with --type: exit %d\n%s", code, errOut)
	}
	out, errOut, code = skiff("invoke", "events", "--local", "--port", portFlag, "--cloudevent", "--structured", "--type", "com.example.ping", "-d", `{"n":2}`)
	if code != 0 || !strings.Contains(out, `"specversion"`) || !strings.Contains(errOut, "200 OK") {
		t.Errorf("structured mode: exit %d\n%s\n%s", code, out, errOut)
	}
	// Not a CloudEvent: the function refuses it, and invoke exits 1.
	_, errOut, code = skiff("invoke", "events", "--local", "--port", portFlag, "-X", "POST", "-d", "plain")
	if code != 1 || !strings.Contains(errOut, "400") {
		t.Errorf("plain POST: exit %d\n%s", code, errOut)
	}
	_, errOut, code = skiff("invoke", "events", "--local", "--port", fmt.Sprint(porttest.Port(t)))
	if code != 1 || !strings.Contains(errOut, "is `skiff run events` or `skiff dev --local` running?") {
		t.Errorf("nothing listening: exit %d\n%s", code, errOut)
	}

	run.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- run.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("skiff run after Ctrl-C: %v\n%s", err, runErr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("skiff run did not stop after SIGINT:\n%s", runErr.String())
	}
	if !strings.Contains(runErr.String(), "stopping (SIGTERM)") {
		t.Errorf("skiff run did not say it stopped the workload:\n%s", runErr.String())
	}
}
