package templates_test

import (
	"bytes"
	"context"
	"encoding/json"
	"go/format"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/catalog"
	"github.com/skiffdev/skiff/internal/scaffold"
	"github.com/skiffdev/skiff/templates"
)

// workloadName has a dash on purpose: it is not a valid identifier in any
// of the languages, so a template that pastes it into code unconverted fails.
const workloadName = "hello-fn"

// required lists the templates skiff promises: lang/kind/name.
var required = []string{
	"go/function/http", "go/function/cloudevents", "go/service/http",
	"node/function/http", "node/function/cloudevents", "node/service/http",
	"typescript/function/http", "typescript/function/cloudevents", "typescript/service/http",
	"python/function/http", "python/function/cloudevents", "python/service/http",
}

func discover(t *testing.T) []*catalog.Template {
	t.Helper()
	ts, err := catalog.Discover(catalog.EmbeddedRepo, templates.Scaffold())
	if err != nil {
		t.Fatalf("discovering the embedded templates: %v", err)
	}
	return ts
}

func key(tm *catalog.Template) string { return tm.Lang + "/" + tm.Kind + "/" + tm.Name }

// render renders tm with its prompts' defaults into a fresh folder and
// returns the folder and the rendered files.
func render(t *testing.T, tm *catalog.Template) (string, []scaffold.File) {
	t.Helper()
	values := map[string]string{}
	for _, p := range tm.Prompts {
		values[p.Name] = p.Default
	}
	files, err := scaffold.Render(tm, scaffold.Data{
		Name:     workloadName,
		Project:  "demo",
		Kind:     tm.Kind,
		Lang:     tm.Lang,
		Template: tm.Name,
		Port:     tm.Port,
		Values:   values,
	})
	if err != nil {
		t.Fatalf("rendering: %v", err)
	}
	dir := filepath.Join(t.TempDir(), workloadName)
	if err := scaffold.Write(dir, files, false); err != nil {
		t.Fatalf("writing: %v", err)
	}
	return dir, files
}

func TestRequiredTemplatesExist(t *testing.T) {
	have := map[string]bool{}
	for _, tm := range discover(t) {
		have[key(tm)] = true
		if tm.Description == "" {
			t.Errorf("%s has no description", tm.ID())
		}
	}
	for _, r := range required {
		if !have[r] {
			t.Errorf("template %s is missing", r)
		}
	}
}

