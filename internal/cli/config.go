package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/fsutil"
	"github.com/skiffdev/skiff/internal/project"
)

// loadWorkload loads the project and picks the named workload (or the
// project's only one, or asks on a terminal).
func loadWorkload(f *cmdutil.Factory, flag string) (*projectContext, *project.Workload, error) {
	pc, err := loadProjectContext(f, nil)
	if err != nil {
		return nil, nil, err
	}
	w, err := chooseWorkload(f, pc, flag)
	if err != nil {
		return nil, nil, err
	}
	return pc, w, nil
}

// pickWorkload returns the --workload flag's workload, or the project's only
// one.
func pickWorkload(pc *projectContext, flag string) (*project.Workload, error) {
	if flag == "" {
		if len(pc.project.Workloads) == 1 {
			return &pc.project.Workloads[0], nil
		}
		return nil, cmdutil.Usagef("--workload is required: the project has %s", strings.Join(pc.project.WorkloadNames(), ", "))
	}
	w, ok := pc.project.Workload(flag)
	if !ok {
		return nil, cmdutil.Usagef("--workload %q: the project has no such workload; it has: %s", flag, strings.Join(pc.project.WorkloadNames(), ", "))
	}
	return w, nil
}

// NewCmdConfig builds `skiff config`.
// ConfigOptions are the inputs of `skiff config list|get|set|unset`.
type ConfigOptions struct {
	Factory *cmdutil.Factory
	// Verb is list, get, set or unset.
	Verb string
	// Workload is the one named (an argument or --workload; "": the only
	// one, or asked for on a terminal).
	Workload string
	// Key is the key get prints.
	Key string
	// Set are the values set sets; Unset the keys unset removes.
	Set   map[string]string
	Unset []string
	// Apply also updates the deployed workload, waiting up to Timeout.
	Apply   bool
	Timeout time.Duration
}

// NewCmdConfig builds `skiff config`. runF replaces configRun in tests.
func NewCmdConfig(f *cmdutil.Factory, runF func(context.Context, *ConfigOptions) error) *cobra.Command {
	var workload string
	opts := &ConfigOptions{Factory: f}
	run := func(ctx context.Context, verb string) error {
		opts.Verb = verb
		if runF != nil {
			return runF(ctx, opts)
		}
		return configRun(ctx, opts)
	}
	cmd := &cobra.Command{
		Use:     "config <command>",
		GroupID: "ship",
		Short:   "Runtime configuration of a workload",
		Long: heredoc.Doc(`
			Runtime configuration is kept in skiff.yaml (workloads[].config) and given to
			the workload as environment variables from a ConfigMap. set and unset edit
			skiff.yaml; with --apply they also update the deployed workload (the same
			image, new configuration, a new Helm revision) and wait until its pods have
			rolled.

			A workload with liveConfig: true in skiff.yaml is not restarted: its running
			pods watch their ConfigMap and see the new values within seconds (through the
			accessor of the templates' plumbing; the environment variables keep the values
			the pod started with). Secrets always restart the pods.
		`),
	}
	cmd.PersistentFlags().StringVarP(&workload, "workload", "w", "", "the workload (needed when the project has several)")
	_ = cmd.RegisterFlagCompletionFunc("workload", workloadCompletion(f))

	list := &cobra.Command{
		Use:   "list [WORKLOAD]",
		Short: "List a workload's configuration",
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
	get := &cobra.Command{
		Use:   "get [WORKLOAD] KEY",
		Short: "Print one configuration value",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return cmdutil.Usagef("skiff config get takes the key, after the workload's name if given; got %d argument(s)", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := workloadName(strings.Join(args[:len(args)-1], ""), workload)
			if err != nil {
				return err
			}
			opts.Workload, opts.Key = name, args[len(args)-1]
			return run(cmd.Context(), "get")
		},
	}
	set := &cobra.Command{
		Use:   "set [WORKLOAD] KEY=VALUE...",
		Short: "Set configuration values",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmdutil.Usagef("skiff config set needs at least one KEY=VALUE")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			name := workload
			if len(args) > 1 && !strings.Contains(args[0], "=") {
				var err error
				if name, err = workloadName(args[0], workload); err != nil {
					return err
				}
				args = args[1:]
			}
			values := map[string]string{}
			for _, kv := range args {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return cmdutil.Usagef("%q must be KEY=VALUE", kv)
				}
				if !project.ValidConfigKey(k) {
					return cmdutil.Usagef("%q is not a valid configuration key; use letters, digits, '-', '_' and '.'", k)
				}
				values[k] = v
			}
			opts.Workload, opts.Set = name, values
			return run(cmd.Context(), "set")
		},
	}
	unset := &cobra.Command{
		Use:   "unset [WORKLOAD] KEY...",
		Short: "Remove configuration values",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmdutil.Usagef("skiff config unset needs at least one KEY")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			name, keys, err := splitWorkloadArg(f, workload, args)
			if err != nil {
				return err
			}
			opts.Workload, opts.Unset = name, keys
			return run(cmd.Context(), "unset")
		},
	}
	for _, c := range []*cobra.Command{set, unset} {
		c.Flags().BoolVar(&opts.Apply, "apply", false, "also update the deployed workload and wait for its pods to roll")
		addTimeoutFlag(c, &opts.Timeout)
	}
	cmd.AddCommand(list, get, set, unset)
	return cmd
}

