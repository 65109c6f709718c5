package cmdutil

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/skiffdev/skiff/internal/buildinfo"
	"github.com/skiffdev/skiff/internal/catalog"
	"github.com/skiffdev/skiff/internal/doctor"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/iostreams"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/prompt"
	"github.com/skiffdev/skiff/internal/tmplrepo"
	"github.com/skiffdev/skiff/internal/tui"
	"github.com/skiffdev/skiff/templates"
)

// GlobalOptions are the persistent flags every command has.
type GlobalOptions struct {
	Kubeconfig     string
	Context        string
	Namespace      string
	Env            string
	Output         string
	NoColor        bool
	Verbose        bool
	NonInteractive bool
}

// Factory hands commands their dependencies, building each on first use.
type Factory struct {
	IOStreams *iostreams.IOStreams
	Globals   *GlobalOptions
	BuildInfo buildinfo.Info
	// Getenv reads the environment (tests pass their own).
	Getenv func(string) string
	// Quit is closed at the process's second interrupt (the first ends
	// the command's context); main catches both. nil: never.
	Quit <-chan struct{}
	// WorkDir is the folder commands run in.
	WorkDir func() (string, error)
	// Prompter asks questions on the terminal; only call it when
	// IOStreams.CanPrompt() is true.
	Prompter func() (prompt.Prompter, error)
	// ConfigDir is where skiff keeps its own settings.
	ConfigDir func() (string, error)
	// CacheDir is where skiff keeps its build cache and local image store.
	CacheDir func() (string, error)
	// TemplateRepos manages the user's template repositories.
	TemplateRepos func() (*tmplrepo.Manager, error)
	// Templates lists every template: the embedded ones, then those of the
	// user's repositories.
	Templates func() ([]*catalog.Template, error)
	// Session opens the session that owns the changes a command makes to
	// the project's cluster (it connects to the kubeconfig context of the
	// config, checks that the cluster answers, and reports its steps to
	// the config's Events). Close it. A real process's is built by
	// package factory; tests pass fakes.
	Session func(ctx context.Context, cfg engine.SessionConfig) (engine.Session, error)
	// Bus connects to the event bus of cfg's project (through its cluster
	// when the bus is one of its Services). Close it.
	Bus func(ctx context.Context, cfg engine.SessionConfig) (engine.Bus, error)
	// LocalBus connects to the bus of the `skiff dev --local` running for
	// the project p at root (where says which); when none runs, the error
	// wraps engine.ErrNoLocalBus. nil: none ever runs.
	LocalBus func(ctx context.Context, root string, p *project.Project) (b engine.Bus, where string, err error)
	// Builder builds and publishes images as cfg says.
	Builder func(cfg engine.BuildConfig) (engine.Builder, error)
	// Render renders releases as a deploy would apply them, offline.
	Render func(ctx context.Context, cfg engine.RenderConfig) ([]engine.Rendered, error)
	// ChartValues reads the user's chart overrides as Helm's flags take
	// them (-f, --set, --set-string, --set-file).
	ChartValues func(files, set, setString, setFile []string) (map[string]any, error)
	// Registry is a client of the registries (login checks credentials
	// with it).
	Registry func(insecure []string, userAgent string) (engine.Registry, error)
	// Verifier checks images' signatures and attestations (verify,
	// deploy's and rollback's gate).
	Verifier func(cfg engine.VerifyConfig) (engine.Verifier, error)
	// Probes are doctor's checks of the project's registry and cluster
	// (package probe in a real process).
	Probes func(ctx context.Context, cfg doctor.Config) []doctor.Check
	// Dashboard opens `skiff dash`'s backend on the cluster of a session
	// this Factory's Session opened (package tui/cluster in a real
	// process). Close it.
	Dashboard func(s engine.Session, cfg tui.ClusterConfig) (tui.Cluster, error)
	// DevCluster opens `skiff dev`'s runner on the cluster of a session
	// this Factory's Session opened (package dev/cluster in a real
	// process).
	DevCluster func(ctx context.Context, s engine.Session, cfg engine.DevConfig) (engine.DevRunner, error)
	// DevLocalBus starts `skiff dev --local`'s event bus in this process,
	// for a project that uses events (package dev/localbus in a real
	// process). Close it.
	DevLocalBus func(ctx context.Context, cfg engine.DevBusConfig) (engine.DevBus, error)
}

// New returns a Factory for a real process, without the session (package
// factory adds it: this package imports no cluster, bus, registry or Helm
// package).
func New(ios *iostreams.IOStreams, getenv func(string) string) *Factory {
	f := &Factory{
		IOStreams: ios,
		Globals:   &GlobalOptions{},
		BuildInfo: buildinfo.Get(),
		Getenv:    getenv,
		WorkDir:   os.Getwd,
	}
	f.Prompter = func() (prompt.Prompter, error) {
		return prompt.NewSurvey(ios.In, ios.Out, ios.ErrOut)
	}
	f.ConfigDir = func() (string, error) {
		if d := getenv("SKIFF_CONFIG_DIR"); d != "" {
			return d, nil
		}
		d, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("finding the config folder: %w; set SKIFF_CONFIG_DIR", err)
		}
		return filepath.Join(d, "skiff"), nil
	}
	f.CacheDir = func() (string, error) {
		if d := getenv("SKIFF_CACHE_DIR"); d != "" {
			return d, nil
		}
		d, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("finding the cache folder: %w; set SKIFF_CACHE_DIR", err)
		}
		return filepath.Join(d, "skiff"), nil
	}
	f.TemplateRepos = sync.OnceValues(func() (*tmplrepo.Manager, error) {
		d, err := f.ConfigDir()
		if err != nil {
			return nil, err
		}
		return tmplrepo.New(d), nil
	})
	f.Templates = sync.OnceValues(func() ([]*catalog.Template, error) {
		ts, err := catalog.Discover(catalog.EmbeddedRepo, templates.Scaffold())
		if err != nil {
			return nil, fmt.Errorf("embedded templates: %w", err)
		}
		m, err := f.TemplateRepos()
		if err != nil {
			return nil, err
		}
		more, err := m.Templates()
		if err != nil {
			return nil, err
		}
		return append(ts, more...), nil
	})
	return f
}
