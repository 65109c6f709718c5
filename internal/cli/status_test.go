package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/stats"
)

func (s *fakeSession) Stats(_ context.Context, ws []project.Workload, o engine.StatsOptions) ([]engine.WorkloadStats, error) {
	s.calls = append(s.calls, "stats")
	s.statsOpts = append(s.statsOpts, o)
	if s.statsErr != nil {
		return nil, s.statsErr
	}
	st := s.stats[0]
	if len(s.stats) > 1 {
		s.stats = s.stats[1:]
	}
	return st, nil
}

// durations is a histogram of the proxy's bounds with the given counts
// at the first bounds.
func durations(sum float64, counts ...int64) stats.Histogram {
	h := stats.Histogram{Bounds: stats.Bounds(), Counts: make([]int64, len(stats.Bounds())+1), Sum: sum}
	copy(h.Counts, counts)
	return h
}

func servingFixture() []engine.WorkloadStats {
	return []engine.WorkloadStats{{
		Workload: "orders", Source: engine.SourcePods,
		Window: stats.Window{Pods: 2, Requests: 600, Errors: 6, Duration: durations(3, 300, 200, 94, 6), ColdStarts: 1,
			ColdStartWait: stats.Histogram{Bounds: []float64{1}, Counts: []int64{1, 0}, Sum: 0.82},
			Triggers:      map[string]stats.Trigger{"orders-created": {Delivered: 30, Failed: 3, Retried: 2, DeadLettered: 1, Pending: 4, Latency: durations(0.3, 0, 0, 0, 30)}}},
		Unread: map[string]string{"orders-x": "its skiff-relay did not answer in 5s"},
	}}
}

func TestStatusWideAddsHowEachWorkloadServed(t *testing.T) {
	f, errOut := clusterProject(t)
	ready := &engine.Status{Workload: "orders", Kind: "service", State: engine.StateReady, Ready: 2, Desired: 2, Revision: 2,
		Events: &engine.EventLag{Lag: 4, DeadLetters: 1}}
	fs := &fakeSession{statuses: [][]*engine.Status{{ready}}, stats: [][]engine.WorkloadStats{servingFixture()}}
	onFakeSession(f, fs)
	f.Globals.Output = cmdutil.FormatWide
	if err := statusRun(context.Background(), &StatusOptions{Factory: f, Timeout: time.Minute, Serving: servingFlags{Window: time.Minute}}); err != nil {
		t.Fatal(err)
	}
	out := f.IOStreams.Out.(*bytes.Buffer).String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header, a workload and a trigger row:\n%s", out)
	}
	header := strings.Fields(lines[0])
	if header[len(header)-7] != "RPS" || header[len(header)-1] != "EVENTS" {
		t.Errorf("header %q", lines[0])
	}
	// 600 requests in 1m: 10/s; 6 errors: 1%; p50 in the first bucket
	// (≤ 0.5 ms), p99 at the top of the third (2.5 ms); one cold start of
	// 820 ms.
	for _, want := range []string{"10.0", "1.0%", "0.5ms", "2.5ms", "1", "(820ms)", "lag", "4,", "1", "dead"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("workload row lacks %q: %q", want, lines[1])
		}
	}
	for _, want := range []string{"└ orders-created", "0.50", "9.1%", "30 delivered, 2 retried, 1 dead, lag 4"} {
		if !strings.Contains(lines[2], want) {
			t.Errorf("trigger row lacks %q: %q", want, lines[2])
		}
	}
	if !strings.Contains(errOut.String(), "orders: the figures of pod orders-x are left out: its skiff-relay did not answer in 5s") {
		t.Errorf("stderr:\n%s", errOut)
	}
	if len(fs.statsOpts) != 1 || fs.statsOpts[0].Window != time.Minute {
		t.Errorf("asked for %+v", fs.statsOpts)
	}
}

