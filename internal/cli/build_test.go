package cli

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/factory"
	"github.com/skiffdev/skiff/internal/iostreams"
	"github.com/skiffdev/skiff/internal/pipeline"
	"github.com/skiffdev/skiff/internal/project"
)

func TestNewCmdBuildFlags(t *testing.T) {
	f, _ := testFactory(t, false)
	var got *BuildOptions
	cmd := NewCmdBuild(f, func(_ context.Context, o *BuildOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"orders", "pay", "--platform", "linux/amd64,linux/arm64", "--push", "--base", "scratch",
		"--sbom", "none", "--insecure-registry", "a:5000", "--insecure-registry", "b", "--tag", "v1", "--no-cache"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.Workloads, ",") != "orders,pay" || strings.Join(got.Platforms, ",") != "linux/amd64,linux/arm64" ||
		!got.Push || got.Base != "scratch" || got.SBOM != "none" || strings.Join(got.Insecure, ",") != "a:5000,b" ||
		got.Tag != "v1" || !got.NoCache {
		t.Errorf("options = %+v", got)
	}
	cmd = NewCmdBuild(f, func(_ context.Context, o *BuildOptions) error { got = o; return nil })
	cmd.SetArgs(nil)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.SBOM != "spdx" || got.Tag != "latest" || got.Push || got.Dest != "" {
		t.Errorf("defaults = %+v", got)
	}
}

const buildManifest = `apiVersion: skiff.dev/v1alpha1
name: shop
workloads:
  - name: hello
    kind: function
    lang: go
  - name: web
    kind: service
    lang: node
    base: example/node:20
`

func TestPlanBuildUsageErrors(t *testing.T) {
	f, dir := testFactory(t, false)
	if err := os.WriteFile(filepath.Join(dir, project.FileName), []byte(buildManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		opts BuildOptions
		want string
	}{
		{BuildOptions{SBOM: "cyclonedx", Tag: "latest"}, "--sbom"},
		{BuildOptions{SBOM: "spdx", Tag: "a:b"}, "--tag"},
		{BuildOptions{SBOM: "spdx", Tag: "latest", Dest: "zip:x"}, "--dest"},
		{BuildOptions{SBOM: "spdx", Tag: "latest", Dest: "oci:x", Push: true}, "--push and --dest"},
		{BuildOptions{SBOM: "spdx", Tag: "latest", Push: true}, "names no registry"},
		{BuildOptions{SBOM: "spdx", Tag: "latest", Workloads: []string{"nope"}}, "it has: hello, web"},
		{BuildOptions{SBOM: "spdx", Tag: "latest", Platforms: []string{"amd64"}}, "not a platform"},
		{BuildOptions{SBOM: "spdx", Tag: "latest", Platforms: []string{"windows/amd64"}}, "Linux images only"},
		{BuildOptions{SBOM: "spdx", Tag: "latest", Jobs: -1}, "--jobs -1"},
	} {
		tc.opts.Factory = f
		_, err := planBuild(&tc.opts, nil)
		var usage *cmdutil.UsageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want a usage error with %q", tc.opts, err, tc.want)
		}
	}
	plan, err := planBuild(&BuildOptions{Factory: f, SBOM: "spdx", Tag: "latest", Workloads: []string{"web", "web"}, Dest: "oci:out",
		Platforms: []string{"linux/arm64", "linux/arm64"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.pc.workloads) != 1 || len(plan.platforms) != 1 || plan.destKind != "oci" || plan.destPath != filepath.Join(dir, "out") {
		t.Errorf("plan = %+v", plan)
	}
}

func TestBaseFor(t *testing.T) {
	p := &project.Project{Build: project.Build{Base: map[string]string{"python": "team/python:3.12"}}}
	for _, tc := range []struct {
		flag string
		w    project.Workload
		want string
	}{
		{"", project.Workload{Lang: "go"}, "scratch"},
		{"", project.Workload{Lang: "node"}, "node:20-slim"},
		{"", project.Workload{Lang: "python"}, "team/python:3.12"},
		{"", project.Workload{Lang: "python", Base: "mine:1"}, "mine:1"},
		{"scratch", project.Workload{Lang: "python", Base: "mine:1"}, "scratch"},
	} {
		if got := pipeline.BaseFor(tc.flag, p, tc.w); got != tc.want {
			t.Errorf("BaseFor(%q, %+v) = %s, want %s", tc.flag, tc.w, got, tc.want)
		}
	}
}

func TestBuildRunToOCILayout(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go toolchain")
	}
	ios, _, out, errOut := iostreams.Test()
	dir := t.TempDir()
	env := map[string]string{"SKIFF_CACHE_DIR": filepath.Join(dir, ".cache"), "SOURCE_DATE_EPOCH": "0"}
	f := factory.New(ios, func(k string) string { return env[k] })
	f.WorkDir = func() (string, error) { return dir, nil }
	f.Globals.Output = cmdutil.FormatJSON
	files := map[string]string{
		project.FileName: "apiVersion: skiff.dev/v1alpha1\nname: shop\nworkloads:\n  - name: hello\n    kind: function\n    lang: go\n",
		"hello/go.mod":   "module example.com/hello\n\ngo 1.22\n",
		"hello/main.go":  "package main\n\nfunc main() {}\n",
	}
	for n, data := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, n)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opts := &BuildOptions{Factory: f, SBOM: "spdx", Tag: "latest", Dest: "oci:out"}
	for i, want := range []string{"built", "reused"} {
		out.Reset()
		if err := buildRun(context.Background(), opts); err != nil {
			t.Fatalf("build %d: %v\n%s", i, err, errOut)
		}
		var res []pipeline.Image
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("-o json printed %q: %v", out, err)
		}
		if len(res) != 1 || res[0].Status != want || res[0].Reference != "oci:"+filepath.Join(dir, "out")+":hello:latest" ||
			!strings.HasPrefix(res[0].Digest, "sha256:") || res[0].Uploaded != (i == 0) || res[0].Base != "scratch" || res[0].SBOM == "" {
			t.Fatalf("build %d: result %+v", i, res)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "index.json")); err != nil {
		t.Fatal(err)
	}
	// With -o json, progress is one JSON event per line on stderr.
	var events []pipeline.Event
	for _, line := range strings.Split(strings.TrimSpace(errOut.String()), "\n") {
		var ev pipeline.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("stderr line %q is not a JSON event: %v", line, err)
		}
		events = append(events, ev)
	}
	kinds := []string{}
	for _, ev := range events {
		kinds = append(kinds, string(ev.Kind))
	}
	if got := strings.Join(kinds, " "); got != "build-started built published build-started reused published" {
		t.Errorf("events = %s", got)
	}
	if last := events[len(events)-1]; last.Workload != "hello" || last.Uploaded || last.Destination != "oci" || last.Digest == "" {
		t.Errorf("last event %+v; want hello published, nothing uploaded", last)
	}
}
