// Package cmdutil holds what every command shares and that is not cobra:
// the typed errors and their exit codes, the Factory of dependencies, and
// the process's interrupts, which main alone catches.
package cmdutil

import (
	"context"
	"errors"
	"fmt"

	"github.com/skiffdev/skiff/internal/prompt"
)

// Exit codes of the skiff binary.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
	// ExitCancel is used when the user interrupted the command.
	ExitCancel = 130
)

// UsageError is an error in how skiff was called: a bad flag, a missing or
// invalid argument, or bad input in skiff.yaml. It exits with code 2.
type UsageError struct {
	Err error
	// Manifest says the problem is in skiff.yaml, not on the command line:
	// no pointer to --help.
	Manifest bool
}

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a UsageError with a formatted message.
func Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// Manifestf returns a UsageError about skiff.yaml (Manifest set).
func Manifestf(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...), Manifest: true}
}

// SilentError exits with its code without printing anything more: the
// command has already told the user what happened.
type SilentError struct{ Code int }

func (e *SilentError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// ExitCode maps an error returned by a command to the process exit code.
// This is the one place where that mapping lives.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var silent *SilentError
	if errors.As(err, &silent) {
		return silent.Code
	}
	var usage *UsageError
	if errors.As(err, &usage) {
		return ExitUsage
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, prompt.ErrInterrupted) {
		return ExitCancel
	}
	return ExitFailure
}

// Quiet says an error needs no "Error:" line: the command already told
// the user (SilentError), or the user left a prompt with Ctrl-C.
func Quiet(err error) bool {
	var silent *SilentError
	return errors.As(err, &silent) || errors.Is(err, prompt.ErrInterrupted)
}
