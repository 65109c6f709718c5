package bus

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLocalState: the state of a running dev --local is found while its
// lock is held; a second lock is refused naming the holder; a state file
// left by a process that is gone (its lock free) is stale, not a bus.
func TestLocalState(t *testing.T) {
	root := t.TempDir()
	if _, err := FindLocal(root); !errors.Is(err, ErrNoLocalBus) {
		t.Fatalf("no state: %v", err)
	}
	lock, err := LockLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	st := LocalState{PID: 4242, Bus: "nats://127.0.0.1:4222", Sink: "http://127.0.0.1:8099", Stream: "shop", Started: time.Now()}
	if err := lock.Publish(st); err != nil {
		t.Fatal(err)
	}
	got, err := FindLocal(root)
	if err != nil || got.Bus != st.Bus || got.PID != 4242 {
		t.Fatalf("FindLocal = %+v, %v", got, err)
	}
	if _, err := LockLocal(root); err == nil || !strings.Contains(err.Error(), "pid 4242") {
		t.Fatalf("a second lock: %v, want one naming pid 4242", err)
	}
	if b, err := os.ReadFile(filepath.Join(root, LocalDir, ".gitignore")); err != nil || !strings.Contains(string(b), "*") {
		t.Errorf(".skiff/.gitignore: %q %v", b, err)
	}

	// The process ends without removing its state: the lock is free.
	if err := lock.fl.Unlock(); err != nil {
		t.Fatal(err)
	}
	_, err = FindLocal(root)
	if !errors.Is(err, ErrNoLocalBus) || !strings.Contains(err.Error(), "pid 4242, which no longer runs") {
		t.Fatalf("a stale state: %v", err)
	}
	lock.Release()
	for _, f := range []string{"dev.json", "dev.lock"} {
		if _, err := os.Stat(filepath.Join(root, LocalDir, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after Release: %v", f, err)
		}
	}
}

// TestEmbedded starts the server with JetStream on a loopback port and
// stops it: the port is free again.
func TestEmbedded(t *testing.T) {
	e, err := StartEmbedded(context.Background(), filepath.Join(t.TempDir(), "bus"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(e.URL, "nats://127.0.0.1:") {
		t.Errorf("URL %s", e.URL)
	}
	c, err := Dial(context.Background(), nil, e.URL, Auth{})
	if err != nil {
		t.Fatal(err)
	}
	if what, err := c.Check(context.Background()); err != nil || !strings.Contains(what, "JetStream on") {
		t.Errorf("Check: %q %v", what, err)
	}
	c.Close()
	e.Shutdown()
	if _, err := Dial(context.Background(), nil, e.URL, Auth{}); err == nil {
		t.Error("the server still answers after Shutdown")
	}
}
