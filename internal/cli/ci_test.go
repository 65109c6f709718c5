package cli

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffdev/skiff/internal/project"
)

func TestCIInit(t *testing.T) {
	sum := strings.Repeat("c", 64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1.4.0/checksums.txt" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "%s  skiff_1.4.0_linux_amd64.tar.gz\n", sum)
	}))
	defer srv.Close()

	f, dir, errOut := testFactoryBuffers(t, false)
	manifest := "apiVersion: skiff.dev/v1alpha1\nname: shop\nworkloads:\n  - {name: hello, kind: function, lang: go}\n" +
		"environments:\n  prod: {registry: registry.example.com/shop}\n"
	if err := os.WriteFile(filepath.Join(dir, project.FileName), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "hello"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hello", "go.mod"), []byte("module hello\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	workflow := filepath.Join(dir, ".github", "workflows", "skiff.yml")
	rel := []string{"--release-url", srv.URL}

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown platform", []string{"ci", "init", "jenkins"}, 2, `unknown CI platform "jenkins"; use github or gitlab`},
		{"no platform", []string{"ci", "init"}, 2, "github or gitlab"},
		{"no registry at the top level", append([]string{"ci", "init", "github", "--skiff-version", "1.4.0"}, rel...), 2, "no registry to deploy from (in skiff.yaml)"},
		{"a development build", []string{"ci", "init", "github", "-e", "prod"}, 2, "this skiff (dev) is not a release, so its pipeline has nothing to install; pass --skiff-version"},
		{"not a version", []string{"ci", "init", "github", "-e", "prod", "--skiff-version", "latest"}, 2, `--skiff-version "latest" is not a release version`},
		{"bad release URL", []string{"ci", "init", "github", "-e", "prod", "--skiff-version", "1.4.0", "--release-url", "ftp://x"}, 2, "is not an http(s) URL"},
		{"no such release", append([]string{"ci", "init", "github", "-e", "prod", "--skiff-version", "1.5.0"}, rel...), 1, "404 Not Found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, f, errOut, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, want %d; stderr:\n%s\nwant %q", code, tc.code, stderr, tc.want)
			}
			if _, err := os.Stat(workflow); err == nil {
				t.Fatal("a failed ci init wrote the workflow")
			}
		})
	}

	code, out, stderr := runCLI(t, f, errOut, append([]string{"ci", "init", "github", "-e", "prod", "--skiff-version", "v1.4.0"}, rel...)...)
	// Messages to stderr, as every command; stdout only has data (-o json).
	if code != 0 || out != "" || !strings.Contains(stderr, "wrote "+workflow+" (skiff 1.4.0, deploys --env prod from main)") ||
		!strings.Contains(stderr, "set these secrets before the first deploy:") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	data, err := os.ReadFile(workflow)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "x86_64) arch=amd64 sum="+sum) || strings.Contains(string(data), "arm64) arch=arm64") {
		t.Errorf("the workflow does not pin the archives of checksums.txt:\n%s", data)
	}
	if !strings.Contains(string(data), "run: skiff deploy --env prod --non-interactive") {
		t.Errorf("the workflow does not deploy to prod:\n%s", data)
	}

	if err := os.WriteFile(workflow, []byte("# mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCLI(t, f, errOut, append([]string{"ci", "init", "github", "-e", "prod", "--skiff-version", "1.4.0"}, rel...)...)
	if code != 1 || !strings.Contains(stderr, workflow+" exists; nothing was written; use --force") {
		t.Errorf("over an existing file: exit %d\n%s", code, stderr)
	}
	if b, _ := os.ReadFile(workflow); string(b) != "# mine\n" {
		t.Errorf("ci init replaced the user's file without --force")
	}
	f.BuildInfo.Version = "v1.4.0"
	if code, _, stderr = runCLI(t, f, errOut, append([]string{"ci", "init", "github", "-e", "prod", "--force"}, rel...)...); code != 0 {
		t.Fatalf("--force, this skiff's version: exit %d\n%s", code, stderr)
	}
	if b, _ := os.ReadFile(workflow); !strings.Contains(string(b), "install skiff 1.4.0") {
		t.Errorf("--force did not replace the file:\n%s", b)
	}

	code, out, _ = runCLI(t, f, errOut, append([]string{"ci", "init", "gitlab", "-e", "prod", "-o", "json"}, rel...)...)
	if code != 0 || !strings.Contains(out, `"file": "`+filepath.Join(dir, ".gitlab-ci.yml")+`"`) || !strings.Contains(out, `"registry": "registry.example.com"`) {
		t.Errorf("gitlab -o json: exit %d\n%s", code, out)
	}
}
