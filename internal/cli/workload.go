package cli

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/skiffdev/skiff/internal/catalog"
	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/prompt"
	"github.com/skiffdev/skiff/internal/scaffold"
)

// workloadChoice is what init and add need to know to create a workload:
// each field comes from a flag, else from a prompt on a terminal, else from
// its default, else it is a usage error naming the flag.
type workloadChoice struct {
	Kind     string
	Lang     string
	Template string
	Name     string
	Vars     []string // KEY=VALUE answers to the template's prompts
}

// chosen is a workload choice resolved against the template catalog.
type chosen struct {
	Template *catalog.Template
	Name     string
	Port     int
	Values   map[string]string
}

// resolve fills in what the flags left out. defaultName is offered for the
// workload's name; ask is nil when prompts are not allowed.
func (c *workloadChoice) resolve(all []*catalog.Template, defaultName string, ask prompt.Prompter) (*chosen, error) {
	var err error
	if c.Kind, err = pickOne(ask, "Kind of workload:", "--kind", c.Kind, project.Kinds(), available(all, func(t *catalog.Template) string { return t.Kind })); err != nil {
		return nil, err
	}
	langs := available(catalog.Filter(all, catalog.Query{Kind: c.Kind}), func(t *catalog.Template) string { return t.Lang })
	if c.Lang, err = pickOne(ask, "Language:", "--lang", c.Lang, project.Langs(), langs); err != nil {
		return nil, err
	}
	t, err := c.pickTemplate(all, ask)
	if err != nil {
		return nil, err
	}
	if c.Name == "" && ask != nil {
		if c.Name, err = ask.Input("Name of the "+c.Kind+":", defaultName, nameValidator); err != nil {
			return nil, err
		}
	}
	if c.Name == "" {
		c.Name = defaultName
	}
	if c.Name == "" {
		return nil, cmdutil.Usagef("--name is required: the %s's name, e.g. --name hello", c.Kind)
	}
	if why := project.ValidName(c.Name); why != "" {
		return nil, cmdutil.Usagef("--name %s; %s", why, "use lowercase letters, digits and '-', starting and ending with a letter or digit")
	}
	values, err := templateValues(t, c.Vars, ask)
	if err != nil {
		return nil, err
	}
	return &chosen{Template: t, Name: c.Name, Port: t.Port, Values: values}, nil
}

func nameValidator(s string) error {
	if why := project.ValidName(s); why != "" {
		return fmt.Errorf("the name %s; use lowercase letters, digits and '-'", why)
	}
	return nil
}

// available lists the distinct values of key over the templates, sorted.
func available(ts []*catalog.Template, key func(*catalog.Template) string) []string {
	var out []string
	for _, t := range ts {
		if v := key(t); !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}

// pickOne validates a flag value against valid, or asks for it among
// offered, or fails naming the flag.
func pickOne(ask prompt.Prompter, message, flag, value string, valid, offered []string) (string, error) {
	if value != "" {
		if !slices.Contains(valid, value) {
			return "", cmdutil.Usagef("%s %q is not known; use one of: %s", flag, value, strings.Join(valid, ", "))
		}
		if !slices.Contains(offered, value) {
			return "", cmdutil.Usagef("%s %q: no template offers it here; available: %s", flag, value, strings.Join(offered, ", "))
		}
		return value, nil
	}
	if len(offered) == 0 {
		return "", fmt.Errorf("no templates are available for %s; check `skiff templates list`", flag)
	}
	if ask == nil {
		return "", cmdutil.Usagef("%s is required when not prompting: use one of %s", flag, strings.Join(offered, ", "))
	}
	return ask.Select(message, offered, "")
}

func (c *workloadChoice) pickTemplate(all []*catalog.Template, ask prompt.Prompter) (*catalog.Template, error) {
	candidates := catalog.Filter(all, catalog.Query{Kind: c.Kind, Lang: c.Lang})
	if c.Template == "" && ask != nil && len(candidates) > 1 {
		labels := make([]string, len(candidates))
		def := ""
		for i, t := range candidates {
			labels[i] = templateLabel(t)
			if t.Repo == catalog.EmbeddedRepo && t.Name == project.DefaultTemplate {
				def = labels[i]
			}
		}
		answer, err := ask.Select("Template:", labels, def)
		if err != nil {
			return nil, err
		}
		return candidates[slices.Index(labels, answer)], nil
	}
	name := c.Template
	if name == "" {
		name = project.DefaultTemplate
	}
	repo, short := catalog.SplitName(name)
	matches := catalog.Filter(candidates, catalog.Query{Repo: repo, Name: short})
	if len(matches) == 0 {
		names := make([]string, len(candidates))
		for i, t := range candidates {
			names[i] = templateRef(t)
		}
		if len(names) == 0 {
			return nil, cmdutil.Usagef("no template for a %s in %s", c.Kind, c.Lang)
		}
		return nil, cmdutil.Usagef("--template %q: no such template for a %s in %s; available: %s", name, c.Kind, c.Lang, strings.Join(names, ", "))
	}
	// Sorted catalog: a built-in template wins over a repository's of the
	// same name unless the repository is named.
	return matches[0], nil
}

// templateRef is how --template names t: "name" for built-in templates,
// "repo/name" for the others.
func templateRef(t *catalog.Template) string {
	if t.Repo == catalog.EmbeddedRepo {
		return t.Name
	}
	return t.Repo + "/" + t.Name
}

func templateLabel(t *catalog.Template) string {
	return templateRef(t) + " — " + t.Description
}

// templateValues answers a template's prompts from KEY=VALUE flags, else by
// asking, else with their defaults.
func templateValues(t *catalog.Template, vars []string, ask prompt.Prompter) (map[string]string, error) {
	given := map[string]string{}
	for _, kv := range vars {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, cmdutil.Usagef("--var %q must be KEY=VALUE", kv)
		}
		given[k] = v
	}
	values := map[string]string{}
	for _, p := range t.Prompts {
		v, ok := given[p.Name]
		delete(given, p.Name)
		switch {
		case ok:
		case ask != nil && len(p.Choices) > 0:
			var err error
			if v, err = ask.Select(p.Message, p.Choices, p.Default); err != nil {
				return nil, err
			}
		case ask != nil:
			var err error
			if v, err = ask.Input(p.Message, p.Default, nil); err != nil {
				return nil, err
			}
		default:
			v = p.Default
		}
		if len(p.Choices) > 0 && !slices.Contains(p.Choices, v) {
			return nil, cmdutil.Usagef("--var %s=%q: use one of %s", p.Name, v, strings.Join(p.Choices, ", "))
		}
		values[p.Name] = v
	}
	for k := range given {
		names := make([]string, len(t.Prompts))
		for i, p := range t.Prompts {
			names[i] = p.Name
		}
		if len(names) == 0 {
			return nil, cmdutil.Usagef("--var %s: template %s takes no values", k, templateRef(t))
		}
		return nil, cmdutil.Usagef("--var %s: template %s takes only %s", k, templateRef(t), strings.Join(names, ", "))
	}
	return values, nil
}

