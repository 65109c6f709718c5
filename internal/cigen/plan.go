// Package cigen writes the CI pipeline of a project: a GitHub Actions
// workflow or a GitLab CI file that tests and builds each workload on a
// merge request and deploys with skiff from the default branch.
package cigen

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/skiffdev/skiff/internal/project"
)

// Platforms lists the CI systems skiff writes pipelines for.
func Platforms() []string { return []string{GitHub, GitLab} }

// The CI systems.
const (
	GitHub = "github"
	GitLab = "gitlab"
)

// File is where a platform's pipeline lives, relative to the project root.
func File(platform string) string {
	if platform == GitLab {
		return ".gitlab-ci.yml"
	}
	return ".github/workflows/skiff.yml"
}

// Options say what to generate.
type Options struct {
	Platform string
	// Env is the environment of skiff.yaml deploys go to ("": the top level).
	Env string
	// Branch is the default branch, the one that deploys.
	Branch string
	// Release is the skiff release the pipeline installs.
	Release Release
}

// Plan is everything a pipeline template needs, derived from the project.
type Plan struct {
	Options
	Project string
	// Command is the skiff command line that wrote the file.
	Command string
	// Registry is the host deploy pushes to and logs in to.
	Registry  string
	Workloads []Workload
	Langs     Langs
	// EnvFlag is " --env NAME", or "" for the top level.
	EnvFlag string
	// Group names the deploys of this project and environment, which must
	// never run at once.
	Group string
	// SignKeyEnv is the secret variable holding the private key deploy
	// signs with ("": the project does not sign); SignFlag is what deploy
	// is told to read it (" --sign-key env://NAME" when skiff.yaml names a
	// file, which is never committed).
	SignKeyEnv string
	SignFlag   string
	// VerifyKeyEnv is the variable holding the public key deploy verifies
	// with, when skiff.yaml names one (a file is committed).
	VerifyKeyEnv string
}

// DefaultSignKeyEnv is the secret variable that holds the signing key in
// CI when skiff.yaml names a file.
const DefaultSignKeyEnv = "SKIFF_SIGNING_KEY"

// signing plans how the deploy job reaches the keys of p.
func (plan *Plan) signing(p *project.Project) {
	if p.Signing != nil {
		if env, ok := strings.CutPrefix(p.Signing.Key, "env://"); ok {
			plan.SignKeyEnv = env
		} else {
			plan.SignKeyEnv = DefaultSignKeyEnv
			plan.SignFlag = " --sign-key env://" + DefaultSignKeyEnv
		}
	}
	if p.Verify != nil {
		if env, ok := strings.CutPrefix(p.Verify.Key, "env://"); ok {
			plan.VerifyKeyEnv = env
		}
	}
}

// Workload is one workload's test job.
type Workload struct {
	Name string
	Lang string
	// Dir is the workload's folder relative to the project root, slash
	// separated ("." for the root).
	Dir string
	// Steps run in Dir, in order.
	Steps []Step
	// CacheFiles are Dir's lockfiles that key its dependency cache.
	CacheFiles []string
	// Note says why a usual step is missing ("": none is).
	Note string
	// Langs is the workload's toolchain alone.
	Langs Langs
}

// Step is one named command.
type Step struct {
	Name string
	Run  string
}

// Langs are the toolchains a project needs, with the versions its
// images use.
type Langs struct {
	// Go is the go directive of the first Go workload ("": no Go).
	Go string
	// GoModFile is that workload's go.mod, for actions/setup-go.
	GoModFile string
	// GoSums are the go.sum files of the Go workloads.
	GoSums []string
	// Node is the Node.js major version ("": no Node.js or TypeScript).
	Node      string
	NodeLocks []string
	// Python is the Python minor version ("": no Python).
	Python     string
	PythonReqs []string
}

