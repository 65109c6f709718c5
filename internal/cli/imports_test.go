package cli

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// forbidden are the packages the command layer must not reach, even
// through the packages it imports (docs/development.md, "Import rule"):
// what talks to a cluster, the bus, a registry or Helm is built by main
// and reaches the commands through cmdutil.Factory as small interfaces.
var forbidden = regexp.MustCompile(`^(k8s\.io/client-go(/.*)?` +
	`|github\.com/nats-io/nats\.go(/.*)?` +
	`|github\.com/google/go-containerregistry/pkg/v1/remote` +
	`|helm\.sh/helm/v3/pkg/(action|release)` +
	`|github\.com/skiffdev/skiff/internal/(kube|bus|deploy|chart))$`)

// TestImportRule checks, with `go list -deps`, that the command layer
// reaches no forbidden package; when it does, it names the package it
// imports that leads there.
func TestImportRule(t *testing.T) {
	var reached []string
	for _, dep := range goList(t, "-deps", ".") {
		if forbidden.MatchString(dep) {
			reached = append(reached, dep)
		}
	}
	if len(reached) == 0 {
		return
	}
	t.Errorf("internal/cli reaches %d forbidden packages: %s", len(reached), strings.Join(first(reached, 5), ", "))
	for _, imp := range goList(t, "-f", `{{join .Imports "\n"}}`, ".") {
		if forbidden.MatchString(imp) {
			t.Errorf("internal/cli imports %s", imp)
			continue
		}
		var via []string
		for _, dep := range goList(t, "-deps", imp) {
			if forbidden.MatchString(dep) {
				via = append(via, dep)
			}
		}
		if len(via) > 0 {
			t.Errorf("internal/cli imports %s, which reaches %s; put it behind an interface of cmdutil's Factory (main builds it)",
				strings.TrimPrefix(imp, "github.com/skiffdev/skiff/"), strings.Join(first(via, 3), ", "))
		}
	}
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], "...")
	}
	return s
}

func goList(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, ee.Stderr)
		}
		t.Fatalf("go list %s: %v", strings.Join(args, " "), err)
	}
	return strings.Fields(string(out))
}
