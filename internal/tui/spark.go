package tui

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/skiffdev/skiff/internal/metrics/window"
	"github.com/skiffdev/skiff/internal/stats"
)

// levels are the eighths of a cell, from empty to full.
var levels = []rune(" ▁▂▃▄▅▆▇█")

// sparkline draws vs in one row, a cell each, scaled to their largest
// value: NaN (no sample) is blank, 0 the lowest bar.
func sparkline(vs []float64) string {
	top := 0.0
	for _, v := range vs {
		if !math.IsNaN(v) {
			top = max(top, v)
		}
	}
	var b strings.Builder
	for _, v := range vs {
		switch {
		case math.IsNaN(v):
			b.WriteRune(' ')
		case top == 0:
			b.WriteRune(levels[1])
		default:
			b.WriteRune(levels[1+int(math.Round(v/top*7))])
		}
	}
	return b.String()
}

// lastN is f of the series' last n points, NaN-padded on the left.
func lastN(s *window.Series, n int, f func(window.Point) float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = math.NaN()
	}
	pts := s.Points
	if len(pts) > n {
		pts = pts[len(pts)-n:]
	}
	for i, p := range pts {
		out[n-len(pts)+i] = f(p)
	}
	return out
}

// chart draws vs as columns of bars rows high, scaled to top (blank where
// NaN), the top row first.
func chart(vs []float64, rows int, top float64) []string {
	out := make([]string, rows)
	for r := range rows {
		var b strings.Builder
		floor := float64(rows-1-r) * 8 // eighths below this row
		for _, v := range vs {
			if math.IsNaN(v) {
				b.WriteRune(' ')
				continue
			}
			eighths := 1.0 // a sample of 0 still shows, as the lowest bar
			if top > 0 {
				eighths = max(1, math.Round(v/top*float64(rows*8)))
			}
			fill := min(8, max(0, eighths-floor))
			b.WriteRune(levels[int(fill)])
		}
		out[r] = b.String()
	}
	return out
}

// servingLines is the Serving pane: a chart of the last 15 minutes each
// of requests per second, p99 latency and errors per second, ending now.
func (w *workload) servingLines(width, h int, st *styles, now time.Time, err error) []string {
	var out []string
	if err != nil {
		out = append(out, st.bad.Render("  how the workloads serve could not be read: "+strings.ReplaceAll(err.Error(), "\n", " ")))
	}
	if len(w.serving.Points) == 0 {
		return append(out, st.dim.Render(fmt.Sprintf("  sampling how %s serves every %s…", w.name, SampleEvery)))
	}
	last, _ := w.serving.Last()
	span := window.DefaultKeep
	// A column a sample at most: more would leave gaps between them.
	cols := max(10, min(width-4, int(span/SampleEvery)))
	rows := max(1, (h-len(out))/3-1)
	charts := []struct {
		title string
		f     func(window.Point) float64
		value func(float64) string
	}{
		{"requests/s", func(p window.Point) float64 { return p.Rate }, stats.FormatRate},
		{"p99", func(p window.Point) float64 { return p.P99 }, stats.FormatSeconds},
		{"errors/s", func(p window.Point) float64 { return p.Errors }, stats.FormatRate},
	}
	for _, c := range charts {
		vs := fillGaps(w.serving.Columns(cols, span, now, c.f))
		top := math.NaN()
		for _, v := range vs {
			if !math.IsNaN(v) && (math.IsNaN(top) || v > top) {
				top = v
			}
		}
		head := fmt.Sprintf("  %s  now %s  max %s  (last %s)", c.title, c.value(c.f(last)), c.value(top), span)
		if math.IsNaN(top) {
			top = 0
		}
		out = append(out, st.header.Render(head))
		for _, l := range chart(vs, rows, top) {
			out = append(out, "  "+st.info.Render(l))
		}
	}
	return out
}

// fillGaps fills a blank column between two samples with the one before:
// samples a little late or early leave one column without its own.
func fillGaps(vs []float64) []float64 {
	for i := 1; i+1 < len(vs); i++ {
		if math.IsNaN(vs[i]) && !math.IsNaN(vs[i-1]) && !math.IsNaN(vs[i+1]) {
			vs[i] = vs[i-1]
		}
	}
	return vs
}
