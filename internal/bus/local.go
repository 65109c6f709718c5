package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"

	"github.com/skiffdev/skiff/internal/fsutil"
)

// LocalDir is the folder of a project (beside skiff.yaml) where `skiff dev
// --local` keeps its bus's store, its state and its lock.
const LocalDir = ".skiff"

// LocalState is what a running `skiff dev --local` tells the other
// commands of the project (skiff events, skiff invoke): where its bus and
// its sink are.
type LocalState struct {
	PID     int       `json:"pid"`
	Bus     string    `json:"bus"`  // nats://127.0.0.1:<port>
	Sink    string    `json:"sink"` // the workloads' K_SINK
	Stream  string    `json:"stream"`
	Started time.Time `json:"started"`
}

// ErrNoLocalBus says no `skiff dev --local` runs for the project.
var ErrNoLocalBus = errors.New("no skiff dev --local runs for this project")

func statePath(root string) string { return filepath.Join(root, LocalDir, "dev.json") }
func lockPath(root string) string  { return filepath.Join(root, LocalDir, "dev.lock") }

// LocalLock is held by the one `skiff dev --local` of a project for as
// long as it runs: the system releases it when the process ends, however
// it ends, so a state file without it is stale.
type LocalLock struct {
	root string
	fl   *flock.Flock
}

// LockLocal takes the project's lock, or says which process holds it.
func LockLocal(root string) (*LocalLock, error) {
	dir := filepath.Join(root, LocalDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// Nothing in it belongs in version control.
	if _, err := os.Stat(filepath.Join(dir, ".gitignore")); errors.Is(err, fs.ErrNotExist) {
		_ = fsutil.WriteFileAtomic(filepath.Join(dir, ".gitignore"), []byte("# skiff dev --local's bus, state and lock\n*\n"), 0o644)
	}
	fl := flock.New(lockPath(root))
	ok, err := fl.TryLock()
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", lockPath(root), err)
	}
	if !ok {
		who := "another skiff dev --local"
		if st, err := readState(root); err == nil {
			who = fmt.Sprintf("skiff dev --local (pid %d, since %s)", st.PID, st.Started.Local().Format(time.TimeOnly))
		}
		return nil, fmt.Errorf("%s runs for this project already; stop it first (one bus per project)", who)
	}
	return &LocalLock{root: root, fl: fl}, nil
}

// Publish writes the state the project's other commands read.
func (l *LocalLock) Publish(st LocalState) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(statePath(l.root), append(data, '\n'), 0o644)
}

// Release removes the state and lets the lock go.
func (l *LocalLock) Release() {
	_ = os.Remove(statePath(l.root))
	_ = l.fl.Unlock()
	_ = os.Remove(lockPath(l.root))
}

// FindLocal returns the state of the `skiff dev --local` running for the
// project at root: ErrNoLocalBus when none runs, also when a state file
// is left by one that ended without removing it (its lock is free).
func FindLocal(root string) (*LocalState, error) {
	st, err := readState(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoLocalBus
	}
	if err != nil {
		return nil, err
	}
	fl := flock.New(lockPath(root))
	free, err := fl.TryLock()
	if err != nil {
		return nil, fmt.Errorf("checking %s: %w", lockPath(root), err)
	}
	if free {
		_ = fl.Unlock()
		return nil, fmt.Errorf("%w (%s is left by pid %d, which no longer runs)", ErrNoLocalBus, statePath(root), st.PID)
	}
	return st, nil
}

func readState(root string) (*LocalState, error) {
	data, err := os.ReadFile(statePath(root))
	if err != nil {
		return nil, err
	}
	var st LocalState
	if err := json.Unmarshal(data, &st); err != nil || st.Bus == "" {
		return nil, fmt.Errorf("%s is not skiff dev's state; remove it", statePath(root))
	}
	return &st, nil
}
