package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/event"
	"github.com/skiffdev/skiff/internal/project"
)

// DefaultTimeout bounds how long skiff waits for a release to be ready.
const DefaultTimeout = engine.DefaultTimeout

// projectContext is the project a command works on, resolved for the
// selected environment.
type projectContext struct {
	root      string
	project   *project.Project   // resolved for --env, with -n applied
	workloads []project.Workload // selected, in dependency order
	namespace string
}

// readManifest finds skiff.yaml around the working folder and loads it as
// written (no environment resolved); a problem in it is a usage error.
func readManifest(f *cmdutil.Factory) (path string, p *project.Project, err error) {
	wd, err := f.WorkDir()
	if err != nil {
		return "", nil, err
	}
	if path, err = project.Find(wd); err != nil {
		return "", nil, err
	}
	p, err = project.Load(path)
	if project.IsManifestError(err) {
		return "", nil, &cmdutil.UsageError{Err: err}
	}
	if err != nil {
		return "", nil, err
	}
	return path, p, nil
}

// loadProject finds skiff.yaml around the working folder, loads it and
// resolves it for the --env environment and --namespace: the one place
// where what every later step reads (registry, namespace, context,
// platforms, values, the workloads' fields) is decided.
func loadProject(f *cmdutil.Factory) (root string, p *project.Project, err error) {
	manifest, top, err := readManifest(f)
	if err != nil {
		return "", nil, err
	}
	for _, w := range top.Warnings {
		w.File = manifest
		fmt.Fprintf(f.IOStreams.ErrOut, "warning: %v\n", w)
	}
	p, err = top.ForEnv(f.Globals.Env)
	var unknown *project.UnknownEnvError
	if errors.As(err, &unknown) {
		return "", nil, cmdutil.Usagef("--env %s: %v", f.Globals.Env, err)
	}
	if err != nil {
		return "", nil, err
	}
	if ns := f.Globals.Namespace; ns != "" {
		if why := project.ValidName(ns); why != "" {
			return "", nil, cmdutil.Usagef("--namespace %s; use a DNS-1123 label", why)
		}
		p.Namespace = ns
	}
	p.RelayImage = relayImage(f, p)
	if p.Events != nil && p.Events.RelayImage == "" {
		p.Events.RelayImage = p.RelayImage
	}
	return filepath.Dir(manifest), p, nil
}

// relayImage is the skiff-relay image: skiff.yaml's events.relayImage,
// else $SKIFF_RELAY_IMAGE, else the one this release of skiff pins.
func relayImage(f *cmdutil.Factory, p *project.Project) string {
	if p.Events != nil && p.Events.RelayImage != "" {
		return p.Events.RelayImage
	}
	if img := f.Getenv("SKIFF_RELAY_IMAGE"); img != "" {
		return img
	}
	return f.BuildInfo.RelayImage
}

// loadProjectContext loads the project and selects the named workloads
// (all when none), in dependency order.
func loadProjectContext(f *cmdutil.Factory, names []string) (*projectContext, error) {
	root, p, err := loadProject(f)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if _, ok := p.Workload(n); !ok {
			return nil, cmdutil.Usagef("the project has no workload %q; it has: %s", n, strings.Join(p.WorkloadNames(), ", "))
		}
	}
	pc := &projectContext{root: root, project: p, namespace: p.Namespace}
	for _, w := range p.Order() {
		if len(names) == 0 || slices.Contains(names, w.Name) {
			pc.workloads = append(pc.workloads, w)
		}
	}
	return pc, nil
}

// session connects to the project's cluster and returns the session that
// owns every change to it, reporting its events to events (nil: nowhere).
// Close it.
func (pc *projectContext) session(ctx context.Context, f *cmdutil.Factory, events func(event.Event)) (engine.Session, error) {
	return pc.sessionWith(ctx, f, events, helmLog(f))
}

// sessionWith is session with Helm's log going to logf (nil: nowhere).
func (pc *projectContext) sessionWith(ctx context.Context, f *cmdutil.Factory, events func(event.Event), logf func(string, ...any)) (engine.Session, error) {
	return f.Session(ctx, pc.sessionConfig(f, events, logf))
}

// sessionConfig is what a session of the project is built from.
func (pc *projectContext) sessionConfig(f *cmdutil.Factory, events func(event.Event), logf func(string, ...any)) engine.SessionConfig {
	// The kubeconfig's context: --context, else the environment's, else
	// its current one.
	kctx := f.Globals.Context
	if kctx == "" {
		kctx = pc.project.Context
	}
	return engine.SessionConfig{Project: pc.project, Root: pc.root, KubeContext: kctx, Events: events, HelmLog: logf}
}

// helmLog sends Helm's log to stderr with -v.
func helmLog(f *cmdutil.Factory) func(string, ...any) {
	if !f.Globals.Verbose {
		return nil
	}
	return func(format string, args ...any) {
		fmt.Fprintf(f.IOStreams.ErrOut, "helm: "+format+"\n", args...)
	}
}

func addTimeoutFlag(cmd *cobra.Command, d *time.Duration) {
	cmd.Flags().DurationVar(d, "timeout", DefaultTimeout, "how long to wait for the workload to be ready")
}

func checkTimeout(d time.Duration) error {
	if d <= 0 {
		return cmdutil.Usagef("--timeout %s must be positive, e.g. --timeout 2m", d)
	}
	return nil
}
