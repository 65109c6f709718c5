package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/skiffdev/skiff/internal/prompt"
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
		{"prompt interrupted", fmt.Errorf("init: %w", prompt.ErrInterrupted), ExitCancel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ExitCode(tt.err); got != tt.want {
				t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

// Nothing more is said after a command that already said it, or after
// Ctrl-C at a prompt; every other error gets its "Error:" line.
func TestQuiet(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{&SilentError{Code: 1}, true},
		{fmt.Errorf("init: %w", prompt.ErrInterrupted), true},
		{errors.New("boom"), false},
		{Usagef("bad"), false},
		{context.Canceled, false},
	} {
		if got := Quiet(tt.err); got != tt.want {
			t.Errorf("Quiet(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
