package dev

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/skiffdev/skiff/internal/build"
	"github.com/skiffdev/skiff/internal/project"
)

// Runner runs the cycles of one place the workloads run: this machine
// (*Local) or the cluster (package dev/cluster).
type Runner interface {
	// Cycle rebuilds one workload and replaces what runs of it, keeping
	// what ran when that fails. Cycles never overlap for one workload.
	Cycle(ctx context.Context, workload string)
	// SetProject replaces the project (skiff.yaml changed).
	SetProject(p *project.Project)
	// URL is where the workload answers on this machine.
	URL(workload string) string
	// Stop ends what Cycle started that must not outlive the loop.
	Stop()
}

// Reconfigurer is a Runner that applies some skiff.yaml edits without a
// cycle (dev --local: a live config).
type Reconfigurer interface {
	// Reconfigure takes the new project, as SetProject does, and returns
	// the workloads whose edit needs a cycle.
	Reconfigure(p *project.Project) []string
}

// Session is `skiff dev`: run the workloads, then run a cycle of each one
// whose inputs change, and of every one when skiff.yaml changes, until ctx
// ends; then stop what must stop.
type Session struct {
	// Project is the project as loaded at start; Root its folder.
	Project *project.Project
	Root    string
	// Manifest is the path of skiff.yaml.
	Manifest string
	// Workloads are the names of the workloads run.
	Workloads []string
	// Load reads skiff.yaml again, resolved as at start.
	Load func() (*project.Project, error)
	// Runner runs the cycles.
	Runner Runner
	// Events receives the loop's events.
	Events *Emitter
	// Debounce is the watcher's quiet time (0: DefaultDebounce).
	Debounce time.Duration
	// Outside lists what a workload's build reads outside its folder (Go
	// replace folders, a module root above it), watched too (nil: none).
	Outside func(ctx context.Context, dir, lang string) ([]build.Outside, error)
}

// outsideSource watches an input outside the workload's folder: a folder,
// or a file (go.work) through its folder.
func outsideSource(workload string, o build.Outside) Source {
	if fi, err := os.Stat(o.Path); err == nil && !fi.IsDir() {
		base := filepath.Base(o.Path)
		return Source{Workload: workload, Dir: filepath.Dir(o.Path), Skip: func(rel string, _ bool) bool { return rel != base }}
	}
	return Source{Workload: workload, Dir: o.Path, Skip: o.Skip}
}

// Run runs the session until ctx ends or watching fails.
func (s *Session) Run(ctx context.Context) error {
	w := &Watcher{Manifest: s.Manifest, Debounce: s.Debounce}
	for _, n := range s.Workloads {
		wl, _ := s.Project.Workload(n)
		dir := filepath.Join(s.Root, filepath.FromSlash(wl.Path))
		in, err := build.LoadInputs(dir, wl.Lang)
		if err != nil {
			return err
		}
		w.Sources = append(w.Sources, Source{Workload: n, Dir: dir, Skip: in.Skip})
		if s.Outside == nil {
			continue
		}
		outside, err := s.Outside(ctx, dir, wl.Lang)
		if err != nil {
			return err
		}
		for _, o := range outside {
			w.Sources = append(w.Sources, outsideSource(n, o))
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cycles := &Cycles{Run: s.Runner.Cycle}
	if r, ok := s.Runner.(interface{ SetRetry(func(string)) }); ok {
		r.SetRetry(func(workload string) { cycles.Request(ctx, workload) })
	}
	defer func() {
		cancel()
		cycles.Wait()
		s.Runner.Stop()
	}()
	changes := make(chan Change)
	watchErr := make(chan error, 1)
	go func() { watchErr <- w.Run(ctx, changes) }()
	for _, n := range s.Workloads {
		s.Events.Emit(Event{Kind: Watching, Workload: n, URL: s.Runner.URL(n)})
		cycles.Request(ctx, n)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-watchErr:
			return err
		case c := <-changes:
			names := c.Workloads
			if c.Manifest {
				np, err := s.Load()
				if err != nil {
					s.Events.Emit(Event{Kind: ManifestError, Error: err.Error() + "; still running what was loaded before"})
					continue
				}
				// env, config, ports may have changed: a cycle of each (on the
				// cluster, one whose image and settings are the same is a
				// no-op), but those the runner reconfigured in place.
				if r, ok := s.Runner.(Reconfigurer); ok {
					need := r.Reconfigure(np)
					for _, n := range s.Workloads {
						if slices.Contains(need, n) && !slices.Contains(names, n) {
							names = append(names, n)
						}
					}
				} else {
					s.Runner.SetProject(np)
					names = s.Workloads
				}
			}
			for _, n := range names {
				cycles.Request(ctx, n)
			}
		}
	}
}