func configRun(ctx context.Context, opts *ConfigOptions) error {
	switch opts.Verb {
	case "list":
		return configList(opts)
	case "get":
		return configGet(opts)
	}
	return editConfig(ctx, opts.Factory, opts.Workload, opts.Set, opts.Unset, opts.Apply, opts.Timeout)
}

func configList(opts *ConfigOptions) error {
	f := opts.Factory
	_, w, err := loadWorkload(f, opts.Workload)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(w.Config))
	for k := range w.Config {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if f.Globals.Output == "" {
		fmt.Fprintln(f.IOStreams.ErrOut, liveStatus(w))
	}
	config := w.Config
	if config == nil {
		config = map[string]string{} // {} in JSON, not null
	}
	return cmdutil.Write(f.IOStreams.Out, f.Globals.Output, config, func(out io.Writer) error {
		fmt.Fprintln(out, "KEY\tVALUE")
		for _, k := range keys {
			fmt.Fprintf(out, "%s\t%s\n", k, w.Config[k])
		}
		return nil
	})
}

func configGet(opts *ConfigOptions) error {
	f := opts.Factory
	key := opts.Key
	_, w, err := loadWorkload(f, opts.Workload)
	if err != nil {
		return err
	}
	v, ok := w.Config[key]
	if !ok {
		return fmt.Errorf("%s has no configuration key %s; `skiff config list %s` shows them", w.Name, key, w.Name)
	}
	if o := f.Globals.Output; o == cmdutil.FormatJSON || o == cmdutil.FormatYAML {
		return cmdutil.Write(f.IOStreams.Out, o, struct {
			Workload string `json:"workload"`
			Key      string `json:"key"`
			Value    string `json:"value"`
		}{w.Name, key, v}, nil)
	}
	fmt.Fprintln(f.IOStreams.Out, v)
	return nil
}

func editConfig(ctx context.Context, f *cmdutil.Factory, workload string, set map[string]string, unset []string, apply bool, timeout time.Duration) error {
	if err := checkTimeout(timeout); err != nil {
		return err
	}
	if env := f.Globals.Env; env != "" {
		return cmdutil.Usagef("config set and unset edit the top level of skiff.yaml, which every environment starts from; "+
			"to change a value for %s only, edit environments.%s.workloads.<workload>.config in skiff.yaml, then run skiff deploy -e %s", env, env, env)
	}
	pc, w, err := loadWorkload(f, workload)
	if err != nil {
		return err
	}
	for _, k := range unset {
		if _, ok := w.Config[k]; !ok {
			return fmt.Errorf("%s has no configuration key %s; nothing was changed", w.Name, k)
		}
	}
	path := filepath.Join(pc.root, project.FileName)
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	data, err := project.SetConfig(old, w.Name, set, unset)
	if err != nil {
		return &cmdutil.UsageError{Err: err}
	}
	if err := fsutil.WriteFileAtomic(path, data, 0o644); err != nil {
		return err
	}
	cs := f.IOStreams.ColorScheme()
	fmt.Fprintf(f.IOStreams.ErrOut, "%s Updated the configuration of %s in %s\n", cs.SuccessIcon(), w.Name, project.FileName)
	if !apply {
		fmt.Fprintf(f.IOStreams.ErrOut, "It takes effect at the next `skiff deploy %s` (or use --apply).\n", w.Name)
		return nil
	}
	// Redeploy what runs (its image and all its values, including earlier
	// --set overrides), with only the configuration replaced.
	cfg := map[string]string{}
	for k, v := range w.Config {
		cfg[k] = v
	}
	for _, k := range unset {
		delete(cfg, k)
	}
	for k, v := range set {
		cfg[k] = v
	}
	s, err := pc.session(ctx, f, newProgress(f).event)
	if err != nil {
		return err
	}
	defer s.Close()
	res, err := s.Apply(ctx, w.Name, cfg, timeout)
	var nd *engine.NotDeployedError
	if errors.As(err, &nd) {
		return fmt.Errorf("%s is not deployed yet; the new configuration takes effect at its first `skiff deploy`", w.Name)
	}
	if err != nil {
		return err
	}
	if err := printDeployed(f, []engine.Deployment{res.Deployment}); err != nil {
		return err
	}
	// What is deployed decides, not skiff.yaml: liveConfig takes effect at
	// the next deploy.
	switch {
	case res.Live:
		fmt.Fprintf(f.IOStreams.ErrOut, "%s's pods were not restarted: they pick the new configuration up live.\n", w.Name)
	case w.LiveConfig:
		fmt.Fprintf(f.IOStreams.ErrOut, "%s's pods restarted: liveConfig takes effect at the next `skiff deploy %s`.\n", w.Name, w.Name)
	}
	return nil
}

// liveStatus says how a configuration change reaches w's pods.
func liveStatus(w *project.Workload) string {
	if w.LiveConfig {
		return fmt.Sprintf("%s: live config: a change reaches the running pods without a restart", w.Name)
	}
	return fmt.Sprintf("%s: a change restarts the pods (liveConfig: true in skiff.yaml delivers it live)", w.Name)
}
