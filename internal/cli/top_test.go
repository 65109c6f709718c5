package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/stats"
)

func podsRead(pods map[string]int64) []engine.WorkloadStats {
	r := engine.WorkloadStats{Workload: "orders", Source: engine.SourcePods, Pods: map[string]stats.Window{}}
	for pod, n := range pods {
		r.Pods[pod] = stats.Window{Pods: 1, Requests: n, Duration: durations(0.01*float64(n), n)}
		r.Window.Merge(r.Pods[pod])
	}
	return []engine.WorkloadStats{r}
}

// runTop runs top for len(fs.stats) refreshes, the clock advancing 2s
// each.
func runTop(t *testing.T, f *cmdutil.Factory, fs *fakeSession, window time.Duration) {
	t.Helper()
	ticks := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	t0 := time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC)
	n := 0
	opts := &TopOptions{Factory: f, Serving: servingFlags{Window: window}, Interval: 2 * time.Second, Ticks: ticks,
		Now: func() time.Time { n++; return t0.Add(time.Duration(n-1) * 2 * time.Second) }}
	done := make(chan error, 1)
	go func() { done <- topRun(ctx, opts) }()
	for range len(fs.stats) - 1 {
		ticks <- time.Time{} // taken once the refresh before is printed
	}
	cancel() // after the refresh of the last tick: it is taken, so printed

	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// top keeps what it read: after a scale to zero the window so far stays.
func TestTopKeepsTheWindowAcrossAScaleToZero(t *testing.T) {
	f, _ := clusterProject(t)
	running := &engine.Status{Workload: "orders", Kind: "function", State: engine.StateReady, Ready: 2, Desired: 2}
	idle := &engine.Status{Workload: "orders", Kind: "function", State: engine.StateIdle}
	fs := &fakeSession{
		statuses: [][]*engine.Status{{running}, {running}, {idle}},
		stats:    [][]engine.WorkloadStats{podsRead(map[string]int64{"a": 40, "b": 20}), podsRead(map[string]int64{"a": 45}), podsRead(nil), podsRead(nil)},
	}
	onFakeSession(f, fs)
	runTop(t, f, fs, time.Minute)
	out := f.IOStreams.Out.(*bytes.Buffer).String()
	frames := strings.Split(strings.TrimSpace(out), "\n\n")
	if len(frames) != 4 {
		t.Fatalf("want 4 refreshes, one after the other (not a terminal):\n%s", out)
	}
	// 60 requests in 1m: 1/s; then a (45) and b's last (20): 65; at zero
	// pods the same.
	for i, want := range []string{"1.00", "1.08", "1.08", "1.08"} {
		row := strings.Split(frames[i], "\n")[2]
		if !strings.Contains(row, want) {
			t.Errorf("refresh %d: want %s/s:\n%s", i+1, want, frames[i])
		}
	}
	if !strings.Contains(frames[0], "14:00:00  last 1m0s, from the pods") || !strings.Contains(frames[3], "14:00:06") {
		t.Errorf("headers:\n%s", out)
	}
	if !strings.Contains(frames[3], "Idle") || strings.Contains(frames[3], "idle: no pod ran") {
		t.Errorf("at zero pods with figures kept:\n%s", frames[3])
	}
	if !fs.closed {
		t.Error("session left open")
	}
}

func TestTopOnceJSON(t *testing.T) {
	f, _ := clusterProject(t)
	f.Globals.Output = cmdutil.FormatJSON
	fs := &fakeSession{
		statuses: [][]*engine.Status{{{Workload: "orders", State: engine.StateIdle}}},
		stats:    [][]engine.WorkloadStats{podsRead(nil)},
	}
	onFakeSession(f, fs)
	if err := topRun(context.Background(), &TopOptions{Factory: f, Serving: servingFlags{Window: time.Minute}, Once: true}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(f.IOStreams.Out.(*bytes.Buffer).String()), "\n")
	var frame topFrame
	if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &frame) != nil {
		t.Fatalf("want one JSON line: %q", lines)
	}
	if s := frame.Workloads[0].Serving; s == nil || !s.Idle || s.Source != engine.SourcePods {
		t.Errorf("%+v", frame.Workloads[0])
	}
}

// On a terminal each refresh redraws the screen; figures that cannot be
// read are said in the frame, and top goes on.
func TestTopRedrawsOnATerminal(t *testing.T) {
	f, _ := clusterProject(t)
	f.IOStreams.SetTTY(true)
	fs := &fakeSession{
		statuses: [][]*engine.Status{{{Workload: "orders", State: engine.StateReady, Ready: 1, Desired: 1}}},
		stats:    [][]engine.WorkloadStats{podsRead(map[string]int64{"a": 1}), podsRead(map[string]int64{"a": 1})},
		statsErr: nil,
	}
	onFakeSession(f, fs)
	runTop(t, f, fs, time.Minute)
	out := f.IOStreams.Out.(*bytes.Buffer).String()
	if n := strings.Count(out, "\x1b[H\x1b[2J"); n != 2 {
		t.Errorf("%d redraws, want 2:\n%q", n, out)
	}

	f.IOStreams.Out.(*bytes.Buffer).Reset()
	f.IOStreams.SetTTY(false)
	fs.statsErr = io.ErrUnexpectedEOF
	if err := topRun(context.Background(), &TopOptions{Factory: f, Serving: servingFlags{Window: time.Minute}, Once: true}); err != nil {
		t.Fatal(err)
	}
	if out := f.IOStreams.Out.(*bytes.Buffer).String(); !strings.Contains(out, "the figures could not be read: unexpected EOF") || !strings.Contains(out, "orders") {
		t.Errorf("%s", out)
	}
}

func TestTopFlags(t *testing.T) {
	f, _ := testFactory(t, false)
	var got *TopOptions
	cmd := NewCmdTop(f, func(_ context.Context, o *TopOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"orders", "--window", "1m", "--interval", "5s", "--once"})
	if err := cmd.Execute(); err != nil || got.Serving.Window != time.Minute || got.Interval != 5*time.Second || !got.Once || got.Workloads[0] != "orders" {
		t.Fatalf("%v %+v", err, got)
	}
	cmd = NewCmdTop(f, func(_ context.Context, o *TopOptions) error { got = o; return nil })
	cmd.SetArgs(nil)
	if err := cmd.Execute(); err != nil || got.Serving.Window != engine.DefaultWindow || got.Interval != 2*time.Second {
		t.Fatalf("defaults: %v %+v", err, got)
	}
	for _, args := range [][]string{{"--interval", "100ms"}, {"--window", "0s"}, {"--prometheus", "ftp://x"}} {
		ran := false
		cmd := NewCmdTop(f, func(context.Context, *TopOptions) error { ran = true; return nil })
		cmd.SetArgs(args)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		if err := cmd.Execute(); cmdutil.ExitCode(err) != cmdutil.ExitUsage || ran {
			t.Errorf("%v: exit %d (%v), ran %v", args, cmdutil.ExitCode(err), err, ran)
		}
	}
}
