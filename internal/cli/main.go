// Package cli wires skiff's commands with cobra. It holds no logic of its
// own beyond parsing flags, asking questions and rendering results and
// events: what changes or watches the cluster goes through an
// engine.Session that main builds and the Factory hands over, and it
// imports no client-go, NATS, registry or Helm package
// (docs/development.md, "Import rule"; TestImportRule).
package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/project"
)

// Main runs skiff with args and returns the process exit code. ctx ends
// at the first interrupt and f.Quit closes at the second (main catches
// them: cmdutil.CatchInterrupts); f holds the dependencies main built
// (package factory).
func Main(ctx context.Context, f *cmdutil.Factory, args []string) int {
	return run(ctx, f, args)
}

func run(ctx context.Context, f *cmdutil.Factory, args []string) int {
	root := NewCmdRoot(f)
	root.SetArgs(args)
	root.SetIn(f.IOStreams.In)
	root.SetOut(f.IOStreams.Out)
	root.SetErr(f.IOStreams.ErrOut)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return cmdutil.ExitOK
	}
	if isCobraUsage(err) {
		err = &cmdutil.UsageError{Err: err}
	}
	if project.IsManifestError(err) {
		// Bad input (exit code 2), whether or not the command said so.
		err = &cmdutil.UsageError{Err: err, Manifest: true}
	}
	if !cmdutil.Quiet(err) {
		cs := f.IOStreams.ColorScheme()
		fmt.Fprintf(f.IOStreams.ErrOut, "%s %s\n", cs.Red("Error:"), err)
		var usage *cmdutil.UsageError
		if errors.As(err, &usage) && !usage.Manifest && cmd != nil {
			fmt.Fprintf(f.IOStreams.ErrOut, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
	}
	return cmdutil.ExitCode(err)
}

// isCobraUsage recognises the errors cobra returns untyped from checks it
// runs itself, outside the hooks skiff types (SetFlagErrorFunc for flags,
// typeArgErrors for arguments): an unknown top-level command, required
// flags and flag groups.
func isCobraUsage(err error) bool {
	var usage *cmdutil.UsageError
	if errors.As(err, &usage) {
		return false
	}
	msg := err.Error()
	for _, p := range []string{"unknown command ", "required flag", "if any flags in the group"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}
