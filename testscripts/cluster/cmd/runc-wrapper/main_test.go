package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSpecFiles(t *testing.T) {
	got := specFiles([]string{"--root", "/r", "--log", "/l", "create", "--bundle", "/b", "--pid-file", "/p", "id"})
	if !slices.Equal(got, []string{"/b/config.json"}) {
		t.Errorf("create: %q", got)
	}
	got = specFiles([]string{"exec", "--process=/tmp/proc.json", "--detach", "id"})
	if !slices.Equal(got, []string{"/tmp/proc.json"}) {
		t.Errorf("exec: %q", got)
	}
	if got := specFiles([]string{"state", "id"}); len(got) != 0 {
		t.Errorf("state: %q", got)
	}
}

func TestClamp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	const spec = `{"ociVersion":"1.0.2","process":{"oomScoreAdj":-998,"user":{"uid":4294967294,"gid":65532}},"linux":{"resources":{"memory":{"limit":9223372036854771712}}}}`
	if err := os.WriteFile(path, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := clamp(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := string(data)
	for _, want := range []string{`"oomScoreAdj":0`, `"uid":4294967294`, `"limit":9223372036854771712`} {
		if !strings.Contains(out, want) {
			t.Errorf("clamped spec lacks %s: %s", want, out)
		}
	}

	// Non-negative values and missing files are left alone.
	const positive = `{"process":{"oomScoreAdj":1000}}`
	if err := os.WriteFile(path, []byte(positive), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := clamp(path); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); string(data) != positive {
		t.Errorf("positive value rewritten: %s", data)
	}
	if err := clamp(filepath.Join(dir, "absent.json")); err != nil {
		t.Errorf("absent file: %v", err)
	}
}
