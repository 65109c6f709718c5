package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadKeyRef(t *testing.T) {
	f, wd := testFactory(t, false)
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(wd, "flag.pub"), []byte("from the working folder"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "skiff.pub"), []byte("from the project"), 0o600); err != nil {
		t.Fatal(err)
	}

	// --key is relative to the working folder, whatever skiff.yaml says.
	ref, data, err := readKeyRef(f, "flag.pub", "skiff.pub", root)
	if err != nil || ref != "flag.pub" || string(data) != "from the working folder" {
		t.Errorf("with --key: %q, %q, %v", ref, data, err)
	}
	// Without it, skiff.yaml's key is relative to the project's root.
	ref, data, err = readKeyRef(f, "", "skiff.pub", root)
	if err != nil || ref != "skiff.pub" || string(data) != "from the project" {
		t.Errorf("from skiff.yaml: %q, %q, %v", ref, data, err)
	}
	// A --key that is not in the working folder is not looked for in the root.
	if _, _, err := readKeyRef(f, "skiff.pub", "", root); err == nil || !strings.Contains(err.Error(), filepath.Join(wd, "skiff.pub")) {
		t.Errorf("--key missing from the working folder: err = %v, want it to name %s", err, filepath.Join(wd, "skiff.pub"))
	}
}
