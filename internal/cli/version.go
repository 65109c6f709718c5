package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/cmdutil"
)

// NewCmdVersion builds `skiff version`.
func NewCmdVersion(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print skiff's version, commit and Go version",
		Args:  exactArgs(0, "none"),
		RunE: func(cmd *cobra.Command, _ []string) error {
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
		},
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
