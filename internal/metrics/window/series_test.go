package window

import (
	"math"
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/stats"
)

func TestSeriesKeepsFifteenMinutes(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC)
	var s Series
	for i := range 100 {
		s.Add(Point{At: t0.Add(time.Duration(i) * 10 * time.Second), Rate: float64(i)})
	}
	// 99 × 10 s = 990 s; kept: the points at most 900 s before the last.
	if len(s.Points) != 91 || s.Points[0].Rate != 9 {
		t.Errorf("kept %d points from %g", len(s.Points), s.Points[0].Rate)
	}
	last, ok := s.Last()
	if !ok || last.Rate != 99 {
		t.Errorf("last %+v", last)
	}
	cols := s.Columns(3, 30*time.Second, last.At, func(p Point) float64 { return p.Rate })
	if cols[0] != 96 || cols[1] != 97 || cols[2] != 99 {
		t.Errorf("columns %v", cols)
	}
	cols = s.Columns(4, time.Hour, last.At, func(p Point) float64 { return p.Rate })
	if !math.IsNaN(cols[0]) || !math.IsNaN(cols[2]) || cols[3] != 99 {
		t.Errorf("an hour in 4 columns: %v", cols)
	}
}

func TestPointOf(t *testing.T) {
	h := stats.Histogram{Bounds: []float64{0.1, 1}, Counts: []int64{0, 10, 0}}
	p := PointOf(time.Time{}, engine.WorkloadStats{Window: stats.Window{Requests: 10, Errors: 5, Duration: h, Pods: 1}}, 10*time.Second)
	if p.Rate != 1 || p.Errors != 0.5 || math.Abs(p.P99-0.991) > 1e-9 || p.Pods != 1 {
		t.Errorf("%+v", p)
	}
	if p := PointOf(time.Time{}, engine.WorkloadStats{}, 10*time.Second); !math.IsNaN(p.P99) || p.Rate != 0 {
		t.Errorf("nothing served: %+v", p)
	}
	// The relay's window covers whole slots: the rate is over what it says.
	t0 := time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC)
	p = PointOf(t0, engine.WorkloadStats{Window: stats.Window{Start: t0.Add(-20 * time.Second), End: t0, Requests: 10}}, 10*time.Second)
	if p.Rate != 0.5 {
		t.Errorf("over the 20 s the figures cover: %+v", p)
	}
}
