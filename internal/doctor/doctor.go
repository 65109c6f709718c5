// Package doctor checks, before a build or a deploy finds out, that what a
// project needs is there: the languages' toolchains, registry credentials
// that may push, a reachable cluster where skiff may do what deploy does,
// nodes of the architectures the images are built for, and the serverless
// engines the project uses. Each check is independent; Run runs them at
// once.
package doctor

import (
	"context"
	"sync"
	"time"

	"github.com/skiffdev/skiff/internal/project"
)

// Reach bounds how long doctor waits for the cluster, or the bus, to
// answer.
const Reach = 5 * time.Second

// Status is how a check ended.
type Status string

// Statuses. Only Fail makes `skiff doctor` exit 1.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
	Skip Status = "skip"
)

// Result is one check's finding: what it found and, when it is not OK,
// how to fix it.
type Result struct {
	Check  string        `json:"check"`
	Status Status        `json:"status"`
	Detail string        `json:"detail"`
	Fix    string        `json:"fix,omitempty"`
	Took   time.Duration `json:"-"`
	Millis int64         `json:"ms"`
}

// Check is one thing to look at.
type Check struct {
	Name string
	Run  func(ctx context.Context) Result
}

// Run runs every check at once, each bounded by timeout, and returns the
// results in the order of checks. A check that does not return in time
// fails, saying so.
func Run(ctx context.Context, timeout time.Duration, checks []Check) []Result {
	out := make([]Result, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			start := time.Now()
			done := make(chan Result, 1)
			go func() { done <- c.Run(cctx) }()
			var r Result
			select {
			case r = <-done:
			case <-cctx.Done():
				r = Result{Status: Fail, Detail: "no answer within " + timeout.String(),
					Fix: "check the network, or run `skiff doctor -v` to see what it waits for"}
			}
			r.Check = c.Name
			r.Took = time.Since(start)
			r.Millis = r.Took.Milliseconds()
			out[i] = r
		}()
	}
	wg.Wait()
	return out
}

// Failed reports whether any result failed.
func Failed(rs []Result) bool {
	for _, r := range rs {
		if r.Status == Fail {
			return true
		}
	}
	return false
}

// Okay, Fails, Warns and Skips are a check's results.
func Okay(detail string) Result       { return Result{Status: OK, Detail: detail} }
func Fails(detail, fix string) Result { return Result{Status: Fail, Detail: detail, Fix: fix} }
func Warns(detail, fix string) Result { return Result{Status: Warn, Detail: detail, Fix: fix} }
func Skips(detail string) Result      { return Result{Status: Skip, Detail: detail} }

// Config is what the checks of a project's registry and cluster read.
type Config struct {
	// Project is resolved for the environment, with -n applied.
	Project *project.Project
	// Root is the folder of skiff.yaml (a workload's own chart is there).
	Root string
	// Kubeconfig is the kubeconfig file ("": the default ones).
	Kubeconfig string
	// KubeContext is its context ("": its current one).
	KubeContext string
	// Insecure lists registry hosts that may be reached over plain HTTP.
	Insecure []string
}
