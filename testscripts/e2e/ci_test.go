//go:build e2e

package e2e

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// ciRelease serves what a skiff release holds for Linux (the archive of
// this checkout's skiff and checksums.txt) on loopback, as the release
// page does, and returns its URL.
func ciRelease(t *testing.T, skiff, version string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "v"+version)
	must(t, os.MkdirAll(dir, 0o755))
	bin, err := os.ReadFile(skiff)
	must(t, err)
	archive := fmt.Sprintf("skiff_%s_linux_amd64.tar.gz", version)
	f, err := os.Create(filepath.Join(dir, archive))
	must(t, err)
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for name, data := range map[string][]byte{"README.md": []byte("skiff\n"), "skiff": bin} {
		must(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data))}))
		_, err = tw.Write(data)
		must(t, err)
	}
	must(t, tw.Close())
	must(t, gz.Close())
	must(t, f.Close())
	data, err := os.ReadFile(filepath.Join(dir, archive))
	must(t, err)
	sum := sha256.Sum256(data)
	must(t, os.WriteFile(filepath.Join(dir, "checksums.txt"), fmt.Appendf(nil, "%s  %s\n", hex.EncodeToString(sum[:]), archive), 0o644))
	srv := httptest.NewServer(http.FileServer(http.Dir(filepath.Dir(dir))))
	t.Cleanup(srv.Close)
	return srv.URL
}

// ciProject is a Go function whose images go to the test cluster's
// registry that wants an account, in a git repository on main.
func (c *cluster) ciProject(t *testing.T, prefix string) (root, ns, reg, user, password string) {
	t.Helper()
	reg, user, password = os.Getenv("SKIFF_TEST_AUTH_REGISTRY"), os.Getenv("SKIFF_TEST_AUTH_USER"), os.Getenv("SKIFF_TEST_AUTH_PASSWORD")
	if reg == "" || password == "" {
		t.Skip("the test cluster's env has no SKIFF_TEST_AUTH_REGISTRY")
	}
	ns = c.restrictedNamespace(t, prefix)
	root = filepath.Join(t.TempDir(), "shop")
	mustRun(t, "", c.env, c.skiff, "init", root, "--kind", "function", "--lang", "go", "--name", "hello",
		"--registry", reg+"/"+prefix, "-n", ns, "--non-interactive")
	git := func(args ...string) {
		mustRun(t, root, nil, "git", append([]string{"-c", "user.name=e2e", "-c", "user.email=e2e@example.com"}, args...)...)
	}
	git("init", "-q", "-b", "main")
	git("add", "-A")
	git("commit", "-q", "-m", "shop")
	return root, ns, reg, user, password
}

// runnerEnv is the environment of a CI job on this machine: a home of its
// own (so skiff login writes a docker config nobody else reads) and the Go
// caches a setup action would restore.
func runnerEnv(t *testing.T) []string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "PATH" || k == "LANG" || k == "TMPDIR" {
			env = append(env, kv)
		}
	}
	keys := []string{"GOCACHE", "GOMODCACHE", "GOPROXY", "GOFLAGS", "GOTOOLCHAIN"}
	out, err := exec.Command("go", append([]string{"env"}, keys...)...).Output()
	must(t, err)
	// go env prints one value a line, in the order asked.
	for i, v := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		env = append(env, keys[i]+"="+v)
	}
	return append(env, "HOME="+t.TempDir(), "CI=true")
}

