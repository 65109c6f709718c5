package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/prompt"
)

const twoWorkloads = `apiVersion: skiff.dev/v1alpha1
name: shop
workloads:
  - name: hello
    kind: function
    lang: go
    config: {GREETING: hi}
  - name: pay
    kind: service
    lang: go
    port: 8081
`

// On a terminal, a command that needs one workload of several asks which;
// add asks for the name it was not given.
func TestPickAsksOnATerminal(t *testing.T) {
	f, dir, errOut := testFactoryBuffers(t, true)
	if err := os.WriteFile(filepath.Join(dir, project.FileName), []byte(twoWorkloads), 0o644); err != nil {
		t.Fatal(err)
	}
	fp := &fakePrompter{t: t, answers: map[string]string{"Workload:": "hello"}}
	f.Prompter = func() (prompt.Prompter, error) { return fp, nil }
	if code, out, stderr := runCLI(t, f, errOut, "config", "list"); code != 0 || !strings.Contains(out, "GREETING") {
		t.Fatalf("config list on a terminal: exit %d\n%s%s", code, out, stderr)
	}

	fp.answers = map[string]string{"Name of the new workload:": "mail", "Kind of workload:": "service", "Language:": "go", "Template:": "http — "}
	if code, out, stderr := runCLI(t, f, errOut, "add"); code != 0 {
		t.Fatalf("add on a terminal: exit %d\n%s%s", code, out, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "mail")); err != nil {
		t.Errorf("add did not create the workload it asked the name of: %v (asked %v)", err, fp.asked)
	}
}

// Without a terminal, the same is a usage error naming how to choose.
func TestPickNoTerminal(t *testing.T) {
	f, dir, errOut := testFactoryBuffers(t, false)
	if err := os.WriteFile(filepath.Join(dir, project.FileName), []byte(twoWorkloads), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, f, errOut, "config", "list"); code != 2 || !strings.Contains(stderr, "name the workload") {
		t.Fatalf("config list: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := runCLI(t, f, errOut, "add"); code != 2 || !strings.Contains(stderr, "skiff add takes the new workload's name") {
		t.Fatalf("add: exit %d\n%s", code, stderr)
	}
}