// TestTemplateSourcesAreNotGo checks that no Go file or go.mod sits in the
// template tree unrendered: skiff's own module would compile or cut it.
func TestTemplateSourcesAreNotGo(t *testing.T) {
	err := fs.WalkDir(templates.Scaffold(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".go") || path.Base(p) == "go.mod" || path.Base(p) == "go.work") {
			t.Errorf("%s must end in .tmpl, or skiff's own build picks it up", p)
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "dist" || d.Name() == "__pycache__") {
			t.Errorf("%s is build output and must not be in the templates", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

var (
	listensOnPort = regexp.MustCompile(`\bPORT\b`)
	// resolvedURL finds a lockfile entry that names where to download from.
	resolvedURL = regexp.MustCompile(`"resolved"\s*:\s*"[a-z+]+://`)
)

// TestTemplatesRender renders every template and checks what any workload
// must have, without running a toolchain.
func TestTemplatesRender(t *testing.T) {
	for _, tm := range discover(t) {
		t.Run(key(tm), func(t *testing.T) {
			t.Parallel()
			dir, files := render(t, tm)
			var all bytes.Buffer
			names := map[string]bool{}
			for _, f := range files {
				if !filepath.IsLocal(filepath.FromSlash(f.Path)) {
					t.Errorf("%s renders outside the workload folder", f.Path)
				}
				if f.Link != "" {
					t.Errorf("%s is a symbolic link; the built-in templates have none", f.Path)
				}
				base := path.Base(f.Path)
				names[f.Path] = true
				if strings.EqualFold(base, "Dockerfile") || strings.EqualFold(base, "Containerfile") {
					t.Errorf("%s: generated projects need no Dockerfile, skiff builds them", f.Path)
				}
				if strings.HasSuffix(f.Path, scaffold.TemplateSuffix) {
					t.Errorf("%s still ends in %s after rendering", f.Path, scaffold.TemplateSuffix)
				}
				if base == "package-lock.json" && resolvedURL.Match(f.Data) {
					t.Errorf("%s names download URLs; regenerate it with omit-lockfile-registry-resolved", f.Path)
				}
				if strings.HasSuffix(f.Path, ".go") {
					if formatted, err := format.Source(f.Data); err != nil {
						t.Errorf("%s does not parse: %v", f.Path, err)
					} else if !bytes.Equal(formatted, f.Data) {
						t.Errorf("%s is not gofmt-ed", f.Path)
					}
				}
				all.Write(f.Data)
				all.WriteByte('\n')
			}
			// Nothing may land outside the folder on disk either.
			root := filepath.Dir(dir)
			err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if p != root && p != dir && !strings.HasPrefix(p, dir+string(filepath.Separator)) {
					t.Errorf("%s was written outside the workload folder %s", p, dir)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}

			text := all.String()
			if !listensOnPort.MatchString(text) {
				t.Error("nothing reads the PORT environment variable")
			}
			for _, p := range []string{"/healthz", "/readyz", "SIGTERM"} {
				if !strings.Contains(text, p) {
					t.Errorf("nothing mentions %s", p)
				}
			}
			if !names["README.md"] {
				t.Error("no README.md")
			}
			checkLangFiles(t, tm, names, files)
		})
	}
}

func checkLangFiles(t *testing.T, tm *catalog.Template, names map[string]bool, files []scaffold.File) {
	t.Helper()
	need := map[string][]string{
		"go":         {"go.mod"},
		"node":       {"package.json", "package-lock.json"},
		"typescript": {"package.json", "package-lock.json", "tsconfig.json"},
		"python":     {"requirements.txt"},
	}[tm.Lang]
	for _, n := range need {
		if !names[n] {
			t.Errorf("no %s", n)
		}
	}
	for _, f := range files {
		switch f.Path {
		case "go.mod":
			if first, _, _ := strings.Cut(string(f.Data), "\n"); first != "module "+workloadName {
				t.Errorf("go.mod starts with %q, want the workload name as module", first)
			}
		case "package.json", "package-lock.json":
			var pkg struct {
				Name    string            `json:"name"`
				Scripts map[string]string `json:"scripts"`
			}
			if err := json.Unmarshal(f.Data, &pkg); err != nil {
				t.Errorf("%s is not JSON: %v", f.Path, err)
				continue
			}
			if pkg.Name != workloadName {
				t.Errorf("%s names the package %q, want %q", f.Path, pkg.Name, workloadName)
			}
			if f.Path == "package.json" {
				for _, s := range []string{"start", "test"} {
					if pkg.Scripts[s] == "" {
						t.Errorf("package.json has no %q script", s)
					}
				}
				if tm.Lang == "typescript" && pkg.Scripts["build"] == "" {
					t.Error(`package.json has no "build" script`)
				}
			}
		}
	}
}

// toolchain is how a language's generated code is built and tested.
var toolchain = map[string]struct {
	bin  []string   // binaries that must be on PATH
	cmds [][]string // run in order in the workload folder
	env  []string
}{
	"go": {
		bin: []string{"go"},
		cmds: [][]string{
			{"go", "vet", "./..."},
			{"go", "test", "-count=1", "./..."},
			// OTLP export is built in with -tags otel only (otel.go).
			{"go", "vet", "-tags", "otel", "./..."},
			{"go", "test", "-tags", "otel", "-count=1", "-run", "OTLP", "./..."},
		},
		// go.sum must be complete: never let the go command edit go.mod/go.sum.
		env: []string{"GOFLAGS=-mod=readonly", "GOWORK=off", "GOTOOLCHAIN=local"},
	},
	"node": {
		bin:  []string{"node", "npm"},
		cmds: [][]string{{"npm", "ci", "--prefer-offline", "--no-audit", "--no-fund"}, {"npm", "test"}},
		env:  []string{"NO_UPDATE_NOTIFIER=1"},
	},
	"typescript": {
		bin: []string{"node", "npm"},
		cmds: [][]string{
			{"npm", "ci", "--prefer-offline", "--no-audit", "--no-fund"},
			{"npm", "run", "build"},
			{"npm", "test"},
		},
		env: []string{"NO_UPDATE_NOTIFIER=1"},
	},
	"python": {
		bin:  []string{"python3"},
		cmds: [][]string{{"python3", "-m", "unittest", "discover", "-v"}},
		env:  []string{"PYTHONDONTWRITEBYTECODE=1"},
	},
}

// TestTemplatesBuild proves that the code every template generates builds
// and passes its own tests with its language's toolchain. npm shares its
// default cache (~/.npm) across subtests.
func TestTemplatesBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every language's toolchain; skipped with -short")
	}
	for _, tm := range discover(t) {
		tc, ok := toolchain[tm.Lang]
		if !ok {
			t.Errorf("%s: no toolchain known for lang %q", tm.ID(), tm.Lang)
			continue
		}
		t.Run(key(tm), func(t *testing.T) {
			for _, b := range tc.bin {
				if _, err := exec.LookPath(b); err != nil {
					t.Skipf("%s is not installed: %v", b, err)
				}
			}
			t.Parallel() // bounded by -parallel, GOMAXPROCS by default
			dir, _ := render(t, tm)
			for _, args := range tc.cmds {
				runTool(t, dir, tc.env, args)
			}
		})
	}
}

func runTool(t *testing.T, dir string, env, args []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s in %s failed after %s: %v\n%s", strings.Join(args, " "), dir, time.Since(start).Round(time.Millisecond), err, out)
	}
	t.Logf("%s: ok in %s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
}