// TestCIGitHubDeploy writes the GitHub workflow, and runs its deploy
// job's steps in order as a runner does (each run: script with bash -eo
// pipefail in its working-directory, env with the expressions evaluated,
// GITHUB_ENV and GITHUB_PATH honoured; uses: steps are what this machine
// already has): skiff is installed from the release with its checksum,
// logs in with the secrets, deploys to the test cluster and passes
// status --wait.
func TestCIGitHubDeploy(t *testing.T) {
	c := needCluster(t)
	root, ns, reg, user, password := c.ciProject(t, "e2e-ci-github")
	url := ciRelease(t, c.skiff, "1.4.0")
	// What ci init wrote is a message: on stderr, as every command's.
	out, errOut, code := run(t, root, c.env, c.skiff, "ci", "init", "github", "--skiff-version", "1.4.0", "--release-url", url)
	if code != 0 || out != "" || !strings.Contains(errOut, "wrote "+filepath.Join(root, ".github/workflows/skiff.yml")) {
		t.Errorf("ci init exited %d, printed %q on stdout and %q on stderr", code, out, errOut)
	}
	data, err := os.ReadFile(filepath.Join(root, ".github/workflows/skiff.yml"))
	must(t, err)
	var wf struct {
		Jobs map[string]struct {
			Steps []struct {
				Name string            `yaml:"name"`
				Uses string            `yaml:"uses"`
				Run  string            `yaml:"run"`
				Dir  string            `yaml:"working-directory"`
				Env  map[string]string `yaml:"env"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	must(t, yaml.Unmarshal(data, &wf))
	kubeconfig, err := os.ReadFile(os.Getenv("KUBECONFIG"))
	must(t, err)
	ctx := map[string]string{
		"secrets.KUBECONFIG_DATA": string(kubeconfig), "secrets.SKIFF_REGISTRY_USER": user,
		"secrets.SKIFF_REGISTRY_PASSWORD": password, "secrets.GITHUB_TOKEN": "not-for-this-registry", "github.actor": "octocat",
	}
	expr := regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)
	eval := func(s string) string {
		return expr.ReplaceAllStringFunc(s, func(m string) string {
			for _, operand := range strings.Split(expr.FindStringSubmatch(m)[1], "||") {
				v, ok := ctx[strings.TrimSpace(operand)]
				if !ok {
					t.Fatalf("the workflow uses %s, which this test does not know", operand)
				}
				if v != "" {
					return v
				}
			}
			return ""
		})
	}
	runnerTemp := t.TempDir()
	envFile, pathFile := filepath.Join(runnerTemp, "github_env"), filepath.Join(runnerTemp, "github_path")
	base := append(runnerEnv(t), "RUNNER_TEMP="+runnerTemp, "GITHUB_ENV="+envFile, "GITHUB_PATH="+pathFile, "GITHUB_ACTIONS=true")
	steps := wf.Jobs["deploy"].Steps
	if len(steps) == 0 {
		t.Fatalf("the workflow has no deploy job:\n%s", data)
	}
	var ran []string
	for i, s := range steps {
		if s.Uses != "" {
			continue
		}
		if strings.Contains(s.Run, "${{") {
			t.Errorf("step %q has an expression in its script; expressions belong in env: (script injection)", s.Name)
		}
		env := append([]string(nil), base...)
		if b, err := os.ReadFile(envFile); err == nil {
			env = append(env, strings.Split(strings.TrimSpace(string(b)), "\n")...)
		}
		if b, err := os.ReadFile(pathFile); err == nil {
			dirs := strings.Fields(string(b))
			for j, kv := range env {
				if strings.HasPrefix(kv, "PATH=") {
					env[j] = "PATH=" + strings.Join(append(dirs, strings.TrimPrefix(kv, "PATH=")), ":")
				}
			}
		}
		for k, v := range s.Env {
			env = append(env, k+"="+eval(v))
		}
		script := filepath.Join(runnerTemp, fmt.Sprintf("step%d.sh", i))
		must(t, os.WriteFile(script, []byte(s.Run), 0o644))
		cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", script)
		cmd.Dir, cmd.Env = filepath.Join(root, s.Dir), env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("step %q failed: %v\n%s", s.Name, err, out)
		}
		if strings.Contains(string(out), password) {
			t.Errorf("step %q printed the registry password", s.Name)
		}
		ran = append(ran, s.Name)
	}
	want := []string{"install skiff 1.4.0", "skiff login " + reg, "kubeconfig", "skiff deploy", "skiff status --wait"}
	if strings.Join(ran, ", ") != strings.Join(want, ", ") {
		t.Errorf("ran %q, want %q", ran, want)
	}
	if body := c.call(t, ns, "shop-hello", "/?name=Ada", 8080); !strings.Contains(body, "Hello, Ada!") {
		t.Errorf("hello answered %q", body)
	}
}

// TestCIGitLabDeploy writes the GitLab CI file, checks it against
// GitLab's CI schema and runs its deploy job with gitlab-ci-local (an
// independent implementation of GitLab's runner; the shell executor, since
// this machine has no container engine), with the variables GitLab
// sets for the project's own registry and a File variable KUBECONFIG.
func TestCIGitLabDeploy(t *testing.T) {
	gcl := os.Getenv("SKIFF_TEST_GITLAB_CI_LOCAL")
	if gcl == "" {
		t.Skip("no gitlab-ci-local: .ci/run installs it and sets SKIFF_TEST_GITLAB_CI_LOCAL")
	}
	c := needCluster(t)
	root, ns, reg, user, password := c.ciProject(t, "e2e-ci-gitlab")
	url := ciRelease(t, c.skiff, "1.4.0")
	mustRun(t, root, c.env, c.skiff, "ci", "init", "gitlab", "--skiff-version", "1.4.0", "--release-url", url)
	_, errOut, code := run(t, root, c.env, c.skiff, "ci", "init", "gitlab", "--skiff-version", "1.4.0", "--release-url", url)
	if code != 1 || !strings.Contains(errOut, ".gitlab-ci.yml exists; nothing was written; use --force") {
		t.Errorf("a second ci init: exit %d, %s", code, errOut)
	}
	env := runnerEnv(t)
	out, errOut, code := run(t, root, env, gcl, "--list")
	if code != 0 || !strings.Contains(out+errOut, "json schema validated") {
		t.Fatalf("gitlab-ci-local --list: exit %d\n%s\n%s", code, out, errOut)
	}
	// A pipeline of the default branch tests and deploys; the build job is
	// for merge requests.
	for job, want := range map[string]bool{"test-hello": true, "deploy": true, "build": false} {
		if got := regexp.MustCompile(`(?m)^` + job + `\s`).MatchString(out); got != want {
			t.Errorf("job %s in the default branch's pipeline: %v, want %v:\n%s", job, got, want, out)
		}
	}
	args := []string{"deploy", "--force-shell-executor", "--no-color",
		"--variable", "CI_REGISTRY_USER=" + user, "--variable", "CI_REGISTRY_PASSWORD=" + password,
		"--variable", "KUBECONFIG=" + os.Getenv("KUBECONFIG")}
	for _, kv := range env {
		if strings.HasPrefix(kv, "GOCACHE=") || strings.HasPrefix(kv, "GOMODCACHE=") {
			args = append(args, "--variable", kv)
		}
	}
	out, errOut, code = run(t, root, env, gcl, args...)
	if code != 0 {
		t.Fatalf("gitlab-ci-local deploy: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, line := range []string{"skiff_1.4.0_linux_amd64.tar.gz: OK", "skiff login " + reg, "skiff deploy --non-interactive", "skiff status --wait", "PASS"} {
		if !strings.Contains(out, line) {
			t.Errorf("the deploy job did not run %q:\n%s", line, out)
		}
	}
	if strings.Contains(out+errOut, password) {
		t.Error("the deploy job printed the registry password")
	}
	if body := c.call(t, ns, "shop-hello", "/?name=Ada", 8080); !strings.Contains(body, "Hello, Ada!") {
		t.Errorf("hello answered %q", body)
	}
}
