package window

import (
	"math"
	"time"

	"github.com/skiffdev/skiff/internal/engine"
)

// DefaultKeep is how far back a Series goes: the dashboard's chart.
const DefaultKeep = 15 * time.Minute

// Point is what a workload served over one sample's window.
type Point struct {
	At time.Time
	// Rate and Errors are requests and errors (5xx, timeouts) per second.
	Rate, Errors float64
	// P99 is the p99 duration in seconds; NaN when nothing was served.
	P99 float64
	// Pods is how many pods' figures there were.
	Pods int
}

// PointOf is the point of a read made at at over window: rates are over
// the span the figures cover when they say (a pod's relay rounds a
// window to its 10 s slots), else over window.
func PointOf(at time.Time, st engine.WorkloadStats, window time.Duration) Point {
	secs := window.Seconds()
	if s := st.Window.Seconds(); s > 0 {
		secs = s
	}
	p := Point{At: at, P99: st.Window.Duration.Quantile(0.99), Pods: st.Window.Pods}
	if secs > 0 {
		p.Rate = float64(st.Window.Requests) / secs
		p.Errors = float64(st.Window.Errors) / secs
	}
	return p
}

// Series is a workload's points, oldest first, over the last Keep
// (DefaultKeep when 0).
type Series struct {
	Keep   time.Duration
	Points []Point
}

// Add appends p and drops the points older than Keep before it.
func (s *Series) Add(p Point) {
	s.Points = append(s.Points, p)
	keep := s.Keep
	if keep <= 0 {
		keep = DefaultKeep
	}
	i := 0
	for i < len(s.Points) && p.At.Sub(s.Points[i].At) > keep {
		i++
	}
	s.Points = s.Points[i:]
}

// Last is the newest point; ok is false when there is none.
func (s *Series) Last() (p Point, ok bool) {
	if len(s.Points) == 0 {
		return Point{}, false
	}
	return s.Points[len(s.Points)-1], true
}

// Columns resamples the series into n columns over the span ending at
// end: each column is the largest value (of f) of the points in its part
// of the span, NaN where there is none.
func (s *Series) Columns(n int, span time.Duration, end time.Time, f func(Point) float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = math.NaN()
	}
	if n <= 0 || span <= 0 {
		return out
	}
	start := end.Add(-span)
	for _, p := range s.Points {
		if p.At.Before(start) || p.At.After(end) {
			continue
		}
		i := min(int(float64(p.At.Sub(start))/float64(span)*float64(n)), n-1)
		v := f(p)
		if math.IsNaN(v) {
			continue
		}
		if math.IsNaN(out[i]) || v > out[i] {
			out[i] = v
		}
	}
	return out
}
