package cli

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/project"
)

const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"

func TestLogsTraceFlags(t *testing.T) {
	f, _ := testFactory(t, false)
	parse := func(args ...string) (*LogsOptions, error) {
		var got *LogsOptions
		cmd := NewCmdLogs(f, func(_ context.Context, o *LogsOptions) error { got = o; return nil })
		cmd.SetArgs(args)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		err := cmd.Execute()
		return got, err
	}
	o, err := parse("--trace", strings.ToUpper(traceID))
	if err != nil || o.Trace != traceID || o.Since != time.Hour {
		t.Errorf("--trace ID: %v, %+v; want the id in lower case since 1h", err, o)
	}
	o, err = parse("--trace", "00-"+traceID+"-00f067aa0ba902b7-01", "--since", "10m")
	if err != nil || o.Trace != traceID || o.Since != 10*time.Minute {
		t.Errorf("--trace TRACEPARENT --since 10m: %v, %+v", err, o)
	}
	if o, err = parse("orders"); err != nil || o.Trace != "" || o.Since != 0 {
		t.Errorf("no --trace: %v, %+v", err, o)
	}
	for _, args := range [][]string{
		{"--trace", "abc"},
		{"--trace", ""},
		{"--trace", traceID, "-f"},
	} {
		if o, err := parse(args...); cmdutil.ExitCode(err) != cmdutil.ExitUsage || o != nil {
			t.Errorf("%v: exit %d (%v), want a usage error", args, cmdutil.ExitCode(err), err)
		}
	}
}

// logsSession serves scripted log lines.
type logsSession struct {
	fakeSession
	lines []engine.LogLine
	opts  engine.LogOptions
}

func (s *logsSession) Logs(_ context.Context, _ []project.Workload, o engine.LogOptions, out chan<- engine.LogLine) error {
	s.opts = o
	for _, l := range s.lines {
		out <- l
	}
	return nil
}

func TestLogsTraceRun(t *testing.T) {
	f, errOut := clusterProject(t)
	at := func(ms int) time.Time { return time.Date(2026, 12, 6, 13, 0, 0, ms*int(time.Millisecond), time.UTC) }
	ls := &logsSession{lines: []engine.LogLine{
		{Time: at(40), Workload: "orders", Pod: "orders-1", Container: "skiff-relay", Message: `{"msg":"delivered","trace_id":"` + traceID + `"}`},
		{Time: at(10), Workload: "orders", Pod: "orders-1", Container: "orders", Message: `{"msg":"request","trace_id":"` + traceID + `"}`},
		{Time: at(20), Workload: "orders", Pod: "orders-1", Container: "orders", Message: `{"msg":"request","trace_id":"0af7651916cd43dd8448eb211c80319c"}`},
		{Time: at(30), Workload: "orders", Pod: "orders-2", Container: "orders", Message: `INFO call trace_id=` + traceID},
	}}
	f.Session = func(context.Context, engine.SessionConfig) (engine.Session, error) { return ls, nil }
	code, out, stderr := runCLI(t, f, errOut, "logs", "--trace", traceID)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	want := "orders orders-1 {\"msg\":\"request\",\"trace_id\":\"" + traceID + "\"}\n" +
		"orders orders-2 INFO call trace_id=" + traceID + "\n" +
		"orders orders-1/skiff-relay {\"msg\":\"delivered\",\"trace_id\":\"" + traceID + "\"}\n"
	if out != want {
		t.Errorf("printed:\n%s\nwant:\n%s", out, want)
	}
	if ls.opts.Since != time.Hour || ls.opts.Follow {
		t.Errorf("asked for logs with %+v, want the last hour, not followed", ls.opts)
	}

	code, out, _ = runCLI(t, f, errOut, "logs", "--trace", traceID, "-o", "json")
	var times []time.Time
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var line engine.LogLine
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatalf("-o json line %q: %v", l, err)
		}
		times = append(times, line.Time)
	}
	if code != 0 || len(times) != 3 || !times[0].Equal(at(10)) || !times[2].Equal(at(40)) {
		t.Errorf("-o json: exit %d, times %v", code, times)
	}

	code, out, stderr = runCLI(t, f, errOut, "logs", "--trace", "11111111111111111111111111111111")
	if code != 0 || out != "" || !strings.Contains(stderr, "no line of trace 11111111111111111111111111111111") {
		t.Errorf("an unknown trace: exit %d, out %q, stderr %q", code, out, stderr)
	}
}
