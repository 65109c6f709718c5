package dev

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/skiffdev/skiff/internal/build"
)

// fakeClock hands out timers the test fires by hand.
type fakeClock struct {
	mu     sync.Mutex
	timers []chan time.Time
	asked  chan struct{}
}

func newFakeClock() *fakeClock { return &fakeClock{asked: make(chan struct{}, 100)} }

func (c *fakeClock) After(time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.timers = append(c.timers, ch)
	c.asked <- struct{}{}
	return ch
}

// fireLast fires the newest timer (the one the watcher waits on).
func (c *fakeClock) fireLast() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timers[len(c.timers)-1] <- time.Time{}
}

func within(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestWatcherCoalescesABurstAndSkipsWhatTheBuildDoesNotRead(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"a/node_modules/x", "b"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "a", ".gitignore"), []byte("out/\n*.log\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	inA, err := build.LoadInputs(filepath.Join(root, "a"), "node")
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	w := &Watcher{
		Sources:  []Source{{Workload: "a", Dir: filepath.Join(root, "a"), Skip: inA.Skip}, {Workload: "b", Dir: filepath.Join(root, "b")}},
		Manifest: filepath.Join(root, "skiff.yaml"),
		After:    clock.After,
	}
	events := make(chan fsnotify.Event)
	out := make(chan Change, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = w.loop(ctx, events, nil, nil, out) }()
	send := func(rel string) { events <- fsnotify.Event{Name: filepath.Join(root, rel), Op: fsnotify.Write} }

	// Ignored: node_modules, .gitignore'd files; they start no quiet time.
	send("a/node_modules/x/index.js")
	send("a/debug.log")
	send("a/out/bundle.js")
	// A burst: three saves of a, one of b, and skiff.yaml.
	send("a/index.js")
	within(t, clock.asked, "the quiet time after the first save")
	send("a/handler.js")
	within(t, clock.asked, "the quiet time restarted by the second save")
	send("b/main.go")
	within(t, clock.asked, "the quiet time restarted by the third save")
	send("skiff.yaml")
	within(t, clock.asked, "the quiet time restarted by skiff.yaml")
	select {
	case c := <-out:
		t.Fatalf("a change was reported before the quiet time ended: %+v", c)
	default:
	}
	clock.fireLast()
	select {
	case c := <-out:
		if strings.Join(c.Workloads, ",") != "a,b" || !c.Manifest {
			t.Errorf("change %+v, want a and b and the manifest, once", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no change after the quiet time")
	}
	// The ignored files asked for no timer of their own: 4 in all.
	clock.mu.Lock()
	n := len(clock.timers)
	clock.mu.Unlock()
	if n != 4 {
		t.Errorf("%d quiet times started, want 4 (one per watched save)", n)
	}
}

// TestCyclesOneAtATimeAndOneMoreQueued holds a cycle of "a" while more
// requests arrive: exactly one more cycle runs after it, never two at once;
// "b" runs meanwhile.
func TestCyclesOneAtATimeAndOneMoreQueued(t *testing.T) {
	started := make(chan string, 10)
	release := make(chan struct{})
	var mu sync.Mutex
	running, maxRunning := map[string]int{}, 0
	runs := map[string]int{}
	c := &Cycles{Run: func(ctx context.Context, w string) {
		mu.Lock()
		running[w]++
		maxRunning = max(maxRunning, running[w])
		runs[w]++
		mu.Unlock()
		started <- w
		if w == "a" {
			<-release
		}
		mu.Lock()
		running[w]--
		mu.Unlock()
	}}
	ctx, cancel := context.WithCancel(context.Background())
	c.Request(ctx, "a")
	if w := <-started; w != "a" {
		t.Fatalf("started %s", w)
	}
	for range 5 { // saves while a's cycle runs
		c.Request(ctx, "a")
	}
	c.Request(ctx, "b")
	if w := <-started; w != "b" {
		t.Fatalf("b did not run while a's cycle ran (got %s)", w)
	}
	release <- struct{}{} // the first cycle of a ends
	if w := <-started; w != "a" {
		t.Fatalf("the queued cycle of a did not run (got %s)", w)
	}
	release <- struct{}{}
	cancel()
	c.Wait()
	close(release)
	mu.Lock()
	defer mu.Unlock()
	if runs["a"] != 2 || runs["b"] != 1 || maxRunning != 1 {
		t.Errorf("runs %v, at most %d of one workload at once; want a twice, b once, one at a time", runs, maxRunning)
	}
}

func TestAChangeOutsideAWorkloadCyclesEveryWorkloadThatBuildsFromIt(t *testing.T) {
	root := t.TempDir()
	write := func(rel, data string) {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("shared/go.mod", "module example.com/shared\n\ngo 1.22\n")
	write("shared/greet.go", "package shared\n")
	for _, w := range []string{"a", "b"} {
		write(w+"/go.mod", "module example.com/"+w+"\n\ngo 1.22\n\nrequire example.com/shared v0.0.0\n\nreplace example.com/shared => ../shared\n")
		write(w+"/main.go", "package main\n")
	}
	write("c/go.mod", "module example.com/c\n\ngo 1.22\n")
	var sources []Source
	for _, w := range []string{"a", "b", "c"} {
		dir := filepath.Join(root, w)
		sources = append(sources, Source{Workload: w, Dir: dir})
		outside, err := (&build.Builder{}).OutsideInputs(context.Background(), dir, "go")
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range outside {
			sources = append(sources, outsideSource(w, o))
		}
	}
	w := &Watcher{Sources: sources}
	for path, want := range map[string]string{
		"shared/greet.go":      "a b",
		"shared/.git/index":    "",
		"a/main.go":            "a",
		"c/main.go":            "c",
		"unrelated/readme.txt": "",
	} {
		got, _ := w.classify(filepath.Join(root, filepath.FromSlash(path)))
		if strings.Join(got, " ") != want {
			t.Errorf("a change of %s cycles %q, want %q", path, got, want)
		}
	}
}
