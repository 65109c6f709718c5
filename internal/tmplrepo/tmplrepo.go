// Package tmplrepo manages template repositories: git repositories of
// scaffolding templates that the user added, each pinned to a ref and
// checked out under skiff's config folder.
package tmplrepo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/skiffdev/skiff/internal/catalog"
	"github.com/skiffdev/skiff/internal/fsutil"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/scaffold"
)

// gitTimeout bounds one git command (a clone of a large repository over a
// slow link is the worst case).
const gitTimeout = 5 * time.Minute

// Repo is one template repository.
type Repo struct {
	Name string `json:"name" yaml:"name"`
	URL  string `json:"url" yaml:"url"`
	// Ref is the branch, tag or commit the repository is pinned to; empty
	// means the remote's default branch.
	Ref string `json:"ref,omitempty" yaml:"ref,omitempty"`
	// Commit is the commit checked out, resolved from Ref.
	Commit string `json:"commit" yaml:"commit"`
}

type config struct {
	Repositories []Repo `yaml:"repositories"`
}

// Manager keeps the list of repositories in DIR/repositories.yaml and their
// checkouts in DIR/repositories/NAME.
type Manager struct {
	dir string
	// Git is the git binary to run.
	Git string
}

// New returns a Manager storing its state in dir.
func New(dir string) *Manager { return &Manager{dir: dir, Git: "git"} }

func (m *Manager) configPath() string       { return filepath.Join(m.dir, "repositories.yaml") }
func (m *Manager) checkout(n string) string { return filepath.Join(m.dir, "repositories", n) }

// List returns the repositories, sorted by name.
func (m *Manager) List() ([]Repo, error) {
	c, err := m.load()
	if err != nil {
		return nil, err
	}
	return c.Repositories, nil
}

func (m *Manager) load() (*config, error) {
	data, err := os.ReadFile(m.configPath())
	if errors.Is(err, os.ErrNotExist) {
		return &config{}, nil
	}
	if err != nil {
		return nil, err
	}
	var c config
	if err := yaml.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("%s is damaged: %v; fix or delete it", m.configPath(), err)
	}
	sort.Slice(c.Repositories, func(i, j int) bool { return c.Repositories[i].Name < c.Repositories[j].Name })
	return &c, nil
}

func (m *Manager) save(c *config) error {
	if err := os.MkdirAll(m.dir, 0o755); err != nil {
		return err
	}
	sort.Slice(c.Repositories, func(i, j int) bool { return c.Repositories[i].Name < c.Repositories[j].Name })
	data, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(m.configPath(), data, 0o644)
}

// Templates returns the templates of every repository. A repository whose
// checkout is missing or broken is an error naming it and the fix.
func (m *Manager) Templates() ([]*catalog.Template, error) {
	repos, err := m.List()
	if err != nil {
		return nil, err
	}
	var out []*catalog.Template
	for _, r := range repos {
		ts, err := catalog.Discover(r.Name, os.DirFS(m.checkout(r.Name)))
		if err != nil {
			return nil, fmt.Errorf("template repository %s: %w; run `skiff templates update %s` or remove it", r.Name, err, r.Name)
		}
		out = append(out, ts...)
	}
	return out, nil
}

// Add clones url at ref as repository name, checks that it holds valid
// templates, and records it. Nothing is recorded when any step fails.
func (m *Manager) Add(ctx context.Context, name, url, ref string) (*Repo, []*catalog.Template, error) {
	if why := project.ValidName(name); why != "" {
		return nil, nil, fmt.Errorf("repository name %s; use lowercase letters, digits and '-'", why)
	}
	if name == catalog.EmbeddedRepo {
		return nil, nil, fmt.Errorf("%q is the name of the built-in templates; choose another name", name)
	}
	c, err := m.load()
	if err != nil {
		return nil, nil, err
	}
	for _, r := range c.Repositories {
		if r.Name == name {
			return nil, nil, fmt.Errorf("a template repository named %s already exists (%s); remove it first or choose another name", name, r.URL)
		}
	}
	url, err = normalizeURL(url)
	if err != nil {
		return nil, nil, err
	}
	repo := Repo{Name: name, URL: url, Ref: ref}
	ts, err := m.fetchInto(ctx, &repo)
	if err != nil {
		return nil, nil, err
	}
	c.Repositories = append(c.Repositories, repo)
	if err := m.save(c); err != nil {
		os.RemoveAll(m.checkout(name))
		return nil, nil, err
	}
	return &repo, ts, nil
}

// Remove forgets a repository and deletes its checkout.
func (m *Manager) Remove(name string) error {
	c, err := m.load()
	if err != nil {
		return err
	}
	kept := c.Repositories[:0]
	found := false
	for _, r := range c.Repositories {
		if r.Name == name {
			found = true
			continue
		}
		kept = append(kept, r)
	}
	if !found {
		return &NotFoundError{Name: name}
	}
	c.Repositories = kept
	if err := m.save(c); err != nil {
		return err
	}
	return os.RemoveAll(m.checkout(name))
}

// NotFoundError is returned for a repository name that was never added.
type NotFoundError struct{ Name string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("no template repository named %s; `skiff templates list` shows them", e.Name)
}

