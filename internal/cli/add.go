package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/eventstream"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/scaffold"
)

// AddOptions are the inputs of `skiff add`.
type AddOptions struct {
	Factory *cmdutil.Factory

	Path      string
	Port      int
	DependsOn []string
	Triggers  []string
	Force     bool
	Workload  workloadChoice
}

// NewCmdAdd builds `skiff add`. runF replaces addRun in tests.
func NewCmdAdd(f *cmdutil.Factory, runF func(context.Context, *AddOptions) error) *cobra.Command {
	opts := &AddOptions{Factory: f}
	cmd := &cobra.Command{
		Use:     "add [NAME]",
		GroupID: "create",
		Short:   "Add a function or service to the project",
		Long: heredoc.Doc(`
			Add a workload named NAME to the project around the current folder: its
			code, generated from a template into the folder NAME (or --path), and its
			entry in skiff.yaml.

			On a terminal, skiff asks for the values the flags left out (NAME too);
			without one (or with --non-interactive) NAME, --kind and --lang are required.
		`),
		Example: heredoc.Doc(`
			skiff add payments --kind service --lang node
			skiff add thumbnail --kind function --lang python --template cloudevents --depends-on payments
			skiff add greet --kind function --lang python --template cloudevents --trigger com.example.hello
		`),
		Args: maxArgs(1, "the workload's name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Workload.Name = firstArg(args)
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return addRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	opts.Workload.addFlags(cmd)
	fl.StringVar(&opts.Path, "path", "", "folder of the workload, relative to the project (default: NAME)")
	fl.IntVar(&opts.Port, "port", 0, "port the workload listens on (default: the template's, or the next one no workload of the project uses)")
	fl.StringSliceVar(&opts.DependsOn, "depends-on", nil, "workloads this one calls (injects NAME_URL variables)")
	fl.StringArrayVar(&opts.Triggers, "trigger", nil, "an event type (or prefix such as com.example.*) that runs the function (repeatable; see docs/events.md)")
	fl.BoolVar(&opts.Force, "force", false, "overwrite existing files")
	return cmd
}

func addRun(ctx context.Context, opts *AddOptions) error {
	f := opts.Factory
	ask, err := prompter(f)
	if err != nil {
		return err
	}
	if opts.Workload.Name == "" {
		if ask == nil {
			return cmdutil.Usagef("skiff add takes the new workload's name, e.g. skiff add payments")
		}
		if opts.Workload.Name, err = ask.Input("Name of the new workload:", "", nameValidator); err != nil {
			return err
		}
	}
	if why := project.ValidName(opts.Workload.Name); why != "" {
		return cmdutil.Usagef("the workload name %s; use lowercase letters, digits and '-', starting and ending with a letter or digit", why)
	}
	manifestPath, p, err := readManifest(f)
	if err != nil {
		return err
	}
	if _, dup := p.Workload(opts.Workload.Name); dup {
		return cmdutil.Usagef("the project already has a workload named %s; choose another name", opts.Workload.Name)
	}
	dir := opts.Path
	if dir == "" {
		dir = opts.Workload.Name
	}
	if err := scaffold.CheckRelPath(dir); err != nil {
		return cmdutil.Usagef("--path %v", err)
	}
	dir = path.Clean(dir)
	for _, w := range p.Workloads {
		if path.Clean(w.Path) == dir {
			return cmdutil.Usagef("--path %s is the folder of workload %s; choose another", dir, w.Name)
		}
	}
	root := filepath.Dir(manifestPath)
	if entries, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(dir))); err == nil && len(entries) > 0 && !opts.Force {
		return fmt.Errorf("%s already exists and is not empty; nothing was written; use --path to choose another folder or --force to write into it", dir)
	}
	for _, d := range opts.DependsOn {
		if d == opts.Workload.Name {
			return cmdutil.Usagef("--depends-on %s: a workload cannot depend on itself", d)
		}
		if _, ok := p.Workload(d); !ok {
			return cmdutil.Usagef("--depends-on %s: the project has no workload %q; use one of: %s", d, d, strings.Join(p.WorkloadNames(), ", "))
		}
	}
	for _, t := range opts.Triggers {
		if err := eventstream.CheckType(t, true); err != nil {
			return cmdutil.Usagef("--trigger %q %v; use a CloudEvent type such as com.example.image.uploaded, or a prefix such as com.example.*", t, err)
		}
	}
	if opts.Port < 0 || opts.Port > 65535 {
		return cmdutil.Usagef("--port %d is out of range; use 1 to 65535", opts.Port)
	}

	all, err := f.Templates()
	if err != nil {
		return err
	}
	c, err := opts.Workload.resolve(all, opts.Workload.Name, ask)
	if err != nil {
		return err
	}
	if opts.Port != 0 {
		c.Port = opts.Port
	} else {
		// Each workload its own port, so that they all run on one machine.
		c.Port = p.FreePort(c.Port)
	}
	w := workloadOf(c, dir)
	w.DependsOn = opts.DependsOn
	for _, t := range opts.Triggers {
		w.Triggers = append(w.Triggers, project.Trigger{Event: t})
	}
	old, err := os.ReadFile(manifestPath)
	if err != nil {
		return err
	}
	manifest, err := project.AddWorkload(old, w)
	if err != nil {
		var verr project.ValidationErrors
		if errors.As(err, &verr) {
			// About the flags: the lines are those of a file not written.
			for _, e := range verr {
				e.Line = 0
			}
			return &cmdutil.UsageError{Err: err}
		}
		return fmt.Errorf("%s: %w", manifestPath, err)
	}
	files, err := renderWorkload(c, p.Name, dir)
	if err != nil {
		return err
	}
	files = append(files, scaffold.File{Path: project.FileName, Data: manifest, Mode: 0o644, Replace: true})
	if err := scaffold.Write(root, files, opts.Force); err != nil {
		return err
	}
	if f.Globals.Output == cmdutil.FormatJSON || f.Globals.Output == cmdutil.FormatYAML {
		res := initResult{Project: p.Name, Dir: root, Workload: c.Name, Kind: c.Template.Kind, Lang: c.Template.Lang, Template: templateRef(c.Template)}
		for _, fl := range files {
			res.Files = append(res.Files, fl.Path)
		}
		return cmdutil.Write(f.IOStreams.Out, f.Globals.Output, res, nil)
	}
	cs := f.IOStreams.ColorScheme()
	fmt.Fprintf(f.IOStreams.ErrOut, "%s Added %s %s (%s, %s) in %s/\n", cs.SuccessIcon(), c.Template.Kind, cs.Bold(c.Name),
		c.Template.Lang, templateRef(c.Template), dir)
	if len(opts.DependsOn) > 0 {
		vars := make([]string, len(opts.DependsOn))
		for i, d := range opts.DependsOn {
			vars[i] = project.EnvName(d) + "_URL"
		}
		fmt.Fprintf(f.IOStreams.ErrOut, "  it reaches %s through %s\n", strings.Join(opts.DependsOn, ", "), strings.Join(vars, ", "))
	}
	return nil
}
