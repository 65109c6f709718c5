package main

import (
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// unwanted are the packages skiff-relay must not link: it runs in every
// pod, and the pages of its binary count in the pod's memory (issue 27:
// at most 12 MiB with the proxy). The manifest's parser (package project:
// YAML, image references, resource quantities, the time zone database)
// and the engine are the command's side; the relay takes its values from
// package eventstream and its plan from the chart's environment.
var unwanted = regexp.MustCompile(`^(github\.com/skiffdev/skiff/internal/(engine|project)` +
	`|github\.com/google/go-containerregistry(/.*)?` +
	`|(sigs\.)?k8s\.io/.*` +
	`|helm\.sh/.*` +
	`|go\.yaml\.in/yaml/.*|gopkg\.in/yaml\.v\d|sigs\.k8s\.io/yaml|github\.com/goccy/go-yaml(/.*)?` +
	`|time/tzdata)$`)

// TestRelayLinksNoManifestParserOrEngine checks, with `go list -deps`,
// that skiff-relay reaches no unwanted package; when it does, it names the
// chain of imports that leads there.
func TestRelayLinksNoManifestParserOrEngine(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, ".").Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	imports := map[string][]string{}
	var root string
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		imports[f[0]] = f[1:]
		root = f[0] // -deps lists the package itself last
	}
	if !strings.HasSuffix(root, "/cmd/skiff-relay") {
		t.Fatalf("go list -deps ended with %q, not cmd/skiff-relay", root)
	}
	for _, chain := range unwantedChains(imports, root) {
		t.Errorf("skiff-relay links %s: %s; move what the relay uses of it to a package that does not import it "+
			"(internal/eventstream holds the values the relay, project and engine share)", chain[len(chain)-1], strings.Join(short(chain), " -> "))
	}
}

// unwantedChains are, for each unwanted package root reaches, the
// shortest chain of imports from root to it, in the order reached.
func unwantedChains(imports map[string][]string, root string) [][]string {
	from := map[string]string{root: ""}
	queue := []string{root}
	var out [][]string
	for len(queue) > 0 {
		pkg := queue[0]
		queue = queue[1:]
		if unwanted.MatchString(pkg) {
			chain := []string{pkg}
			for p := from[pkg]; p != ""; p = from[p] {
				chain = append(chain, p)
			}
			slices.Reverse(chain)
			out = append(out, chain)
			continue // what it imports is its own business
		}
		for _, imp := range imports[pkg] {
			if _, seen := from[imp]; !seen {
				from[imp] = pkg
				queue = append(queue, imp)
			}
		}
	}
	return out
}

func short(chain []string) []string {
	out := make([]string, len(chain))
	for i, p := range chain {
		out[i] = strings.TrimPrefix(p, "github.com/skiffdev/skiff/")
	}
	return out
}

func TestUnwantedChainsNamesTheShortestChain(t *testing.T) {
	const m = "github.com/skiffdev/skiff/"
	imports := map[string][]string{
		m + "cmd/skiff-relay":                                  {"fmt", m + "internal/relay", m + "internal/devsync"},
		m + "internal/relay":                                   {m + "internal/eventstream", m + "internal/engine"},
		m + "internal/engine":                                  {m + "internal/project"},
		m + "internal/devsync":                                 {"archive/tar", "github.com/google/go-containerregistry/pkg/v1/mutate"},
		m + "internal/eventstream":                             {"time"},
		"github.com/google/go-containerregistry/pkg/v1/mutate": {"github.com/google/go-containerregistry/pkg/v1"},
	}
	got := unwantedChains(imports, m+"cmd/skiff-relay")
	want := [][]string{
		{"cmd/skiff-relay", "internal/relay", "internal/engine"},
		{"cmd/skiff-relay", "internal/devsync", "github.com/google/go-containerregistry/pkg/v1/mutate"},
	}
	if len(got) != len(want) {
		t.Fatalf("chains = %v, want %v", got, want)
	}
	for i := range want {
		if s := short(got[i]); !slices.Equal(s, want[i]) {
			t.Errorf("chain %d = %v, want %v", i, s, want[i])
		}
	}
	delete(imports, m+"internal/devsync")
	imports[m+"internal/relay"] = []string{m + "internal/eventstream"}
	if got := unwantedChains(imports, m+"cmd/skiff-relay"); len(got) != 0 {
		t.Errorf("chains without engine and go-containerregistry = %v, want none", got)
	}
}