// add merges o into l: the first workload of a language sets its version,
// and every one adds its lockfiles.
func (l *Langs) add(o Langs) {
	if l.Go == "" {
		l.Go, l.GoModFile = o.Go, o.GoModFile
	}
	if l.Node == "" {
		l.Node = o.Node
	}
	if l.Python == "" {
		l.Python = o.Python
	}
	l.GoSums = append(l.GoSums, o.GoSums...)
	l.NodeLocks = append(l.NodeLocks, o.NodeLocks...)
	l.PythonReqs = append(l.PythonReqs, o.PythonReqs...)
}

// Default toolchain versions: those of the default base images.
const (
	defaultNode   = "20"
	defaultPython = "3.11"
)

// Errors of NewPlan that are the user's to fix in skiff.yaml.
var (
	ErrNoRegistry  = errors.New("no registry")
	ErrNoWorkloads = errors.New("no workloads")
)

// NewPlan reads the project (resolved for opts.Env) and its workloads'
// folders under root.
func NewPlan(root string, p *project.Project, opts Options) (*Plan, error) {
	if !slices.Contains(Platforms(), opts.Platform) {
		return nil, fmt.Errorf("unknown CI platform %q; use one of %s", opts.Platform, strings.Join(Platforms(), ", "))
	}
	if len(p.Workloads) == 0 {
		return nil, fmt.Errorf("the project has %w; add one with `skiff add` first", ErrNoWorkloads)
	}
	where := "skiff.yaml"
	if opts.Env != "" {
		where = "environments." + opts.Env + " of skiff.yaml"
	}
	if p.Registry == "" {
		return nil, fmt.Errorf("the project has %w to deploy from (in %s); set registry: to where the cluster pulls images from", ErrNoRegistry, where)
	}
	reg, err := name.NewRegistry(strings.SplitN(p.Registry, "/", 2)[0])
	if err != nil {
		return nil, fmt.Errorf("registry %q of %s: %w", p.Registry, where, err)
	}
	if opts.Branch == "" {
		opts.Branch = "main"
	}
	plan := &Plan{
		Options:  opts,
		Project:  p.Name,
		Registry: reg.Name(),
		Group:    "skiff-deploy-" + p.Name + "-" + envOrDefault(opts.Env),
	}
	plan.signing(p)
	plan.Command = "skiff ci init " + opts.Platform
	if opts.Env != "" {
		plan.EnvFlag = " --env " + opts.Env
		plan.Command += plan.EnvFlag
	}
	for _, w := range p.Order() {
		dir := path.Clean(filepath.ToSlash(w.Path))
		abs := filepath.Join(root, filepath.FromSlash(dir))
		wl, err := workload(abs, w, dir)
		if err != nil {
			return nil, err
		}
		base := w.Base
		if base == "" {
			base = p.Build.Base[w.Lang]
		}
		l := &wl.Langs
		switch w.Lang {
		case project.LangGo:
			if l.Go, err = goVersion(filepath.Join(abs, "go.mod")); err != nil {
				return nil, fmt.Errorf("workload %s: %w", w.Name, err)
			}
			l.GoModFile = path.Join(dir, "go.mod")
			l.GoSums = wl.CacheFiles
		case project.LangNode, project.LangTypeScript:
			l.Node = imageVersion(base, "node", `^(\d+)`, defaultNode)
			l.NodeLocks = wl.CacheFiles
		case project.LangPython:
			l.Python = imageVersion(base, "python", `^(\d+\.\d+)`, defaultPython)
			l.PythonReqs = wl.CacheFiles
		}
		plan.Langs.add(*l)
		plan.Workloads = append(plan.Workloads, wl)
	}
	return plan, nil
}

func envOrDefault(env string) string {
	if env == "" {
		return "default"
	}
	return env
}