func TestStatusJSONCarriesTheFiguresAndIdle(t *testing.T) {
	f, errOut := clusterProject(t)
	idle := &engine.Status{Workload: "orders", Kind: "function", State: engine.StateIdle, Desired: 0}
	fs := &fakeSession{statuses: [][]*engine.Status{{idle}}, stats: [][]engine.WorkloadStats{{{Workload: "orders", Source: engine.SourcePods}}}}
	onFakeSession(f, fs)
	f.Globals.Output = cmdutil.FormatJSON
	if err := statusRun(context.Background(), &StatusOptions{Factory: f, Timeout: time.Minute, Serving: servingFlags{Window: 5 * time.Minute, Prometheus: "http://127.0.0.1:9090"}}); err != nil {
		t.Fatal(err)
	}
	var got []engine.Status
	if err := json.Unmarshal(f.IOStreams.Out.(*bytes.Buffer).Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	s := got[0].Serving
	if s == nil || !s.Idle || s.Window != "5m0s" || s.Source != engine.SourcePods || s.P99 != nil {
		t.Errorf("serving %+v", s)
	}
	if fs.statsOpts[0].Prometheus != "http://127.0.0.1:9090" {
		t.Errorf("--prometheus not passed: %+v", fs.statsOpts[0])
	}
	if errOut.Len() != 0 {
		t.Errorf("-o json wrote notes to stderr: %s", errOut)
	}

	// -o wide of the same: "idle", and a note on why.
	f.IOStreams.Out.(*bytes.Buffer).Reset()
	f.Globals.Output = cmdutil.FormatWide
	fs.statuses = [][]*engine.Status{{idle}}
	if err := statusRun(context.Background(), &StatusOptions{Factory: f, Timeout: time.Minute, Serving: servingFlags{Window: 5 * time.Minute}}); err != nil {
		t.Fatal(err)
	}
	if out := f.IOStreams.Out.(*bytes.Buffer).String(); !strings.Contains(out, "idle") {
		t.Errorf("table:\n%s", out)
	}
	if !strings.Contains(errOut.String(), "orders: idle: no pod runs, so there is nothing served in the last 5m0s to read") {
		t.Errorf("stderr:\n%s", errOut)
	}
}

// The plain table reads no figures; figures that cannot be read leave the
// statuses standing, with a warning.
func TestStatusFiguresOnlyWhenAskedAndNeverFatal(t *testing.T) {
	f, errOut := clusterProject(t)
	ready := &engine.Status{Workload: "orders", Kind: "service", State: engine.StateReady, Ready: 1, Desired: 1}
	fs := &fakeSession{statuses: [][]*engine.Status{{ready}}, statsErr: errors.New(`pods "orders-1" is forbidden: cannot get resource "pods/proxy"`)}
	onFakeSession(f, fs)
	if err := statusRun(context.Background(), &StatusOptions{Factory: f, Timeout: time.Minute, Serving: servingFlags{Window: time.Minute}}); err != nil {
		t.Fatal(err)
	}
	if len(fs.statsOpts) != 0 {
		t.Error("the plain table read the figures")
	}
	f.Globals.Output = cmdutil.FormatWide
	if err := statusRun(context.Background(), &StatusOptions{Factory: f, Timeout: time.Minute, Serving: servingFlags{Window: time.Minute}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut.String(), `Warning: how the workloads serve could not be read: pods "orders-1" is forbidden`) {
		t.Errorf("stderr:\n%s", errOut)
	}
}

func TestStatusServingFlags(t *testing.T) {
	f, _ := testFactory(t, false)
	var got *StatusOptions
	cmd := NewCmdStatus(f, func(_ context.Context, o *StatusOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"--window", "1m", "--prometheus", "http://127.0.0.1:9090"})
	if err := cmd.Execute(); err != nil || got.Serving.Window != time.Minute || got.Serving.Prometheus != "http://127.0.0.1:9090" {
		t.Fatalf("%v %+v", err, got)
	}
	for _, args := range [][]string{{"--window", "0s"}, {"--window", "10ms"}, {"--prometheus", "prometheus:9090"}} {
		ran := false
		cmd := NewCmdStatus(f, func(context.Context, *StatusOptions) error { ran = true; return nil })
		cmd.SetArgs(args)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		if err := cmd.Execute(); cmdutil.ExitCode(err) != cmdutil.ExitUsage || ran {
			t.Errorf("%v: exit %d (%v), ran %v", args, cmdutil.ExitCode(err), err, ran)
		}
	}
}

// -o wide is a usage error on a command without it, and its window is
// bounded by what the pods keep.
func TestWideOnlyWhereItIs(t *testing.T) {
	f, errOut := clusterProject(t)
	code, _, stderr := runCLI(t, f, errOut, "history", "orders", "-o", "wide")
	if code != cmdutil.ExitUsage || !strings.Contains(stderr, "this command has no -o wide") {
		t.Errorf("history -o wide: exit %d:\n%s", code, stderr)
	}
	fs := &fakeSession{statuses: [][]*engine.Status{{{Workload: "orders", State: engine.StateReady}}}}
	onFakeSession(f, fs)
	code, _, stderr = runCLI(t, f, errOut, "status", "-o", "wide", "--window", "1h")
	if code != cmdutil.ExitUsage || !strings.Contains(stderr, "longer than the 15m0s each pod keeps") {
		t.Errorf("status --window 1h: exit %d:\n%s", code, stderr)
	}
}

// A workload whose pods served nothing shows zeros; "idle" is for one
// with no pod.
func TestServingCells(t *testing.T) {
	quiet := engine.Summarize(engine.WorkloadStats{Source: engine.SourcePods, Window: stats.Window{Pods: 2}}, time.Minute)
	if got := servingCells(quiet, nil); !strings.HasPrefix(got, "0\t0%\t-\t-\t0\t-") {
		t.Errorf("pods that served nothing: %q", got)
	}
	gone := engine.Summarize(engine.WorkloadStats{Source: engine.SourcePods}, time.Minute)
	if got := servingCells(gone, &engine.EventLag{Lag: 2}); got != "idle\t-\t-\t-\t0\tlag 2" {
		t.Errorf("no pod: %q", got)
	}
	if got := servingCells(nil, nil); got != "?\t?\t?\t?\t?\t-" {
		t.Errorf("not read: %q", got)
	}
}
