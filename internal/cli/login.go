package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/publish"
)

// LoginOptions are the inputs of `skiff login`.
type LoginOptions struct {
	Factory       *cmdutil.Factory
	Registry      string
	Username      string
	Password      string
	PasswordSet   bool // --password was given
	PasswordStdin bool
	Insecure      []string
}

// NewCmdLogin builds `skiff login`.
func NewCmdLogin(f *cmdutil.Factory, runF func(*LoginOptions) error) *cobra.Command {
	opts := &LoginOptions{Factory: f}
	cmd := &cobra.Command{
		Use:     "login REGISTRY",
		GroupID: "ship",
		Short:   "Sign in to a registry, for skiff and docker",
		Long: heredoc.Doc(`
			Check a username and password against REGISTRY (host[:port]) and, when it
			accepts them, store them where docker and skiff read them: the credential
			helper the docker config names ($DOCKER_CONFIG, default ~/.docker), else the
			docker config file. Nothing is stored when the registry refuses them.

			Give the password on stdin (--password-stdin); on a terminal skiff asks for
			it. --password PASSWORD works too, with a warning: a password in a command line
			ends up in shell history and process listings. The password is never printed.
		`),
		Example: heredoc.Doc(`
			echo "$REGISTRY_TOKEN" | skiff login registry.example.com -u ci --password-stdin
			skiff login 127.0.0.1:5000 -u dev
		`),
		Args: exactArgs(1, "the registry host"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Registry = args[0]
			opts.PasswordSet = cmd.Flags().Changed("password")
			if opts.PasswordSet && opts.PasswordStdin {
				return cmdutil.Usagef("--password and --password-stdin are exclusive: use --password-stdin")
			}
			if strings.Contains(opts.Registry, "://") || strings.Contains(opts.Registry, "/") {
				return cmdutil.Usagef("REGISTRY is a host[:port] such as registry.example.com, not %q", opts.Registry)
			}
			if runF != nil {
				return runF(opts)
			}
			return loginRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.Username, "username", "u", "", "the account's username")
	fl.StringVarP(&opts.Password, "password", "p", "", "the password (insecure: prefer --password-stdin)")
	fl.BoolVar(&opts.PasswordStdin, "password-stdin", false, "read the password from stdin")
	fl.StringArrayVar(&opts.Insecure, "insecure-registry", nil, "allow plain HTTP to this registry host (loopback hosts always are)")
	return cmd
}

func loginRun(ctx context.Context, opts *LoginOptions) error {
	f := opts.Factory
	ios := f.IOStreams
	creds := publish.Credentials{Username: opts.Username, Password: opts.Password}
	if opts.PasswordSet {
		fmt.Fprintln(ios.ErrOut, "warning: a password on the command line can end up in shell history and process listings; prefer --password-stdin")
	}
	if creds.Username == "" {
		if !ios.CanPrompt() || f.Globals.NonInteractive {
			return cmdutil.Usagef("--username is required")
		}
		p, err := f.Prompter()
		if err != nil {
			return err
		}
		if creds.Username, err = p.Input("Username for "+opts.Registry, "", nil); err != nil {
			return err
		}
	}
	switch {
	case opts.PasswordStdin:
		pw, err := readPasswordLine(ios.In)
		if err != nil {
			return fmt.Errorf("reading the password from stdin: %w", err)
		}
		creds.Password = pw
	case !opts.PasswordSet:
		if !ios.CanPrompt() || f.Globals.NonInteractive {
			return cmdutil.Usagef("give the password with --password-stdin")
		}
		p, err := f.Prompter()
		if err != nil {
			return err
		}
		if creds.Password, err = p.Password("Password for " + creds.Username + "@" + opts.Registry); err != nil {
			return err
		}
	}
	if creds.Password == "" {
		return cmdutil.Usagef("the password is empty")
	}
	regs, err := f.Registry(opts.Insecure, "skiff/"+f.BuildInfo.Version)
	if err != nil {
		return err
	}
	stop := ios.StartProgress("checking the credentials with " + opts.Registry)
	err = regs.Verify(ctx, opts.Registry, creds)
	stop()
	if err != nil {
		var bad *publish.BadCredentialsError
		if errors.As(err, &bad) {
			return fmt.Errorf("%w; check the username and password", err)
		}
		return err
	}
	where, err := publish.StoreCredentials(opts.Registry, creds)
	if err != nil {
		return err
	}
	return cmdutil.Write(ios.Out, f.Globals.Output, map[string]string{"registry": opts.Registry, "username": creds.Username, "storedIn": where}, func(io.Writer) error {
		fmt.Fprintf(ios.ErrOut, "Signed in to %s as %s; the credentials are in %s\n", opts.Registry, creds.Username, where)
		return nil
	})
}

// readPasswordLine reads the first line of r, without its line ending.
func readPasswordLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 1<<16)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// LogoutOptions are the inputs of `skiff logout`.
type LogoutOptions struct {
	Factory  *cmdutil.Factory
	Registry string
}

// NewCmdLogout builds `skiff logout`. runF replaces logoutRun in tests.
func NewCmdLogout(f *cmdutil.Factory, runF func(*LogoutOptions) error) *cobra.Command {
	opts := &LogoutOptions{Factory: f}
	return &cobra.Command{
		Use:     "logout REGISTRY",
		GroupID: "ship",
		Short:   "Remove the stored credentials of a registry",
		Long: heredoc.Doc(`
			Remove the credentials of REGISTRY from where skiff login (or docker login)
			stored them. A registry with none stored is not an error.
		`),
		Args: exactArgs(1, "the registry host"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Registry = args[0]
			if runF != nil {
				return runF(opts)
			}
			return logoutRun(opts)
		},
	}
}

func logoutRun(opts *LogoutOptions) error {
	where, found, err := publish.EraseCredentials(opts.Registry)
	if err != nil {
		return err
	}
	f := opts.Factory
	ios := f.IOStreams
	return cmdutil.Write(ios.Out, f.Globals.Output, map[string]any{"registry": opts.Registry, "removed": found, "from": where}, func(io.Writer) error {
		if found {
			fmt.Fprintf(ios.ErrOut, "Removed the credentials of %s from %s\n", opts.Registry, where)
		} else {
			fmt.Fprintf(ios.ErrOut, "No credentials of %s were stored (in %s)\n", opts.Registry, where)
		}
		return nil
	})
}
