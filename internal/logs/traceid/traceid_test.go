package traceid

import (
	"strings"
	"testing"
	"time"
)

const (
	trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	other = "0af7651916cd43dd8448eb211c80319c"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]string{
		trace:                                  trace,
		strings.ToUpper(trace):                 trace,
		" " + trace + "\n":                     trace,
		"00-" + trace + "-00f067aa0ba902b7-01": trace,
		"00-" + other + "-b7ad6b7169203331-00": other,
		"4bf92f3577b34da6a3ce929d0e0e473":      "",
		"4bf92f3577b34da6a3ce929d0e0e47366":    "",
		"4bf92f3577b34da6a3ce929d0e0e473g":     "",
		"00000000000000000000000000000000":     "",
		"00-zz-00f067aa0ba902b7-01":            "",
		"":                                     "",
	} {
		got, err := Parse(in)
		if want == "" {
			if err == nil {
				t.Errorf("Parse(%q) = %q, want an error", in, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestOf(t *testing.T) {
	for msg, want := range map[string]string{
		`{"time":"x","level":"INFO","msg":"request","trace_id":"` + trace + `"}`: trace,
		`{"msg":"request","trace_id":"` + strings.ToUpper(trace) + `"}`:          trace,
		`{"msg":"listening"}`: "",
		`{"msg":"mentions trace_id=` + trace + ` in a field","trace_id":"` + other + `"}`: other,
		`{"msg":"request","trace_id":42}`:                                                 "",
		`2026-12-06 13:00:00 INFO request GET / 200 trace_id=` + trace + ` 1.2ms`:         trace,
		`INFO trace_id="` + trace + `" done`:                                              trace,
		`trace_id=` + trace:                                                               trace,
		`INFO xtrace_id=` + other + ` trace_id=` + trace:                                  trace,
		`INFO xtrace_id=` + other:                                                         "",
		`INFO {broken json trace_id=` + trace:                                             trace,
		`plain text without one`:                                                          "",
	} {
		if got := Of(msg); got != want {
			t.Errorf("TraceID(%q) = %q, want %q", msg, got, want)
		}
	}
}

func TestFilterKeepsTheTraceInTimeOrder(t *testing.T) {
	at := func(ms int) time.Time { return time.Date(2026, 12, 6, 13, 0, 0, ms*int(time.Millisecond), time.UTC) }
	in := make(chan Line, 10)
	for _, l := range []Line{
		{Time: at(30), Workload: "fn", Pod: "fn-1", Container: "fn", Message: `{"msg":"received event","trace_id":"` + trace + `"}`},
		{Time: at(10), Workload: "api", Pod: "api-1", Container: "api", Message: `{"msg":"request","trace_id":"` + trace + `"}`},
		{Time: at(5), Workload: "api", Pod: "api-1", Container: "api", Message: `{"msg":"request","trace_id":"` + other + `"}`},
		{Time: at(20), Workload: "greet", Pod: "greet-1", Container: "greet", Message: `INFO request trace_id=` + trace},
		{Time: at(25), Workload: "fn", Pod: "fn-1", Container: "skiff-relay", Message: `{"msg":"delivered","trace_id":"` + trace + `"}`},
		{Time: at(25), Workload: "fn", Pod: "fn-1", Container: "fn", Message: `{"msg":"same time, came later","trace_id":"` + trace + `"}`},
		{Time: at(1), Workload: "api", Pod: "api-1", Container: "api", Message: `{"msg":"listening"}`},
	} {
		in <- l
	}
	close(in)
	var got []string
	for _, l := range Filter(in, trace) {
		got = append(got, l.Container+"@"+l.Time.Format(".000"))
	}
	want := "api@.010 greet@.020 skiff-relay@.025 fn@.025 fn@.030"
	if strings.Join(got, " ") != want {
		t.Errorf("trace lines = %s\nwant          %s", strings.Join(got, " "), want)
	}
}
