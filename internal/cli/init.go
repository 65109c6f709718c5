package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/scaffold"
)

// InitOptions are the inputs of `skiff init`.
type InitOptions struct {
	Factory *cmdutil.Factory

	Dir       string
	Project   string
	Registry  string
	Namespace string
	Force     bool
	List      bool
	Workload  workloadChoice
}

// NewCmdInit builds `skiff init`. runF replaces initRun in tests.
func NewCmdInit(f *cmdutil.Factory, runF func(context.Context, *InitOptions) error) *cobra.Command {
	opts := &InitOptions{Factory: f}
	cmd := &cobra.Command{
		Use:     "init [DIR]",
		GroupID: "create",
		Short:   "Create a project and its first function or service",
		Long: heredoc.Doc(`
			Create a skiff project in DIR (default: the current folder): a skiff.yaml
			and the code of its first workload, generated from a template.

			Every choice has a flag. On a terminal, skiff asks for the values the flags
			left out; without one (or with --non-interactive) --kind and --lang are
			required and the rest take their defaults.

			Nothing is overwritten unless --force is given, and a failed init leaves
			the folder as it was.
		`),
		Example: heredoc.Doc(`
			# ask for everything
			skiff init shop

			# a Go HTTP function, no questions
			skiff init shop --kind function --lang go --name hello --non-interactive

			# a Python CloudEvents function pushed to a registry
			skiff init thumbs --kind function --lang python --template cloudevents --registry registry.example.com/team

			# list the templates
			skiff init --list
		`),
		Args: maxArgs(1, "the project folder"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Dir = args[0]
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return initRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	opts.Workload.addFlags(cmd)
	fl.StringVar(&opts.Workload.Name, "name", "", "name of the first workload (default: the folder's name)")
	fl.StringVar(&opts.Project, "project", "", "name of the project (default: the folder's name)")
	fl.StringVar(&opts.Registry, "registry", "", "registry to push images to, e.g. registry.example.com/team (default: a local OCI layout)")
	fl.BoolVar(&opts.Force, "force", false, "overwrite existing files")
	fl.BoolVar(&opts.List, "list", false, "list the available templates and exit")
	return cmd
}

// addFlags adds the flags of a workload choice (all but its name) to cmd.
func (c *workloadChoice) addFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&c.Kind, "kind", "", "kind of workload: function or service")
	fl.StringVar(&c.Lang, "lang", "", "language: go, node, typescript or python")
	fl.StringVar(&c.Template, "template", "", "template name, or REPO/NAME for a template repository's (default http)")
	fl.StringArrayVar(&c.Vars, "var", nil, "answer a template's prompt: KEY=VALUE (repeatable)")
	registerWorkloadCompletions(cmd)
}

func registerWorkloadCompletions(cmd *cobra.Command) {
	_ = cmd.RegisterFlagCompletionFunc("kind", fixedCompletion(project.Kinds()...))
	_ = cmd.RegisterFlagCompletionFunc("lang", fixedCompletion(project.Langs()...))
}

// initResult is what `skiff init -o json` prints.
type initResult struct {
	Project  string   `json:"project"`
	Dir      string   `json:"dir"`
	Workload string   `json:"workload"`
	Kind     string   `json:"kind"`
	Lang     string   `json:"lang"`
	Template string   `json:"template"`
	Files    []string `json:"files"`
}

