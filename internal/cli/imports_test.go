package cli

import (
	"os/exec"
	"regexp"
	"slices"
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

// stillHeavy are the packages the command layer imports that still reach
// a forbidden package, each with what is left to cut. The list only
// shrinks: a package that no longer reaches one must leave it (the test
// says so), and no other may join it.
var stillHeavy = map[string]string{
	"internal/dev": "dev --local's bus (bus.go, local.go): nats.go, and kube and client-go through internal/bus",
}

// TestImportRule checks, with `go list -deps`, what each package the
// command layer imports reaches.
func TestImportRule(t *testing.T) {
	const mod = "github.com/skiffdev/skiff/"
	imports := goList(t, "-f", `{{join .Imports "\n"}}`, ".")
	for _, imp := range imports {
		if forbidden.MatchString(imp) {
			t.Errorf("internal/cli imports %s", imp)
			continue
		}
		if !strings.HasPrefix(imp, mod) {
			continue
		}
		rel := strings.TrimPrefix(imp, mod)
		var reached []string
		for _, dep := range goList(t, "-deps", imp) {
			if forbidden.MatchString(dep) {
				reached = append(reached, dep)
			}
		}
		why, known := stillHeavy[rel]
		switch {
		case len(reached) > 0 && !known:
			t.Errorf("internal/cli imports %s, which reaches %s; put it behind an interface of cmdutil's Factory (main builds it)",
				rel, strings.Join(first(reached, 3), ", "))
		case len(reached) == 0 && known:
			t.Errorf("%s reaches no forbidden package any more (it did: %s); remove it from stillHeavy", rel, why)
		}
	}
	for rel := range stillHeavy {
		if !slices.Contains(imports, mod+rel) {
			t.Errorf("internal/cli no longer imports %s; remove it from stillHeavy", rel)
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
