package tui

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/stats"
)

// sample sends the dashboard 30 samples, one each SampleEvery up to now:
// orders' traffic climbs then falls, with errors in the middle and its
// p99 following the load; payments serves steadily; thumbnail (scaled to
// zero) serves nothing.
func sample(t *testing.T, m *Model) {
	t.Helper()
	for i := range 30 {
		at := now.Add(-time.Duration(29-i) * SampleEvery)
		load := int64(10 + 10*min(i, 29-i)) // 10..150 per 10 s
		var errs int64
		if i >= 12 && i < 16 {
			errs = int64(i - 11)
		}
		slow := int64(i % 7)
		orders := stats.Window{Pods: 2, Requests: load, Errors: errs,
			Duration: stats.Histogram{Bounds: stats.Bounds(), Counts: counts(load-slow, slow)}}
		payments := stats.Window{Pods: 1, Requests: 50,
			Duration: stats.Histogram{Bounds: stats.Bounds(), Counts: counts(50, 0)}}
		send(t, m, servingMsg{ServingUpdate: ServingUpdate{At: at, Window: SampleEvery, Stats: []engine.WorkloadStats{
			{Workload: "orders", Source: engine.SourcePods, Window: orders},
			{Workload: "payments", Source: engine.SourcePods, Window: payments},
			{Workload: "thumbnail", Source: engine.SourcePods},
		}}})
	}
}

// counts puts fast requests in the 2.5-5 ms bucket and slow ones in the
// 50-75 ms one.
func counts(fast, slow int64) []int64 {
	c := make([]int64, len(stats.Bounds())+1)
	c[3], c[7] = fast, slow
	return c
}

func TestSparkline(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		in   []float64
		want string
	}{
		{[]float64{0, 1, 2, 3, 4, 5, 6, 7}, "▁▂▃▄▅▆▇█"},
		{[]float64{nan, nan, 0, 0}, "  ▁▁"},
		{[]float64{5, 10}, "▅█"},
	} {
		if got := sparkline(tc.in); got != tc.want {
			t.Errorf("sparkline(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestFillGaps(t *testing.T) {
	nan := math.NaN()
	got := fillGaps([]float64{nan, 1, nan, 3, nan, nan, 4})
	if fmt.Sprint(got) != "[NaN 1 1 3 NaN NaN 4]" {
		t.Errorf("fillGaps = %v", got)
	}
}

func TestChart(t *testing.T) {
	got := chart([]float64{math.NaN(), 0, 2, 4}, 2, 4)
	want := []string{"   █", " ▁██"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("chart = %q, want %q", got, want)
	}
}

// The list shows the sparklines once samples come; the Serving pane
// charts them; a sample that cannot be read is said there.
func TestServingSamples(t *testing.T) {
	m, _ := newTestModel(t)
	if strings.Contains(m.frame(), "REQ/S") {
		t.Error("sparkline columns before any sample")
	}
	sample(t, m)
	frame := m.frame()
	if !strings.Contains(frame, "REQ/S") || !strings.Contains(frame, "█▇▆▅▅▄▃▂ 1.00") || !strings.Contains(frame, "████████ 5.00") {
		t.Errorf("no sparkline, or not orders' falling rate (at last 10 in 10 s) and payments' steady one (50):\n%s", frame)
	}
	press(t, m, "4")
	if frame = m.frame(); !strings.Contains(frame, "requests/s  now 1.00  max 15.0") || !strings.Contains(frame, "errors/s  now 0  max 0.40") {
		t.Errorf("Serving pane:\n%s", frame)
	}
	send(t, m, servingMsg{ServingUpdate: ServingUpdate{Err: errors.New("pods/proxy forbidden")}})
	if frame = m.frame(); !strings.Contains(frame, "how the workloads serve could not be read: pods/proxy forbidden") || !strings.Contains(frame, "requests/s") {
		t.Errorf("an error keeps the charts and says why:\n%s", frame)
	}
}
