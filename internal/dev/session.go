package dev

import (
	"context"
	"path/filepath"
	"time"

	"github.com/skiffdev/skiff/internal/build"
	"github.com/skiffdev/skiff/internal/project"
)

// Session is `skiff dev --local`: start the workloads, then rebuild and
// restart each one whose inputs change, and every one when skiff.yaml
// changes, until ctx ends; then stop them all.
type Session struct {
	// Manifest is the path of skiff.yaml.
	Manifest string
	// Workloads are the names of the workloads run.
	Workloads []string
	// Load reads skiff.yaml again, resolved as at start.
	Load func() (*project.Project, error)
	// Local runs the workloads.
	Local *Local
	// Debounce is the watcher's quiet time (0: DefaultDebounce).
	Debounce time.Duration
}

// Run runs the session until ctx ends or watching fails.
func (s *Session) Run(ctx context.Context) error {
	p := s.Local.Project
	w := &Watcher{Manifest: s.Manifest, Debounce: s.Debounce}
	for _, n := range s.Workloads {
		wl, _ := p.Workload(n)
		dir := filepath.Join(s.Local.Root, filepath.FromSlash(wl.Path))
		in, err := build.LoadInputs(dir, wl.Lang)
		if err != nil {
			return err
		}
		w.Sources = append(w.Sources, Source{Workload: n, Dir: dir, Inputs: in})
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cycles := &Cycles{Run: s.Local.Cycle}
	defer func() {
		cancel()
		cycles.Wait()
		s.Local.Stop()
	}()
	changes := make(chan Change)
	watchErr := make(chan error, 1)
	go func() { watchErr <- w.Run(ctx, changes) }()
	for _, n := range s.Workloads {
		wl, _ := p.Workload(n)
		s.Local.emit(Event{Kind: Watching, Workload: n, URL: URL(wl)})
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
					s.Local.emit(Event{Kind: ManifestError, Error: err.Error() + "; still running what was loaded before"})
					continue
				}
				s.Local.SetProject(np)
				names = s.Workloads // env, config, ports may have changed: restart all
			}
			for _, n := range names {
				cycles.Request(ctx, n)
			}
		}
	}
}
