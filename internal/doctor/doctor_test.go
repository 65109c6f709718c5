package doctor

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Checks run at once: the whole run takes as long as the slowest check,
// results keep their order, and a check that hangs fails with a message.
func TestRunConcurrentlyInOrder(t *testing.T) {
	release := make(chan struct{})
	started := make(chan string, 3)
	check := func(name string, wait bool) Check {
		return Check{Name: name, Run: func(ctx context.Context) Result {
			started <- name
			if wait {
				<-ctx.Done() // hangs until its deadline
			}
			<-release
			return Okay(name + " is fine")
		}}
	}
	done := make(chan []Result)
	go func() {
		done <- Run(context.Background(), 200*time.Millisecond, []Check{check("a", false), check("b", true), check("c", false)})
	}()
	for range 3 { // all three start before any is let go: they run at once
		<-started
	}
	close(release)
	rs := <-done
	if rs[0].Check != "a" || rs[1].Check != "b" || rs[2].Check != "c" {
		t.Fatalf("order = %v", rs)
	}
	if rs[0].Status != OK || rs[2].Status != OK {
		t.Errorf("a, c = %+v, %+v", rs[0], rs[2])
	}
	if rs[1].Status != Fail || !strings.Contains(rs[1].Detail, "no answer within 200ms") {
		t.Errorf("the hung check = %+v", rs[1])
	}
	if !Failed(rs) || Failed(rs[:1]) {
		t.Error("Failed does not tell")
	}
}

func TestToolchain(t *testing.T) {
	ctx := context.Background()
	fakeRun := func(have map[string]string) Runner {
		return func(_ context.Context, name string, args ...string) (string, error) {
			cmd := strings.Join(append([]string{name}, args...), " ")
			if out, ok := have[cmd]; ok {
				return out, nil
			}
			if _, ok := have[name]; ok {
				return "", errors.New("exit status 1: No module named pip")
			}
			return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
		}
	}
	r := Toolchain("go", []string{"orders"}, fakeRun(map[string]string{"go env GOVERSION": "go1.26.8"})).Run(ctx)
	if r.Status != OK || r.Detail != "go1.26.8" {
		t.Errorf("go = %+v", r)
	}
	r = Toolchain("node", []string{"front", "api"}, fakeRun(map[string]string{"node --version": "v20.1.0"})).Run(ctx)
	if r.Status != Fail || r.Detail != "npm is not installed (needed by front, api)" || !strings.Contains(r.Fix, "npm") {
		t.Errorf("node without npm = %+v", r)
	}
	r = Toolchain("python", []string{"thumbs"}, fakeRun(map[string]string{"python3 --version": "Python 3.11.2", "python3": ""})).Run(ctx)
	if r.Status != Fail || !strings.Contains(r.Detail, "`python3 -m pip --version` failed") || !strings.Contains(r.Fix, "ensurepip") {
		t.Errorf("python without pip = %+v", r)
	}
}
