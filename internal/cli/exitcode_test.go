package cli

import (
	"context"
	"errors"
	"testing"

	"github.com/skiffdev/skiff/internal/cmdutil"
)

// A wrong command line is a UsageError by its type, from cobra's own
// argument checks (the completion command's) and flag parsing as from
// skiff's: no message is matched to give it exit code 2.
func TestCommandLineMistakesAreTyped(t *testing.T) {
	for _, args := range [][]string{
		{"completion", "tcsh"},
		{"completion", "bash", "zsh"},
		{"version", "--no-such-flag"},
		{"cache", "info", "x"},
	} {
		f, _ := testFactory(t, false)
		root := NewCmdRoot(f)
		root.SetArgs(args)
		root.SetOut(f.IOStreams.Out)
		root.SetErr(f.IOStreams.ErrOut)
		_, err := root.ExecuteContextC(context.Background())
		var usage *cmdutil.UsageError
		if !errors.As(err, &usage) {
			t.Errorf("skiff %v: error %v (%T), want a UsageError", args, err, err)
		}
		if code := cmdutil.ExitCode(err); code != cmdutil.ExitUsage {
			t.Errorf("skiff %v: exit code %d, want %d", args, code, cmdutil.ExitUsage)
		}
	}
}
