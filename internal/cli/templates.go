package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/catalog"
	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/project"
)

// TemplatesOptions are the inputs of `skiff templates list|add|remove|update`.
type TemplatesOptions struct {
	Factory *cmdutil.Factory
	// Verb is list, add, remove or update.
	Verb string
	// list: only the templates of this language and kind ("": any).
	Lang, Kind string
	// add: the repository's name, URL and ref; remove, update: the names.
	Name, URL, Ref string
	Names          []string
}

// NewCmdTemplates builds `skiff templates` and its verbs. runF replaces
// templatesRun in tests.
func NewCmdTemplates(f *cmdutil.Factory, runF func(context.Context, *TemplatesOptions) error) *cobra.Command {
	opts := &TemplatesOptions{Factory: f}
	run := func(ctx context.Context, verb string) error {
		opts.Verb = verb
		if runF != nil {
			return runF(ctx, opts)
		}
		return templatesRun(ctx, opts)
	}
	cmd := &cobra.Command{
		Use:     "templates <command>",
		GroupID: "create",
		Short:   "List templates and manage template repositories",
		Long: heredoc.Doc(`
			Templates are the starting points of workloads. skiff embeds a set for every
			language; template repositories add more from git (https, ssh, file:// or a
			local path), each pinned to a branch, tag or commit. The repository format
			is described in docs/templates.md.
		`),
	}
	cmd.AddCommand(newCmdTemplatesList(opts, run), newCmdTemplatesAdd(opts, run), newCmdTemplatesRemove(opts, run), newCmdTemplatesUpdate(opts, run))
	return cmd
}

func templatesRun(ctx context.Context, opts *TemplatesOptions) error {
	switch opts.Verb {
	case "add":
		return templatesAdd(ctx, opts)
	case "remove":
		return templatesRemove(opts)
	case "update":
		return templatesUpdate(ctx, opts)
	}
	return listTemplates(opts.Factory, opts.Lang, opts.Kind)
}

func newCmdTemplatesList(opts *TemplatesOptions, run func(context.Context, string) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List every available template",
		Args:    exactArgs(0, "none"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd.Context(), "list")
		},
	}
	cmd.Flags().StringVar(&opts.Lang, "lang", "", "only templates of this language")
	cmd.Flags().StringVar(&opts.Kind, "kind", "", "only templates of this kind")
	registerWorkloadCompletions(cmd)
	return cmd
}

// templateRow is one line of `skiff templates list`.
type templateRow struct {
	Repo        string           `json:"repo"`
	Lang        string           `json:"lang"`
	Kind        string           `json:"kind"`
	Name        string           `json:"name"`
	Template    string           `json:"template"`
	Description string           `json:"description"`
	Prompts     []catalog.Prompt `json:"prompts,omitempty"`
}

func listTemplates(f *cmdutil.Factory, lang, kind string) error {
	if lang != "" && project.ValidName(lang) == "" && !contains(project.Langs(), lang) {
		return cmdutil.Usagef("--lang %q is not known; use one of: go, node, python, typescript", lang)
	}
	if kind != "" && !contains(project.Kinds(), kind) {
		return cmdutil.Usagef("--kind %q is not known; use one of: function, service", kind)
	}
	all, err := f.Templates()
	if err != nil {
		return err
	}
	ts := catalog.Filter(all, catalog.Query{Lang: lang, Kind: kind})
	rows := make([]templateRow, len(ts))
	for i, t := range ts {
		rows[i] = templateRow{Repo: t.Repo, Lang: t.Lang, Kind: t.Kind, Name: t.Name, Template: templateRef(t), Description: t.Description, Prompts: t.Prompts}
	}
	return cmdutil.Write(f.IOStreams.Out, f.Globals.Output, rows, func(w io.Writer) error {
		fmt.Fprintln(w, "LANG\tKIND\tTEMPLATE\tREPO\tDESCRIPTION")
		for _, r := range rows {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.Lang, r.Kind, r.Template, r.Repo, r.Description)
		}
		return nil
	})
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func newCmdTemplatesAdd(opts *TemplatesOptions, run func(context.Context, string) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "add NAME URL",
		Short: "Add a git repository of templates",
		Long: heredoc.Doc(`
			Clone the git repository at URL as template repository NAME, pinned to --ref
			(a branch, tag or commit; default: the remote's default branch). URL may be
			https://, ssh://, user@host:path, file:// or a local folder. The repository
			is checked before it is added: it must hold at least one valid template and
			no template may write outside its target folder.

			Its templates are then used as --template NAME/TEMPLATE.
		`),
		Example: heredoc.Doc(`
			skiff templates add team https://git.example.com/team/skiff-templates.git --ref v1.2.0
			skiff templates add local ./my-templates
		`),
		Args: exactArgs(2, "the repository's name and URL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if why := project.ValidName(args[0]); why != "" {
				return cmdutil.Usagef("repository name %s; use lowercase letters, digits and '-'", why)
			}
			if args[0] == catalog.EmbeddedRepo {
				return cmdutil.Usagef("%q is the name of the built-in templates; choose another name", args[0])
			}
			opts.Name, opts.URL = args[0], args[1]
			return run(cmd.Context(), "add")
		},
	}
	cmd.Flags().StringVar(&opts.Ref, "ref", "", "branch, tag or commit to pin the repository to")
	return cmd
}

