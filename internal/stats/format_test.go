package stats

import (
	"math"
	"testing"
)

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{FormatRate(0), "0"},
		{FormatRate(4.254), "4.25"},
		{FormatRate(120.54), "120.5"},
		{FormatSeconds(math.NaN()), "-"},
		{FormatSeconds(0.00042), "0.4ms"},
		{FormatSeconds(0.12), "120ms"},
		{FormatSeconds(1.254), "1.25s"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
