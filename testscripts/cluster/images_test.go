package main

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

func TestBuildImage(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "server")
	if err := os.WriteFile(bin, []byte("not really a binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	img, err := buildImage(binaryImage{Binary: bin, Args: []string{"-v"}, User: "65532"})
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{"/server"}) || !slices.Equal(cf.Config.Cmd, []string{"-v"}) || cf.Config.User != "65532" || cf.OS != "linux" {
		t.Errorf("config: entrypoint %q cmd %q user %q os %q", cf.Config.Entrypoint, cf.Config.Cmd, cf.Config.User, cf.OS)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	found := map[string]int64{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		found[h.Name] = h.Mode
	}
	if found["server"] != 0o755 {
		t.Errorf("files in the image: %v, want server with mode 0755", found)
	}
}
