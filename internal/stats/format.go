package stats

import (
	"fmt"
	"math"
)

// FormatRate writes a rate per second as status, top and the dashboard
// show it: "0", "4.25", "120.5".
func FormatRate(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// FormatSeconds writes a duration in seconds as a person reads it: "0.4ms",
// "3.7ms", "120ms", "1.25s"; "-" for NaN (nothing observed).
func FormatSeconds(s float64) string {
	switch {
	case math.IsNaN(s):
		return "-"
	case s < 0.01:
		return fmt.Sprintf("%.1fms", s*1000)
	case s < 1:
		return fmt.Sprintf("%.0fms", s*1000)
	}
	return fmt.Sprintf("%.2fs", s)
}