// renderWorkload renders the chosen template into files under dir (a
// slash-separated folder relative to the project root).
func renderWorkload(c *chosen, projectName, dir string) ([]scaffold.File, error) {
	files, err := scaffold.Render(c.Template, scaffold.Data{
		Name: c.Name, Project: projectName, Kind: c.Template.Kind, Lang: c.Template.Lang,
		Template: c.Template.Name, Port: c.Port, Values: c.Values,
	})
	if err != nil {
		return nil, err
	}
	for i := range files {
		files[i].Path = path.Join(dir, files[i].Path)
	}
	return files, nil
}

// workloadOf is the manifest entry of a chosen template.
func workloadOf(c *chosen, dir string) project.Workload {
	w := project.Workload{Name: c.Name, Kind: c.Template.Kind, Lang: c.Template.Lang,
		Template: templateRef(c.Template), Path: dir, Port: c.Port, Health: c.Template.Health, Ready: c.Template.Ready}
	if w.Port == project.DefaultPort {
		w.Port = 0
	}
	return w
}

// prompter returns the Prompter when prompts are allowed, else nil.
func prompter(f *cmdutil.Factory) (prompt.Prompter, error) {
	if !f.IOStreams.CanPrompt() {
		return nil, nil
	}
	return f.Prompter()
}

// workloadName is the workload a command was given, as an argument or with
// -w (both only when they agree).
func workloadName(arg, flag string) (string, error) {
	switch {
	case arg == "":
		return flag, nil
	case flag == "" || flag == arg:
		return arg, nil
	}
	return "", cmdutil.Usagef("%s or -w %s: name the workload once", arg, flag)
}

// chooseWorkload returns the workload named, else the project's only one,
// else, on a terminal, the one the user picks.
func chooseWorkload(f *cmdutil.Factory, pc *projectContext, name string) (*project.Workload, error) {
	names := pc.project.WorkloadNames()
	if name == "" && len(names) > 1 {
		ask, err := prompter(f)
		if err != nil {
			return nil, err
		}
		if ask == nil {
			return nil, cmdutil.Usagef("name the workload (as an argument, or with -w): the project has %s", strings.Join(names, ", "))
		}
		if name, err = ask.Select("Workload:", names, ""); err != nil {
			return nil, err
		}
	}
	if name != "" {
		if _, ok := pc.project.Workload(name); !ok {
			return nil, cmdutil.Usagef("the project has no workload %q; it has: %s", name, strings.Join(names, ", "))
		}
	}
	return pickWorkload(pc, name)
}

// firstArg is args[0], or "".
func firstArg(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

// splitWorkloadArg takes the workload off args of the form [WORKLOAD]
// KEY...: the first argument is the workload when keys follow it and it
// names a workload of the project around the folder.
func splitWorkloadArg(f *cmdutil.Factory, flag string, args []string) (string, []string, error) {
	if len(args) < 2 {
		return flag, args, nil
	}
	// Quietly: the command loads the project again, and reports on it.
	_, p, err := readManifest(f)
	if err != nil {
		return "", nil, err
	}
	if _, ok := p.Workload(args[0]); !ok {
		return flag, args, nil
	}
	name, err := workloadName(args[0], flag)
	return name, args[1:], err
}