// Update fetches each named repository (all when names is empty) again at
// its ref. A repository that fails keeps its old checkout.
func (m *Manager) Update(ctx context.Context, names ...string) ([]Repo, error) {
	c, err := m.load()
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var updated []Repo
	for i := range c.Repositories {
		r := &c.Repositories[i]
		if len(want) > 0 && !want[r.Name] {
			continue
		}
		delete(want, r.Name)
		if _, err := m.fetchInto(ctx, r); err != nil {
			return updated, err
		}
		updated = append(updated, *r)
		if err := m.save(c); err != nil {
			return updated, err
		}
	}
	for n := range want {
		return updated, &NotFoundError{Name: n}
	}
	return updated, nil
}

// fetchInto clones r.URL at r.Ref into a fresh folder, validates it and
// swaps it in for the repository's checkout, setting r.Commit.
func (m *Manager) fetchInto(ctx context.Context, r *Repo) ([]*catalog.Template, error) {
	parent := filepath.Join(m.dir, "repositories")
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(parent, "."+r.Name+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := m.git(ctx, "", "clone", "--quiet", "--no-checkout", "--", r.URL, tmp); err != nil {
		return nil, fmt.Errorf("cloning template repository %s from %s: %w", r.Name, r.URL, err)
	}
	ref := r.Ref
	if ref == "" {
		ref = "HEAD"
	}
	commit, err := m.gitOut(ctx, tmp, "rev-parse", "--verify", "--quiet", ref+"^{commit}")
	if err != nil {
		// A branch other than the default one exists only as origin/NAME.
		commit, err = m.gitOut(ctx, tmp, "rev-parse", "--verify", "--quiet", "origin/"+ref+"^{commit}")
	}
	if err != nil {
		return nil, fmt.Errorf("template repository %s has no branch, tag or commit %q; check --ref", r.Name, r.Ref)
	}
	if err := m.git(ctx, tmp, "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit); err != nil {
		return nil, fmt.Errorf("checking out %s of template repository %s: %w", ref, r.Name, err)
	}
	os.RemoveAll(filepath.Join(tmp, ".git"))
	if _, err := validate(r.Name, tmp); err != nil {
		return nil, err
	}
	final := m.checkout(r.Name)
	old := final + ".old"
	os.RemoveAll(old)
	if _, err := os.Stat(final); err == nil {
		if err := os.Rename(final, old); err != nil {
			return nil, err
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Rename(old, final)
		return nil, err
	}
	os.RemoveAll(old)
	r.Commit = commit
	// The templates were discovered in tmp; discover again where they live.
	return catalog.Discover(r.Name, os.DirFS(final))
}

// validate checks a checkout holds at least one template and that every
// template renders safely.
func validate(name, dir string) ([]*catalog.Template, error) {
	ts, err := catalog.Discover(name, os.DirFS(dir))
	if err != nil {
		return nil, fmt.Errorf("template repository %s is broken: %w", name, err)
	}
	if len(ts) == 0 {
		return nil, fmt.Errorf("template repository %s has no templates: no folder holds a %s (see docs/templates.md)", name, catalog.ManifestName)
	}
	for _, t := range ts {
		data := scaffold.Data{Name: "example", Project: "example", Kind: t.Kind, Lang: t.Lang, Template: t.Name, Port: t.Port, Values: map[string]string{}}
		for _, p := range t.Prompts {
			data.Values[p.Name] = p.Default
		}
		if _, err := scaffold.Render(t, data); err != nil {
			return nil, fmt.Errorf("template repository %s is broken: %w", name, err)
		}
	}
	return ts, nil
}

func normalizeURL(u string) (string, error) {
	switch {
	case u == "":
		return "", errors.New("the repository URL is empty")
	case strings.HasPrefix(u, "https://"), strings.HasPrefix(u, "http://"), strings.HasPrefix(u, "ssh://"),
		strings.HasPrefix(u, "git://"), strings.HasPrefix(u, "file://"):
		return u, nil
	case strings.Contains(u, "://"):
		return "", fmt.Errorf("%q: unsupported scheme; use https://, ssh://, file:// or a local path", u)
	case isSCPLike(u):
		return u, nil
	}
	abs, err := filepath.Abs(u)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("%s does not exist (%s); give the path of a template repository, or a URL: https://, ssh://, file://", u, abs)
	case err != nil:
		return "", err
	case !fi.IsDir():
		return "", fmt.Errorf("%s is a file, not a folder; give the folder of a template repository, or a URL: https://, ssh://, file://", u)
	}
	return abs, nil
}

// isSCPLike reports whether u looks like git's user@host:path form.
func isSCPLike(u string) bool {
	colon := strings.IndexByte(u, ':')
	slash := strings.IndexByte(u, '/')
	return colon > 0 && (slash < 0 || colon < slash) && strings.Contains(u[:colon], "@")
}

func (m *Manager) git(ctx context.Context, dir string, args ...string) error {
	_, err := m.gitOut(ctx, dir, args...)
	return err
}

func (m *Manager) gitOut(ctx context.Context, dir string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, gitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, m.Git, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=true", "LC_ALL=C")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return "", errors.New("git is not installed; install git to use template repositories")
		}
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", errors.New(strings.TrimPrefix(msg, "fatal: "))
	}
	return strings.TrimSpace(string(out)), nil
}
