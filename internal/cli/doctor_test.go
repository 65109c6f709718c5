package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffdev/skiff/internal/project"
)

// On a terminal, doctor shows a spinner while its checks run (they take
// seconds): not a silent wait.
func TestDoctorSpinsOnATerminal(t *testing.T) {
	f, dir, errOut := testFactoryBuffers(t, true)
	manifest := "apiVersion: skiff.dev/v1alpha1\nname: shop\nworkloads:\n  - name: hello\n    kind: function\n    lang: go\n"
	if err := os.WriteFile(filepath.Join(dir, project.FileName), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	f.Globals.Kubeconfig = filepath.Join(dir, "no-kubeconfig")
	opts := &DoctorOptions{Factory: f, Run: func(context.Context, string, ...string) (string, error) {
		return "go version go1.26.0 linux/amd64", nil
	}}
	_ = doctorRun(context.Background(), opts)
	if !strings.Contains(errOut.String(), "checking toolchains, registry and cluster") {
		t.Errorf("no spinner on stderr:\n%q", errOut.String())
	}
}
