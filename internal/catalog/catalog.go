// Package catalog finds scaffolding templates in a file tree and describes
// them: each folder holding a template.yaml is one template.
package catalog

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/skiffdev/skiff/internal/project"
)

// ManifestName is the file that marks a folder as a template.
const ManifestName = "template.yaml"

// EmbeddedRepo is the name of the templates built into skiff.
const EmbeddedRepo = "builtin"

// maxDepth bounds how deep Discover looks for templates in a repository.
const maxDepth = 4

// Manifest is the content of template.yaml.
type Manifest struct {
	// Name of the template within its language and kind, e.g. "http".
	Name        string `json:"name" yaml:"name"`
	Kind        string `json:"kind" yaml:"kind"`
	Lang        string `json:"lang" yaml:"lang"`
	Description string `json:"description" yaml:"description"`
	// Port is the port the generated code listens on (default 8080).
	Port int `json:"port,omitempty" yaml:"port,omitempty"`
	// Health is the HTTP path the generated code answers liveness checks on.
	Health string `json:"health,omitempty" yaml:"health,omitempty"`
	// Ready is the HTTP path the generated code answers readiness checks on.
	Ready   string   `json:"ready,omitempty" yaml:"ready,omitempty"`
	Prompts []Prompt `json:"prompts,omitempty" yaml:"prompts,omitempty"`
	// Include lists folders of the repository (slash paths from its root)
	// whose files every workload of this template gets too; the
	// template's own files win over included ones of the same name.
	Include []string `json:"include,omitempty" yaml:"include,omitempty"`
}

// Prompt is a value a template asks for, available to its files as
// {{.Values.NAME}}.
type Prompt struct {
	Name    string   `json:"name" yaml:"name"`
	Message string   `json:"message" yaml:"message"`
	Default string   `json:"default,omitempty" yaml:"default,omitempty"`
	Choices []string `json:"choices,omitempty" yaml:"choices,omitempty"`
}

// Template is one template found in a repository.
type Template struct {
	Manifest
	// Repo is the repository the template comes from ("builtin" for the
	// embedded set).
	Repo string `json:"repo"`
	// Dir is the template's folder within the repository's FS.
	Dir string `json:"dir"`
	// FS is the repository's file tree.
	FS fs.FS `json:"-"`
}

// ID names a template uniquely: repo/lang/kind/name.
func (t *Template) ID() string {
	return strings.Join([]string{t.Repo, t.Lang, t.Kind, t.Name}, "/")
}

// Discover finds every template in fsys. A broken template.yaml is an
// error naming the file, not a silently missing template.
func Discover(repo string, fsys fs.FS) ([]*Template, error) {
	var out []*Template
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != "." && (strings.HasPrefix(d.Name(), ".") || strings.Count(p, "/") >= maxDepth) {
				return fs.SkipDir
			}
			return nil
		}
		if d.Name() != ManifestName {
			return nil
		}
		t, err := readTemplate(repo, fsys, path.Dir(p))
		if err != nil {
			return err
		}
		out = append(out, t)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := checkUnique(out); err != nil {
		return nil, err
	}
	Sort(out)
	return out, nil
}

func readTemplate(repo string, fsys fs.FS, dir string) (*Template, error) {
	file := path.Join(dir, ManifestName)
	data, err := fs.ReadFile(fsys, file)
	if err != nil {
		return nil, err
	}
	var m Manifest
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("template %s: %s: %v", repo, file, err)
	}
	if m.Port == 0 {
		m.Port = project.DefaultPort
	}
	if m.Health == "" {
		m.Health = project.DefaultHealth
	}
	if m.Ready == "" {
		m.Ready = project.DefaultReady
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("template %s: %s: %w", repo, file, err)
	}
	for i, inc := range m.Include {
		clean := path.Clean(inc)
		if inc == "" || path.IsAbs(inc) || clean == ".." || strings.HasPrefix(clean, "../") || strings.Contains(inc, `\`) {
			return nil, fmt.Errorf("template %s: %s: include[%d] %q must be a folder of the repository, as a path from its root without '..'", repo, file, i, inc)
		}
		if fi, err := fs.Stat(fsys, clean); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("template %s: %s: include[%d] %q is not a folder of the repository", repo, file, i, inc)
		}
		m.Include[i] = clean
	}
	return &Template{Manifest: m, Repo: repo, Dir: dir, FS: fsys}, nil
}

func (m *Manifest) validate() error {
	switch {
	case project.ValidName(m.Name) != "":
		return fmt.Errorf("name %s; use a DNS-1123 label such as http", project.ValidName(m.Name))
	case !slices.Contains(project.Kinds(), m.Kind):
		return fmt.Errorf("kind %q is not one of %s", m.Kind, strings.Join(project.Kinds(), ", "))
	case !slices.Contains(project.Langs(), m.Lang):
		return fmt.Errorf("lang %q is not one of %s", m.Lang, strings.Join(project.Langs(), ", "))
	case m.Port < 1 || m.Port > 65535:
		return fmt.Errorf("port %d is out of range 1-65535", m.Port)
	}
	seen := map[string]bool{}
	for i, p := range m.Prompts {
		if !isIdent(p.Name) {
			return fmt.Errorf("prompts[%d].name %q must be a Go identifier (letters, digits, _)", i, p.Name)
		}
		if seen[p.Name] {
			return fmt.Errorf("prompts[%d].name %q is used twice", i, p.Name)
		}
		seen[p.Name] = true
		if len(p.Choices) > 0 && p.Default != "" && !slices.Contains(p.Choices, p.Default) {
			return fmt.Errorf("prompts[%d].default %q is not one of its choices", i, p.Default)
		}
	}
	return nil
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9') {
			continue
		}
		return false
	}
	return true
}

func checkUnique(ts []*Template) error {
	seen := map[string]string{}
	for _, t := range ts {
		if other, ok := seen[t.ID()]; ok {
			return fmt.Errorf("template %s is defined twice, in %s and %s; give one of them another name", t.ID(), other, t.Dir)
		}
		seen[t.ID()] = t.Dir
	}
	return nil
}

// Sort orders templates by repo (builtin first), lang, kind and name.
func Sort(ts []*Template) {
	sort.SliceStable(ts, func(i, j int) bool {
		a, b := ts[i], ts[j]
		if a.Repo != b.Repo {
			if a.Repo == EmbeddedRepo || b.Repo == EmbeddedRepo {
				return a.Repo == EmbeddedRepo
			}
			return a.Repo < b.Repo
		}
		return a.Lang+"/"+a.Kind+"/"+a.Name < b.Lang+"/"+b.Kind+"/"+b.Name
	})
}

// Query selects templates; empty fields match anything.
type Query struct {
	Repo, Lang, Kind, Name string
}

// Filter returns the templates matching q.
func Filter(ts []*Template, q Query) []*Template {
	var out []*Template
	for _, t := range ts {
		if (q.Repo == "" || q.Repo == t.Repo) && (q.Lang == "" || q.Lang == t.Lang) &&
			(q.Kind == "" || q.Kind == t.Kind) && (q.Name == "" || q.Name == t.Name) {
			out = append(out, t)
		}
	}
	return out
}

// SplitName splits a --template value "repo/name" into its parts; a plain
// "name" has no repo.
func SplitName(v string) (repo, name string) {
	if i := strings.LastIndexByte(v, '/'); i >= 0 {
		return v[:i], v[i+1:]
	}
	return "", v
}
