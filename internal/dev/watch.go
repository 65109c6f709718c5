// Package dev is the inner loop of `skiff dev`: watch the sources of the
// workloads, coalesce a burst of saves into one change, and run one cycle
// per changed workload at a time (rebuild, restart, wait until ready),
// keeping what ran before when a cycle fails.
package dev

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long the watcher waits for a burst of saves (an
// editor's "save all", a git checkout) to end before it reports them.
const DefaultDebounce = 50 * time.Millisecond

// Source is a folder the watcher watches for one workload.
type Source struct {
	Workload string
	Dir      string
	// Skip says which files and folders under Dir (rel is slash-separated)
	// are not inputs of its build (nil: all are).
	Skip func(rel string, isDir bool) bool
}

// Change is a settled burst of changes.
type Change struct {
	// Workloads whose inputs changed, sorted.
	Workloads []string
	// Manifest is true when skiff.yaml changed.
	Manifest bool
}

// Watcher reports changes to the inputs of workloads and to skiff.yaml.
type Watcher struct {
	Sources  []Source
	Manifest string
	// Debounce is the quiet time that ends a burst (0: DefaultDebounce).
	Debounce time.Duration
	// After is the clock (nil: time.After); tests pass a fake.
	After func(time.Duration) <-chan time.Time
}

// Run watches until ctx ends, sending each settled burst on out.
func (w *Watcher) Run(ctx context.Context, out chan<- Change) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching files: %w", err)
	}
	defer fw.Close()
	for _, s := range w.Sources {
		if err := w.addTree(fw, s, s.Dir); err != nil {
			return err
		}
	}
	if w.Manifest != "" {
		// Editors save by rename: watch the folder, match the name.
		if err := fw.Add(filepath.Dir(w.Manifest)); err != nil {
			return fmt.Errorf("watching %s: %w", w.Manifest, err)
		}
	}
	return w.loop(ctx, fw.Events, fw.Errors, func(path string) { // a new folder: watch it too
		for _, s := range w.Sources {
			if rel, ok := w.relTo(s, path); ok && rel != "" {
				_ = w.addTree(fw, s, path)
			}
		}
	}, out)
}

// loop is Run's event loop, apart for tests: events in, settled changes out.
func (w *Watcher) loop(ctx context.Context, events <-chan fsnotify.Event, errs <-chan error, newDir func(string), out chan<- Change) error {
	after := w.After
	if after == nil {
		after = time.After
	}
	debounce := w.Debounce
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	pending := map[string]bool{}
	manifest := false
	var quiet <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case err, ok := <-errs:
			if !ok {
				return nil
			}
			if !errors.Is(err, fsnotify.ErrEventOverflow) {
				return fmt.Errorf("watching files: %w", err)
			}
			// Too many changes at once (a large checkout): rebuild them all.
			for _, s := range w.Sources {
				pending[s.Workload] = true
			}
			quiet = after(debounce)
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			if ev.Op&fsnotify.Create != 0 && newDir != nil {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
					newDir(ev.Name)
				}
			}
			names, isManifest := w.classify(ev.Name)
			if len(names) == 0 && !isManifest {
				continue
			}
			for _, n := range names {
				pending[n] = true
			}
			manifest = manifest || isManifest
			quiet = after(debounce) // every event restarts the quiet time
		case <-quiet:
			quiet = nil
			c := Change{Manifest: manifest}
			for n := range pending {
				c.Workloads = append(c.Workloads, n)
			}
			sort.Strings(c.Workloads)
			pending, manifest = map[string]bool{}, false
			select {
			case out <- c:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// classify says which workloads a changed path is an input of, and
// whether it is skiff.yaml.
func (w *Watcher) classify(path string) (workloads []string, manifest bool) {
	if w.Manifest != "" && filepath.Clean(path) == filepath.Clean(w.Manifest) {
		return nil, true
	}
	for _, s := range w.Sources {
		rel, ok := w.relTo(s, path)
		if !ok || rel == "" {
			continue
		}
		if s.Skip != nil && skipped(s.Skip, rel, path) {
			continue
		}
		workloads = append(workloads, s.Workload)
	}
	return workloads, false
}

// skipped reports whether rel or one of its parent folders is not an input.
func skipped(skip func(string, bool) bool, rel, path string) bool {
	parts := strings.Split(rel, "/")
	for i := 1; i < len(parts); i++ {
		if skip(strings.Join(parts[:i], "/"), true) {
			return true
		}
	}
	isDir := false
	if fi, err := os.Stat(path); err == nil {
		isDir = fi.IsDir()
	}
	return skip(rel, isDir)
}

func (w *Watcher) relTo(s Source, path string) (string, bool) {
	rel, err := filepath.Rel(s.Dir, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	if rel == "." {
		return "", true
	}
	return filepath.ToSlash(rel), true
}

// addTree watches dir and its folders that are inputs.
func (w *Watcher) addTree(fw *fsnotify.Watcher, s Source, dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if rel, _ := w.relTo(s, p); rel != "" && s.Skip != nil && s.Skip(rel, true) {
			return filepath.SkipDir
		}
		if err := fw.Add(p); err != nil {
			return fmt.Errorf("watching %s: %w", p, err)
		}
		return nil
	})
}
