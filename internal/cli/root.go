package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/skiffdev/skiff/internal/cmdutil"
)

// NewCmdRoot builds the skiff command tree.
func NewCmdRoot(f *cmdutil.Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "skiff <command>",
		Short: "From an empty folder to functions and services on Kubernetes",
		Long: `skiff scaffolds functions and microservices, builds their OCI images without
a Docker daemon, deploys them to Kubernetes with Helm, and shows what runs.

Every persistent flag can also be set with an environment variable named
SKIFF_ and the flag's name in capitals, e.g. SKIFF_NAMESPACE=shop.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       f.BuildInfo.Version,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags(), f.Getenv); err != nil {
				return err
			}
			f.IOStreams.SetNoColor(f.Globals.NoColor)
			f.IOStreams.SetNonInteractive(f.Globals.NonInteractive)
			return cmdutil.CheckFormat(f.Globals.Output, cmd.Annotations[cmdutil.WideAnnotation] != "")
		},
	}
	root.SetVersionTemplate("skiff {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &cmdutil.UsageError{Err: err}
	})

	g := f.Globals
	pf := root.PersistentFlags()
	pf.StringVar(&g.Kubeconfig, "kubeconfig", "", "path to the kubeconfig file")
	pf.StringVar(&g.Context, "context", "", "kubeconfig context to use")
	pf.StringVarP(&g.Namespace, "namespace", "n", "", "Kubernetes namespace (default: the project's)")
	pf.StringVarP(&g.Env, "env", "e", "", "environment of skiff.yaml to use (default: its top level)")
	pf.StringVarP(&g.Output, "output", "o", "", "output format: table, json or yaml")
	pf.BoolVar(&g.NoColor, "no-color", false, "never color the output (also NO_COLOR)")
	pf.BoolVarP(&g.Verbose, "verbose", "v", false, "print more about what happens")
	pf.BoolVar(&g.NonInteractive, "non-interactive", false, "never prompt; fail on a missing value instead")
	_ = root.RegisterFlagCompletionFunc("output", func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		return cmdutil.Formats(cmd.Annotations[cmdutil.WideAnnotation] != ""), cobra.ShellCompDirectiveNoFileComp
	})
	_ = root.RegisterFlagCompletionFunc("env", envCompletion(f))

	root.AddGroup(&cobra.Group{ID: "create", Title: "Create:"})
	root.AddGroup(&cobra.Group{ID: "ship", Title: "Build and ship:"})
	root.AddGroup(&cobra.Group{ID: "observe", Title: "Observe:"})
	root.AddCommand(
		NewCmdBuild(f, nil),
		NewCmdDeploy(f, nil),
		NewCmdDoctor(f, nil),
		NewCmdCI(f, nil),
		NewCmdLogin(f, nil),
		NewCmdLogout(f, nil),
		NewCmdKeys(f, nil),
		NewCmdVerify(f, nil),
		NewCmdDev(f, nil),
		NewCmdRender(f, nil),
		NewCmdCache(f, nil),
		NewCmdConfig(f, nil),
		NewCmdSecret(f, nil),
		NewCmdHistory(f, nil),
		NewCmdRollback(f, nil),
		NewCmdDelete(f, nil),
		NewCmdStatus(f, nil),
		NewCmdTop(f, nil),
		NewCmdDash(f, nil),
		NewCmdLogs(f, nil),
		NewCmdEvents(f, nil),
		NewCmdInvoke(f, nil),
		NewCmdRun(f, nil),
		NewCmdInit(f, nil),
		NewCmdAdd(f, nil),
		NewCmdTemplates(f, nil),
		NewCmdVersion(f, nil),
	)
	root.InitDefaultCompletionCmd()
	rejectUnknownSubcommands(root)
	typeArgErrors(root)
	return root
}

// typeArgErrors makes every command's argument check (cobra.ExactArgs and
// the like, whose errors cobra does not type) return a UsageError, as
// flag errors already do (SetFlagErrorFunc): what exit code a mistake gets
// is then decided by cmdutil.ExitCode from the error's type alone.
func typeArgErrors(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		typeArgErrors(c)
	}
	if check := cmd.Args; check != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := check(c, args); err != nil {
				var usage *cmdutil.UsageError
				if errors.As(err, &usage) {
					return err
				}
				return &cmdutil.UsageError{Err: err}
			}
			return nil
		}
	}
}

// rejectUnknownSubcommands makes each command that only groups others fail
// on an unknown subcommand with a usage error and suggestions, as the top
// level does (cobra prints their help and exits 0 whatever follows).
func rejectUnknownSubcommands(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		rejectUnknownSubcommands(c)
	}
	if !cmd.HasParent() || !cmd.HasSubCommands() || cmd.Runnable() {
		return
	}
	cmd.Args = cobra.ArbitraryArgs
	cmd.SuggestionsMinimumDistance = 2 // cobra's default, set only by its own lookup
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return c.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
		if s := c.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t") + "\n"
		}
		return &cmdutil.UsageError{Err: errors.New(msg)}
	}
}

// envName is the environment variable of a persistent flag.
func envName(flag string) string {
	return "SKIFF_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv sets each persistent flag the command line left out from its
// SKIFF_* environment variable.
func applyEnv(fs *pflag.FlagSet, getenv func(string) string) error {
	var err error
	fs.VisitAll(func(fl *pflag.Flag) {
		if err != nil || fl.Changed || !isGlobal(fl.Name) {
			return
		}
		v := getenv(envName(fl.Name))
		if v == "" {
			return
		}
		if e := fl.Value.Set(v); e != nil {
			err = cmdutil.Usagef("%s=%q: %v", envName(fl.Name), v, e)
		}
	})
	return err
}

func isGlobal(name string) bool {
	switch name {
	case "kubeconfig", "context", "namespace", "env", "output", "no-color", "verbose", "non-interactive":
		return true
	}
	return false
}

func fixedCompletion(values ...string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return values, cobra.ShellCompDirectiveNoFileComp
	}
}

// exactArgs is cobra.ExactArgs returning a usage error that names what is
// missing.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return cmdutil.Usagef("%s takes %d argument(s), %s; got %d", cmd.CommandPath(), n, what, len(args))
		}
		return nil
	}
}

// maxArgs is cobra.MaximumNArgs returning a usage error.
func maxArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return cmdutil.Usagef("%s takes at most %d argument(s), %s; got %d: %s", cmd.CommandPath(), n, what, len(args), strings.Join(args, " "))
		}
		return nil
	}
}
