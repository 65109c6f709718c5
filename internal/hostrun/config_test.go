package hostrun

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readConfigDir reads dir as the templates' plumbing does: every entry not
// starting with a dot that is (through links) a regular file.
func readConfigDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

// TestWriteConfig: each version replaces the last one whole (a key
// removed is gone), and only the newest version's folder is left.
func TestWriteConfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hello")
	for _, values := range []map[string]string{
		{"GREETING": "Hello", "LOG_LEVEL": "info"},
		{"GREETING": "Hi"},
		{},
		{"A": "1", "B": "2"},
	} {
		if err := WriteConfig(dir, values); err != nil {
			t.Fatal(err)
		}
		if got := readConfigDir(t, dir); !maps.Equal(got, values) {
			t.Errorf("after writing %v, the folder holds %v", values, got)
		}
		gens, _ := filepath.Glob(filepath.Join(dir, "..v*"))
		if len(gens) != 1 {
			t.Errorf("versions left: %v", gens)
		}
	}
	if err := WriteConfig(dir, map[string]string{"../x": "1"}); err == nil {
		t.Error("a key that is a path was written")
	}
}