func newCmdTemplatesRemove(opts *TemplatesOptions, run func(context.Context, string) error) *cobra.Command {
	f := opts.Factory
	return &cobra.Command{
		Use:     "remove NAME",
		Aliases: []string{"rm"},
		Short:   "Remove a template repository",
		Args:    exactArgs(1, "the repository's name"),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return repoNames(f), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Names = args
			return run(cmd.Context(), "remove")
		},
	}
}

func newCmdTemplatesUpdate(opts *TemplatesOptions, run func(context.Context, string) error) *cobra.Command {
	f := opts.Factory
	return &cobra.Command{
		Use:   "update [NAME...]",
		Short: "Fetch template repositories again at their ref",
		Long: heredoc.Doc(`
			Fetch the named template repositories (all by default) again and check out
			their ref: a branch moves to its newest commit, a tag or commit stays. A
			repository that fails to update keeps its previous checkout.
		`),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return repoNames(f), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Names = args
			return run(cmd.Context(), "update")
		},
	}
}

func repoNames(f *cmdutil.Factory) []string {
	m, err := f.TemplateRepos()
	if err != nil {
		return nil
	}
	repos, _ := m.List()
	names := make([]string, len(repos))
	for i, r := range repos {
		names[i] = r.Name
	}
	return names
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

func templatesAdd(ctx context.Context, opts *TemplatesOptions) error {
	f := opts.Factory
	m, err := f.TemplateRepos()
	if err != nil {
		return err
	}
	repo, ts, err := m.Add(ctx, opts.Name, opts.URL, opts.Ref)
	if err != nil {
		return err
	}
	cs := f.IOStreams.ColorScheme()
	noun := "templates"
	if len(ts) == 1 {
		noun = "template"
	}
	fmt.Fprintf(f.IOStreams.ErrOut, "%s Added template repository %s at %s with %d %s\n",
		cs.SuccessIcon(), cs.Bold(repo.Name), shortCommit(repo.Commit), len(ts), noun)
	return nil
}

func templatesRemove(opts *TemplatesOptions) error {
	f := opts.Factory
	m, err := f.TemplateRepos()
	if err != nil {
		return err
	}
	if err := m.Remove(opts.Names[0]); err != nil {
		return err
	}
	fmt.Fprintf(f.IOStreams.ErrOut, "%s Removed template repository %s\n", f.IOStreams.ColorScheme().SuccessIcon(), opts.Names[0])
	return nil
}

func templatesUpdate(ctx context.Context, opts *TemplatesOptions) error {
	f := opts.Factory
	m, err := f.TemplateRepos()
	if err != nil {
		return err
	}
	updated, err := m.Update(ctx, opts.Names...)
	cs := f.IOStreams.ColorScheme()
	for _, r := range updated {
		fmt.Fprintf(f.IOStreams.ErrOut, "%s Updated %s to %s\n", cs.SuccessIcon(), r.Name, shortCommit(r.Commit))
	}
	if err == nil && len(updated) == 0 {
		fmt.Fprintln(f.IOStreams.ErrOut, "No template repositories to update; add one with `skiff templates add`")
	}
	return err
}
