package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/cmdutil"
)

// VersionOptions are the inputs of `skiff version`.
type VersionOptions struct {
	Factory *cmdutil.Factory
}

// NewCmdVersion builds `skiff version`. runF replaces versionRun in tests.
func NewCmdVersion(f *cmdutil.Factory, runF func(*VersionOptions) error) *cobra.Command {
	opts := &VersionOptions{Factory: f}
	return &cobra.Command{
		Use:   "version",
		Short: "Print skiff's version, commit and Go version",
		Args:  exactArgs(0, "none"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return versionRun(opts)
		},
	}
}

func versionRun(opts *VersionOptions) error {
	f := opts.Factory
	info := f.BuildInfo
	info.Date = orUnknown(info.Date) // the same fields in the table and JSON
	return cmdutil.Write(f.IOStreams.Out, f.Globals.Output, info, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "skiff %s\ncommit:\t%s\nbuilt:\t%s\ngo:\t%s\nplatform:\t%s\n",
			info.Version, info.Commit, info.Date, info.GoVersion, info.Platform)
		if err == nil && info.RelayImage != "" {
			_, err = fmt.Fprintf(w, "relay image:\t%s\n", info.RelayImage)
		}
		return err
	})
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
