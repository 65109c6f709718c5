package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, ExitOK},
		{"plain", errors.New("boom"), ExitFailure},
		{"usage", Usagef("bad flag %q", "--x"), ExitUsage},
		{"wrapped usage", fmt.Errorf("init: %w", Usagef("missing --lang")), ExitUsage},
		{"silent", &SilentError{Code: 3}, 3},
		{"canceled", fmt.Errorf("build: %w", context.Canceled), ExitCancel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ExitCode(tt.err); got != tt.want {
				t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}