// workload plans the test job of w, whose folder is abs.
func workload(abs string, w project.Workload, dir string) (Workload, error) {
	wl := Workload{Name: w.Name, Lang: w.Lang, Dir: dir}
	has := func(file string) bool {
		_, err := os.Stat(filepath.Join(abs, file))
		return err == nil
	}
	cache := func(file string) {
		if has(file) {
			wl.CacheFiles = append(wl.CacheFiles, path.Join(dir, file))
		}
	}
	switch w.Lang {
	case project.LangGo:
		cache("go.sum")
		wl.Steps = []Step{{"go vet", "go vet ./..."}, {"go test", "go test ./..."}}
	case project.LangNode, project.LangTypeScript:
		cache("package-lock.json")
		var pkg struct {
			Scripts map[string]string `json:"scripts"`
		}
		b, err := os.ReadFile(filepath.Join(abs, "package.json"))
		if err != nil {
			return wl, fmt.Errorf("workload %s: %w; a Node.js workload needs one", w.Name, err)
		}
		if err := json.Unmarshal(b, &pkg); err != nil {
			return wl, fmt.Errorf("workload %s: %s/package.json: %w", w.Name, dir, err)
		}
		install := Step{"npm ci", "npm ci --no-audit --no-fund"}
		if !has("package-lock.json") {
			install = Step{"npm install", "npm install --no-audit --no-fund"}
		}
		wl.Steps = []Step{install}
		switch {
		case pkg.Scripts["test"] != "":
			wl.Steps = append(wl.Steps, Step{"npm test", "npm test"})
		case pkg.Scripts["build"] != "":
			wl.Steps = append(wl.Steps, Step{"npm run build", "npm run build"})
			wl.Note = dir + "/package.json has no test script"
		default:
			wl.Note = dir + "/package.json has no test script"
		}
	case project.LangPython:
		cache("requirements.txt")
		if has("requirements.txt") {
			wl.Steps = append(wl.Steps, Step{"pip install", "python3 -m pip install --disable-pip-version-check -r requirements.txt"})
		}
		if hasPythonTests(abs) {
			wl.Steps = append(wl.Steps, Step{"unittest", "python3 -m unittest discover -v"})
		} else {
			wl.Steps = append(wl.Steps, Step{"compile", "python3 -m compileall -q ."})
			wl.Note = dir + " has no test_*.py"
		}
	default:
		return wl, fmt.Errorf("workload %s: language %q has no CI steps", w.Name, w.Lang)
	}
	return wl, nil
}

// hasPythonTests reports whether unittest's discovery finds a test module
// in dir (test*.py at its top).
func hasPythonTests(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "test*.py"))
	return len(m) > 0
}

var goDirective = regexp.MustCompile(`^go\s+(\d+\.\d+)`)

// goVersion is the minor Go version a go.mod asks for ("1.26").
func goVersion(gomod string) (string, error) {
	f, err := os.Open(gomod)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s is missing; a Go workload needs one", gomod)
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := goDirective.FindStringSubmatch(strings.TrimSpace(sc.Text())); m != nil {
			return m[1], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%s has no go directive; add one, e.g. `go mod edit -go=1.26`", gomod)
}

// imageVersion reads a toolchain version from the tag of a base image
// such as node:22-slim; any other base gives def.
func imageVersion(base, repo, pattern, def string) string {
	if base == "" {
		return def
	}
	ref, err := name.ParseReference(base)
	if err != nil {
		return def
	}
	tag, ok := ref.(name.Tag)
	if !ok || path.Base(ref.Context().RepositoryStr()) != repo {
		return def
	}
	if m := regexp.MustCompile(pattern).FindStringSubmatch(tag.TagStr()); m != nil {
		return m[1]
	}
	return def
}

// DefaultBranch is the branch origin's HEAD names in the git checkout at
// root, or "main" when there is none.
func DefaultBranch(ctx context.Context, root string) string {
	out, err := exec.CommandContext(ctx, "git", "-C", root, "symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD").Output()
	if err != nil {
		return "main"
	}
	b := strings.TrimSpace(string(out))
	if _, after, ok := strings.Cut(b, "/"); ok && after != "" {
		return after
	}
	return "main"
}
