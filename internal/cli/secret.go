package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/project"
)

// maxSecretSize is Kubernetes' limit for the data of one Secret.
const maxSecretSize = 1 << 20

// SecretOptions are the inputs of `skiff secret set|unset|list`.
type SecretOptions struct {
	Factory *cmdutil.Factory
	// Verb is set, unset or list.
	Verb string
	// Workload is the one named ("": the only one, or asked for).
	Workload string
	// Keys are the key set sets (one) or those unset removes.
	Keys []string
	// Value is what set sets (read from stdin, --from-file or a prompt).
	Value []byte
	// NoRestart leaves the pods running with the old values.
	NoRestart bool
}

// NewCmdSecret builds `skiff secret`. runF replaces secretRun in tests.
func NewCmdSecret(f *cmdutil.Factory, runF func(context.Context, *SecretOptions) error) *cobra.Command {
	var workload, fromFile string
	opts := &SecretOptions{Factory: f}
	run := func(ctx context.Context, verb string) error {
		opts.Verb = verb
		if runF != nil {
			return runF(ctx, opts)
		}
		return secretRun(ctx, opts)
	}
	cmd := &cobra.Command{
		Use:     "secret <command>",
		GroupID: "ship",
		Short:   "Secrets of a workload, kept only in the cluster",
		Long: heredoc.Doc(`
			Secrets live in a Kubernetes Secret named WORKLOAD-secrets in the project's
			namespace, and reach the workload as environment variables. Values are read
			from stdin, from --from-file, or asked for without echo on a terminal; they
			are never written to disk, printed, or put in Helm values. Changing a secret
			restarts the workload's pods so they see it.
		`),
		Example: heredoc.Doc(`
			printf %s "$TOKEN" | skiff secret set API_TOKEN -w orders
			skiff secret set TLS_KEY --from-file key.pem -w orders
			skiff secret list -w orders
			skiff secret unset API_TOKEN -w orders
		`),
	}
	cmd.PersistentFlags().StringVarP(&workload, "workload", "w", "", "the workload (needed when the project has several)")
	cmd.PersistentFlags().BoolVar(&opts.NoRestart, "no-restart", false, "do not restart the workload's pods")
	_ = cmd.RegisterFlagCompletionFunc("workload", workloadCompletion(f))

	set := &cobra.Command{
		Use:   "set [WORKLOAD] KEY",
		Short: "Set a secret from stdin or a file",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return cmdutil.Usagef("skiff secret set takes the key, after the workload's name if given; got %d argument(s)", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			workload, err := workloadName(strings.Join(args[:len(args)-1], ""), workload)
			if err != nil {
				return err
			}
			args = args[len(args)-1:]
			if !project.ValidConfigKey(args[0]) {
				return cmdutil.Usagef("secret key %q: use letters, digits, '-', '_' and '.'", args[0])
			}
			value, err := readSecret(f, fromFile, args[0])
			if err != nil {
				return err
			}
			opts.Workload, opts.Keys, opts.Value = workload, args, value
			return run(cmd.Context(), "set")
		},
	}
	set.Flags().StringVar(&fromFile, "from-file", "", "read the value from this file")
	unset := &cobra.Command{
		Use:   "unset [WORKLOAD] KEY...",
		Short: "Remove secrets",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmdutil.Usagef("skiff secret unset needs at least one KEY")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			workload, args, err := splitWorkloadArg(f, workload, args)
			if err != nil {
				return err
			}
			opts.Workload, opts.Keys = workload, args
			return run(cmd.Context(), "unset")
		},
	}
	list := &cobra.Command{
		Use:   "list [WORKLOAD]",
		Short: "List the keys of a workload's secrets (never their values)",
		Args:  maxArgs(1, "the workload"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := workloadName(firstArg(args), workload)
			if err != nil {
				return err
			}
			opts.Workload = name
			return run(cmd.Context(), "list")
		},
	}
	cmd.AddCommand(set, unset, list)
	return cmd
}

func secretRun(ctx context.Context, opts *SecretOptions) error {
	f := opts.Factory
	switch opts.Verb {
	case "set":
		key := opts.Keys[0]
		return changeSecret(ctx, f, opts.Workload, !opts.NoRestart, func(ctx context.Context, s engine.Session, w string) (string, error) {
			return s.SetSecrets(ctx, w, map[string][]byte{key: opts.Value})
		}, "Set secret "+key)
	case "unset":
		return changeSecret(ctx, f, opts.Workload, !opts.NoRestart, func(ctx context.Context, s engine.Session, w string) (string, error) {
			return s.UnsetSecrets(ctx, w, opts.Keys)
		}, "Removed")
	}
	pc, w, err := loadWorkload(f, opts.Workload)
	if err != nil {
		return err
	}
	s, err := pc.session(ctx, f, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	keys, err := s.SecretKeys(ctx, w.Name)
	if err != nil {
		return err
	}
	if keys == nil {
		keys = []string{}
	}
	return cmdutil.Write(f.IOStreams.Out, f.Globals.Output, keys, func(out io.Writer) error {
		fmt.Fprintln(out, "KEY")
		for _, k := range keys {
			fmt.Fprintln(out, k)
		}
		return nil
	})
}

func readSecret(f *cmdutil.Factory, file, key string) ([]byte, error) {
	if file != "" {
		fi, err := os.Stat(file)
		if err != nil {
			return nil, cmdutil.Usagef("--from-file: %v", err)
		}
		if fi.Size() > maxSecretSize {
			return nil, cmdutil.Usagef("--from-file %s is larger than a Secret may be (1 MiB)", file)
		}
		return os.ReadFile(file)
	}
	if f.IOStreams.CanPrompt() {
		p, err := f.Prompter()
		if err != nil {
			return nil, err
		}
		v, err := p.Password("Value of " + key + ":")
		return []byte(v), err
	}
	data, err := io.ReadAll(io.LimitReader(f.IOStreams.In, maxSecretSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxSecretSize {
		return nil, cmdutil.Usagef("the value on stdin is larger than a Secret may be (1 MiB)")
	}
	if len(data) == 0 {
		return nil, cmdutil.Usagef("no value on stdin; pipe it in (printf %%s \"$VALUE\" | skiff secret set %s) or use --from-file", key)
	}
	// One trailing newline comes from `echo`; drop it, keep the rest.
	return bytes.TrimSuffix(data, []byte("\n")), nil
}

func changeSecret(ctx context.Context, f *cmdutil.Factory, workload string, restart bool,
	change func(ctx context.Context, s engine.Session, workload string) (secret string, err error), what string) error {
	pc, w, err := loadWorkload(f, workload)
	if err != nil {
		return err
	}
	s, err := pc.session(ctx, f, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	secret, err := change(ctx, s, w.Name)
	if err != nil {
		return err
	}
	cs := f.IOStreams.ColorScheme()
	fmt.Fprintf(f.IOStreams.ErrOut, "%s %s for %s (Secret %s/%s)\n", cs.SuccessIcon(), what, w.Name, pc.namespace, secret)
	if !restart {
		return nil
	}
	// Nothing runs yet: the next deploy reads the Secret.
	if restarted, err := s.Restart(ctx, w.Name); err != nil || !restarted {
		return err
	}
	fmt.Fprintf(f.IOStreams.ErrOut, "Restarting %s's pods; `skiff status --wait %s` waits for them\n", w.Name, w.Name)
	return nil
}
