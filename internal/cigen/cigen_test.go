package cigen

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
	"go.yaml.in/yaml/v3"

	"github.com/skiffdev/skiff/internal/project"
)

var update = flag.Bool("update", false, "rewrite the golden pipelines in testdata")

const shopManifest = `apiVersion: skiff.dev/v1alpha1
name: shop
registry: registry.example.com/shop
workloads:
  - {name: hello, kind: function, lang: go}
  - {name: web, kind: service, lang: typescript, path: frontend/web}
  - {name: jobs, kind: function, lang: python}
  - {name: legacy, kind: service, lang: node, base: "node:22-slim"}
environments:
  prod:
    registry: registry.example.com:5443/shop-prod
`

// writeProject writes a project of every language into a new folder.
func writeProject(t *testing.T, manifest string, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	files["skiff.yaml"] = manifest
	for name, data := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func shopFiles() map[string]string {
	return map[string]string{
		"hello/go.mod":                   "module example.com/hello\n\ngo 1.26.0\n",
		"hello/go.sum":                   "",
		"frontend/web/package.json":      `{"scripts": {"build": "tsc", "test": "npm run build && node --test dist/"}}`,
		"frontend/web/package-lock.json": `{"lockfileVersion": 3}`,
		"jobs/requirements.txt":          "",
		"jobs/test_handler.py":           "",
		"legacy/package.json":            `{"scripts": {"start": "node index.js"}}`,
	}
}

func load(t *testing.T, root, env string) *project.Project {
	t.Helper()
	top, err := project.Load(filepath.Join(root, "skiff.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := top.ForEnv(env)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var testRelease = Release{Version: "1.4.0", URL: DefaultReleaseURL, Checksums: map[string]string{
	"amd64": strings.Repeat("a", 64), "arm64": strings.Repeat("b", 64)}}

func render(t *testing.T, root, platform, env string) []byte {
	t.Helper()
	plan, err := NewPlan(root, load(t, root, env), Options{Platform: platform, Env: env, Branch: "main", Release: testRelease})
	if err != nil {
		t.Fatal(err)
	}
	out, err := Render(plan)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	file := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from what was rendered (go test ./internal/cigen -update rewrites it):\n%s", file, got)
	}
}

// lintWorkflow runs actionlint, with shellcheck on the run: scripts when
// it is installed (CI installs it).
func lintWorkflow(t *testing.T, data []byte) {
	t.Helper()
	var out bytes.Buffer
	opts := &actionlint.LinterOptions{Color: actionlint.ColorOptionKindNever}
	if sc, err := exec.LookPath("shellcheck"); err == nil {
		opts.Shellcheck = sc
	} else if os.Getenv("SKIFF_TEST_REQUIRE_SHELLCHECK") != "" {
		t.Fatal("SKIFF_TEST_REQUIRE_SHELLCHECK is set but shellcheck is missing, so actionlint checks the run: scripts")
	}
	l, err := actionlint.NewLinter(&out, opts)
	if err != nil {
		t.Fatal(err)
	}
	errs, err := l.Lint(".github/workflows/skiff.yml", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) > 0 {
		t.Errorf("actionlint found %d problems:\n%s\n%s", len(errs), out.String(), data)
	}
}

func TestGitHubWorkflow(t *testing.T) {
	root := writeProject(t, shopManifest, shopFiles())
	for _, env := range []string{"", "prod"} {
		got := render(t, root, GitHub, env)
		golden(t, "github"+suffix(env)+".yml", got)
		lintWorkflow(t, got)
	}
}

func suffix(env string) string {
	if env == "" {
		return ""
	}
	return "-" + env
}

func TestActionlintCatchesMistakes(t *testing.T) {
	// The check above can fail: a workflow with a typo in an expression
	// and an unknown input of an action is refused.
	root := writeProject(t, shopManifest, shopFiles())
	bad := bytes.Replace(render(t, root, GitHub, ""), []byte("github.event_name"), []byte("github.event_nam"), 1)
	bad = bytes.Replace(bad, []byte("go-version-file:"), []byte("go-version-fil:"), 1)
	var out bytes.Buffer
	l, err := actionlint.NewLinter(&out, &actionlint.LinterOptions{Color: actionlint.ColorOptionKindNever})
	if err != nil {
		t.Fatal(err)
	}
	errs, err := l.Lint("skiff.yml", bad, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) < 2 {
		t.Errorf("actionlint found %d problems in a broken workflow, want 2:\n%s", len(errs), out.String())
	}
}

// gitlabJob is the part of a GitLab CI job the tests read.
type gitlabJob struct {
	Stage         string            `yaml:"stage"`
	Image         string            `yaml:"image"`
	Rules         []map[string]any  `yaml:"rules"`
	Variables     map[string]string `yaml:"variables"`
	BeforeScript  []string          `yaml:"before_script"`
	Script        []string          `yaml:"script"`
	ResourceGroup string            `yaml:"resource_group"`
	Environment   struct {
		Name string `yaml:"name"`
	} `yaml:"environment"`
	Cache struct {
		Key   any      `yaml:"key"`
		Paths []string `yaml:"paths"`
	} `yaml:"cache"`
}

func parseGitLab(t *testing.T, data []byte) (stages []string, jobs map[string]gitlabJob) {
	t.Helper()
	var doc map[string]yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	jobs = map[string]gitlabJob{}
	for key, node := range doc {
		switch key {
		case "stages":
			if err := node.Decode(&stages); err != nil {
				t.Fatal(err)
			}
		case "workflow":
		default:
			var j gitlabJob
			if err := node.Decode(&j); err != nil {
				t.Fatalf("job %s: %v", key, err)
			}
			jobs[key] = j
		}
	}
	return stages, jobs
}

func TestGitLabPipeline(t *testing.T) {
	root := writeProject(t, shopManifest, shopFiles())
	got := render(t, root, GitLab, "prod")
	golden(t, "gitlab-prod.yml", got)
	stages, jobs := parseGitLab(t, got)
	if strings.Join(stages, ",") != "test,build,deploy" {
		t.Errorf("stages = %v", stages)
	}
	want := map[string]string{"test-hello": "golang:1.26", "test-web": "node:20", "test-jobs": "python:3.11",
		"test-legacy": "node:22", "build": "golang:1.26", "deploy": "golang:1.26"}
	if len(jobs) != len(want) {
		t.Errorf("jobs %v, want %v", jobs, want)
	}
	for name, image := range want {
		j, ok := jobs[name]
		if !ok {
			t.Errorf("no job %s", name)
			continue
		}
		if j.Image != image {
			t.Errorf("job %s runs in %s, want %s", name, j.Image, image)
		}
		stage := "test"
		if !strings.HasPrefix(name, "test-") {
			stage = name
		}
		if j.Stage != stage {
			t.Errorf("job %s in stage %s, want %s", name, j.Stage, stage)
		}
		if len(j.Script) == 0 {
			t.Errorf("job %s has no script", name)
		}
	}
	if got := jobs["test-web"].Script; strings.Join(got, "; ") != "cd frontend/web; npm ci --no-audit --no-fund; npm test" {
		t.Errorf("test-web script = %q", got)
	}
	if got := jobs["test-legacy"].Script; strings.Join(got, "; ") != "cd legacy; npm install --no-audit --no-fund" {
		t.Errorf("test-legacy script = %q (no test script, no lockfile)", got)
	}
	d := jobs["deploy"]
	if d.ResourceGroup != "skiff-deploy-shop-prod" || d.Environment.Name != "prod" {
		t.Errorf("deploy resource_group %q environment %q", d.ResourceGroup, d.Environment.Name)
	}
	last := d.Script[len(d.Script)-2:]
	if last[0] != "skiff deploy --env prod --non-interactive" || last[1] != "skiff status --env prod --wait" {
		t.Errorf("deploy ends with %q", last)
	}
	if !strings.Contains(d.Script[0], "skiff login registry.example.com:5443 ") {
		t.Errorf("deploy logs in with %q", d.Script[0])
	}
	// Node.js and Python come from Debian in Go's image.
	if !strings.Contains(strings.Join(d.BeforeScript, "\n"), "install -y -qq --no-install-recommends nodejs npm python3 python3-pip") {
		t.Errorf("deploy before_script = %q", d.BeforeScript)
	}
}

func TestPlanErrors(t *testing.T) {
	for _, tc := range []struct {
		name, manifest string
		files          map[string]string
		want           string
	}{
		{"no registry", "apiVersion: skiff.dev/v1alpha1\nname: a\nworkloads:\n  - {name: x, kind: function, lang: go}\n",
			map[string]string{"x/go.mod": "module x\n\ngo 1.26\n"}, "no registry to deploy from (in skiff.yaml); set registry:"},
		{"no go.mod", "apiVersion: skiff.dev/v1alpha1\nname: a\nregistry: r.example.com\nworkloads:\n  - {name: x, kind: function, lang: go}\n",
			map[string]string{}, "x/go.mod is missing"},
		{"no go directive", "apiVersion: skiff.dev/v1alpha1\nname: a\nregistry: r.example.com\nworkloads:\n  - {name: x, kind: function, lang: go}\n",
			map[string]string{"x/go.mod": "module x\n"}, "has no go directive"},
		{"bad package.json", "apiVersion: skiff.dev/v1alpha1\nname: a\nregistry: r.example.com\nworkloads:\n  - {name: x, kind: function, lang: node}\n",
			map[string]string{"x/package.json": "{"}, "x/package.json: unexpected end of JSON input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := writeProject(t, tc.manifest, tc.files)
			_, err := NewPlan(root, load(t, root, ""), Options{Platform: GitHub, Release: testRelease})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
	root := writeProject(t, shopManifest, shopFiles())
	if _, err := NewPlan(root, load(t, root, ""), Options{Platform: "jenkins"}); err == nil || !strings.Contains(err.Error(), "use one of github, gitlab") {
		t.Errorf("unknown platform: %v", err)
	}
}

func TestReleaseVersion(t *testing.T) {
	for in, want := range map[string]string{"v1.2.3": "1.2.3", "1.2.3": "1.2.3", "1.3.0-rc.1": "1.3.0-rc.1",
		"dev": "", "1.2.4-snapshot": "", "(devel)": "", "v0.0.0-20260101000000-abcdef123456": "0.0.0-20260101000000-abcdef123456"} {
		if got := ReleaseVersion(in); got != want {
			t.Errorf("ReleaseVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFetchRelease(t *testing.T) {
	sum := func(c byte) string { return strings.Repeat(string(c), 64) }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1.4.0/checksums.txt" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "%s  skiff_1.4.0_darwin_arm64.tar.gz\n%s  skiff_1.4.0_linux_amd64.tar.gz\n%s  skiff_1.4.0_linux_arm64.tar.gz\n%s  skiff_1.4.0_amd64.deb\n",
			sum('1'), sum('2'), sum('3'), sum('4'))
	}))
	defer srv.Close()
	r, err := FetchRelease(context.Background(), srv.Client(), srv.URL+"/", "1.4.0")
	if err != nil {
		t.Fatal(err)
	}
	if r.Checksums["amd64"] != sum('2') || r.Checksums["arm64"] != sum('3') || len(r.Checksums) != 2 {
		t.Errorf("checksums = %v", r.Checksums)
	}
	if r.URL != srv.URL {
		t.Errorf("URL = %q, want it without the trailing slash", r.URL)
	}
	_, err = FetchRelease(context.Background(), srv.Client(), srv.URL, "9.9.9")
	if err == nil || !strings.Contains(err.Error(), "404 Not Found") {
		t.Errorf("missing release: %v", err)
	}
}

func TestParseChecksumsNoArchive(t *testing.T) {
	_, err := parseChecksums(strings.NewReader("not a checksum file\n"), Release{Version: "1.0.0"})
	if err == nil || !strings.Contains(err.Error(), "no checksum of skiff_1.0.0_linux_amd64.tar.gz") {
		t.Errorf("err = %v", err)
	}
}
