package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestGeneratedFilesAreFresh fails when docs/commands or completions/ no
// longer match the command tree. Fix: go run ./internal/cli/gendocs
func TestGeneratedFilesAreFresh(t *testing.T) {
	root := filepath.Join("..", "..")
	files, err := GenerateFiles()
	if err != nil {
		t.Fatal(err)
	}
	for rel, want := range files {
		got, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is stale or missing; run `go run ./internal/cli/gendocs`", rel)
		}
	}
	for _, dir := range []string{CommandDocsDir, CompletionsDir} {
		entries, _ := os.ReadDir(filepath.Join(root, dir))
		for _, e := range entries {
			if _, ok := files[dir+"/"+e.Name()]; !ok && e.Name() != "README.md" {
				t.Errorf("%s/%s is not generated any more; run `go run ./internal/cli/gendocs`", dir, e.Name())
			}
		}
	}
}

func TestManPages(t *testing.T) {
	dir := t.TempDir()
	if err := WriteManPages(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"skiff.1", "skiff-init.1", "skiff-templates-add.1"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("missing man page %s", name)
		}
	}
}