func initRun(ctx context.Context, opts *InitOptions) error {
	f := opts.Factory
	if opts.List {
		return listTemplates(f, "", "")
	}
	wd, err := f.WorkDir()
	if err != nil {
		return err
	}
	dir := opts.Dir
	if dir == "" {
		dir = "."
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(wd, dir)
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return cmdutil.Usagef("%s is a file; give a folder for the project", opts.Dir)
	}
	if _, err := os.Stat(filepath.Join(dir, project.FileName)); err == nil && !opts.Force {
		return fmt.Errorf("%s is already a skiff project (it has a %s); use `skiff add NAME` to add a workload, or --force to start over",
			displayDir(opts.Dir), project.FileName)
	}

	ask, err := prompter(f)
	if err != nil {
		return err
	}
	all, err := f.Templates()
	if err != nil {
		return err
	}
	base := filepath.Base(dir)
	name := opts.Project
	if name == "" {
		if project.ValidName(base) == "" {
			name = base
		} else if ask != nil {
			if name, err = ask.Input("Project name:", "", nameValidator); err != nil {
				return err
			}
		} else {
			return cmdutil.Usagef("--project is required: the folder name %q is not a valid project name (use lowercase letters, digits and '-')", base)
		}
	}
	if why := project.ValidName(name); why != "" {
		return cmdutil.Usagef("--project %s; use lowercase letters, digits and '-', starting and ending with a letter or digit", why)
	}
	defaultWorkload := ""
	if opts.Workload.Name == "" && project.ValidName(base) == "" {
		defaultWorkload = base
	}
	c, err := opts.Workload.resolve(all, defaultWorkload, ask)
	if err != nil {
		return err
	}
	registry := opts.Registry
	if registry == "" && ask != nil {
		if registry, err = ask.Input("Registry to push images to (empty: a local OCI layout):", "", nil); err != nil {
			return err
		}
	}
	if why := project.CheckRegistry(registry); why != "" {
		return cmdutil.Usagef("--registry %s: %s", why, project.RegistryHint)
	}
	p := &project.Project{
		APIVersion: project.APIVersion,
		Name:       name,
		Registry:   registry,
		Namespace:  f.Globals.Namespace,
		Workloads:  []project.Workload{workloadOf(c, c.Name)},
		// Written, so the project says what its default is.
		Network: &project.Network{Policy: project.PolicyOn},
	}
	manifest, err := project.Marshal(p)
	if err != nil {
		return err
	}
	if _, err := project.Parse(manifest); err != nil {
		var verr project.ValidationErrors
		if errors.As(err, &verr) {
			return &cmdutil.UsageError{Err: err}
		}
		return err
	}
	files, err := renderWorkload(c, name, c.Name)
	if err != nil {
		return err
	}
	files = append(files, scaffold.File{Path: project.FileName, Data: manifest, Mode: 0o644})
	if err := scaffold.Write(dir, files, opts.Force); err != nil {
		return err
	}

	res := initResult{Project: name, Dir: dir, Workload: c.Name, Kind: c.Template.Kind, Lang: c.Template.Lang, Template: templateRef(c.Template)}
	for _, fl := range files {
		res.Files = append(res.Files, fl.Path)
	}
	if f.Globals.Output == cmdutil.FormatJSON || f.Globals.Output == cmdutil.FormatYAML {
		return cmdutil.Write(f.IOStreams.Out, f.Globals.Output, res, nil)
	}
	cs := f.IOStreams.ColorScheme()
	out := f.IOStreams.ErrOut
	fmt.Fprintf(out, "%s Created project %s in %s with %s %s (%s, %s): %d files\n",
		cs.SuccessIcon(), cs.Bold(name), displayDir(opts.Dir), c.Template.Kind, cs.Bold(c.Name), c.Template.Lang, templateRef(c.Template), len(files))
	printNextSteps(out, opts.Dir, c.Name, registry != "")
	return nil
}

func printNextSteps(w io.Writer, dir, workload string, hasRegistry bool) {
	fmt.Fprintln(w, "\nNext:")
	if dir != "" && dir != "." {
		fmt.Fprintf(w, "  cd %s\n", dir)
	}
	fmt.Fprintf(w, "  skiff dev --local    # run it on this machine, rebuilt on every save\n")
	fmt.Fprintf(w, "  skiff build %s    # build its image\n", workload)
	if hasRegistry {
		fmt.Fprintf(w, "  skiff deploy %s   # deploy it to Kubernetes\n", workload)
	} else {
		fmt.Fprintf(w, "  skiff deploy %s   # deploy it to Kubernetes (set registry: in skiff.yaml)\n", workload)
	}
	fmt.Fprintln(w, "  skiff add NAME       # add another function or service")
}

func displayDir(d string) string {
	if d == "" {
		return "."
	}
	return d
}
