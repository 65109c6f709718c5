package build

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/skiffdev/skiff/internal/project"
)

var epoch = time.Unix(1700000000, 0).UTC()

// hostFiles writes a fake CA bundle and time zone database so scratch
// builds do not depend on the test machine.
func hostFiles(t *testing.T) (certs, zoneinfo string) {
	t.Helper()
	dir := t.TempDir()
	certs = filepath.Join(dir, "ca.crt")
	zoneinfo = filepath.Join(dir, "zoneinfo")
	must(t, os.WriteFile(certs, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600))
	must(t, os.MkdirAll(filepath.Join(zoneinfo, "Europe"), 0o700))
	must(t, os.WriteFile(filepath.Join(zoneinfo, "Europe", "Paris"), []byte("TZif"), 0o600))
	must(t, os.Symlink("Paris", filepath.Join(zoneinfo, "Europe", "Brussels")))
	return certs, zoneinfo
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(data), 0o644))
	}
}

const goMain = `package main

import (
	"fmt"
	"os"
)

func main() { fmt.Println("hello", os.Getenv("PORT")) }
`

func goWorkload(t *testing.T, dir string) Request {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go toolchain")
	}
	writeFiles(t, dir, map[string]string{"go.mod": "module example.com/hello\n\ngo 1.22\n", "main.go": goMain})
	return Request{
		Project: "shop", Dir: dir, Base: Scratch, SBOM: true, Epoch: epoch,
		Workload:  project.Workload{Name: "hello", Lang: project.LangGo, Port: 9090},
		Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}},
		Labels:    map[string]string{LabelRevision: "abc"},
	}
}

func newBuilder(t *testing.T) *Builder {
	certs, zi := hostFiles(t)
	return &Builder{HostCerts: certs, HostZoneinfo: zi, Version: "test"}
}

func TestGoBuildIsReproducibleAcrossFolders(t *testing.T) {
	ctx := context.Background()
	b := newBuilder(t)
	a1, err := b.Build(ctx, goWorkload(t, t.TempDir()))
	must(t, err)
	a2, err := b.Build(ctx, goWorkload(t, t.TempDir()))
	must(t, err)
	d1, _ := a1.Digest()
	d2, _ := a2.Digest()
	if d1 != d2 {
		t.Fatalf("two builds of the same sources differ: %s and %s", d1, d2)
	}
	if string(a1.SBOM) != string(a2.SBOM) {
		t.Fatal("two builds of the same sources have different SBOMs")
	}

	cf, err := a1.Image.ConfigFile()
	must(t, err)
	c := cf.Config
	if c.User != "65532" || c.WorkingDir != "/app" || strings.Join(c.Entrypoint, " ") != "/app/hello" {
		t.Errorf("config user=%q workdir=%q entrypoint=%q", c.User, c.WorkingDir, c.Entrypoint)
	}
	if _, ok := c.ExposedPorts["9090/tcp"]; !ok {
		t.Errorf("exposed ports %v, want 9090/tcp", c.ExposedPorts)
	}
	if !contains(c.Env, "PORT=9090") || c.Labels[LabelRevision] != "abc" {
		t.Errorf("env %v labels %v", c.Env, c.Labels)
	}
	if !cf.Created.Time.Equal(epoch) || cf.Architecture != "amd64" || cf.OS != "linux" {
		t.Errorf("created %v platform %s/%s", cf.Created, cf.OS, cf.Architecture)
	}

	files := imageFiles(t, a1.Image)
	for _, want := range []string{"app/hello", "etc/ssl/certs/ca-certificates.crt", "usr/share/zoneinfo/Europe/Paris", "etc/passwd", "tmp/"} {
		h, ok := files[want]
		if !ok {
			t.Errorf("the image has no %s", want)
			continue
		}
		if !h.ModTime.Equal(epoch) {
			t.Errorf("%s has time %v, want %v", want, h.ModTime, epoch)
		}
	}
	if h := files["app/hello"]; h != nil && (h.Mode != 0o755 || h.Uid != 0) {
		t.Errorf("the binary has mode %o uid %d, want 755 and 0", h.Mode, h.Uid)
	}
	if h := files["usr/share/zoneinfo/Europe/Brussels"]; h == nil || h.Typeflag != tar.TypeSymlink {
		t.Errorf("zoneinfo symlinks must stay symlinks, got %+v", h)
	}

	var doc map[string]any
	must(t, json.Unmarshal(a1.SBOM, &doc))
	if doc["spdxVersion"] != "SPDX-2.3" || !strings.Contains(string(a1.SBOM), "pkg:golang/stdlib@") {
		t.Errorf("SBOM is not SPDX 2.3 with the Go stdlib:\n%s", a1.SBOM)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// imageFiles returns the tar headers of every file in the image's layers.
func imageFiles(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	layers, err := img.Layers()
	must(t, err)
	out := map[string]*tar.Header{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		must(t, err)
		tr := tar.NewReader(rc)
		var prev string
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			must(t, err)
			// Sorted by path, folders without their trailing slash.
			if n := strings.TrimSuffix(h.Name, "/"); n < prev {
				t.Errorf("layer entries are not sorted: %s after %s", h.Name, prev)
			} else {
				prev = n
			}
			out[h.Name] = h
		}
		rc.Close()
	}
	return out
}

func TestGoMultiPlatformIndex(t *testing.T) {
	req := goWorkload(t, t.TempDir())
	req.Platforms = []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}
	a, err := newBuilder(t).Build(context.Background(), req)
	must(t, err)
	if a.Index == nil {
		t.Fatal("two platforms must give an index")
	}
	im, err := a.Index.IndexManifest()
	must(t, err)
	if len(im.Manifests) != 2 || im.Manifests[0].Platform.Architecture != "amd64" || im.Manifests[1].Platform.Architecture != "arm64" {
		t.Fatalf("index manifests %+v", im.Manifests)
	}
	arm, err := a.Index.Image(im.Manifests[1].Digest)
	must(t, err)
	cf, err := arm.ConfigFile()
	must(t, err)
	if cf.Architecture != "arm64" {
		t.Errorf("arm64 image config says %s", cf.Architecture)
	}
}

func TestGoCompileErrorSaysWhatFailed(t *testing.T) {
	dir := t.TempDir()
	req := goWorkload(t, dir)
	writeFiles(t, dir, map[string]string{"main.go": "package main\n\nfunc main() { undefinedThing() }\n"})
	_, err := newBuilder(t).Build(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "go build of hello for linux/amd64 failed") || !strings.Contains(err.Error(), "undefinedThing") {
		t.Fatalf("got %v", err)
	}
}

// memCache is a build cache in memory.
type memCache struct{ m map[string]*Artifact }

func (c *memCache) Get(_ context.Context, key string) (*Artifact, error) { return c.m[key], nil }
func (c *memCache) Put(_ context.Context, key string, a *Artifact) error {
	c.m[key] = a
	return nil
}

func TestCacheSkipsUnchangedBuilds(t *testing.T) {
	dir := t.TempDir()
	req := goWorkload(t, dir)
	b := newBuilder(t)
	b.Cache = &memCache{m: map[string]*Artifact{}}
	ctx := context.Background()
	a1, err := b.Build(ctx, req)
	must(t, err)
	if a1.Reused {
		t.Fatal("first build reused")
	}
	a2, err := b.Build(ctx, req)
	must(t, err)
	if !a2.Reused || a2.Key != a1.Key {
		t.Fatalf("second build: reused=%v key %s vs %s", a2.Reused, a2.Key, a1.Key)
	}
	writeFiles(t, dir, map[string]string{"main.go": strings.Replace(goMain, "hello", "bonjour", 1)})
	a3, err := b.Build(ctx, req)
	must(t, err)
	if a3.Reused || a3.Key == a1.Key {
		t.Fatal("a changed source was not rebuilt")
	}

	// What the chart gives the workload does not rebuild its image...
	chartOnly := req
	three := 3
	chartOnly.Workload.Env = map[string]string{"LOG_LEVEL": "debug"}
	chartOnly.Workload.Config = map[string]string{"GREETING": "hi"}
	chartOnly.Workload.Replicas = &three
	chartOnly.Workload.DependsOn = []string{"payments"}
	chartOnly.Workload.Autoscale = &project.Autoscale{Min: 1, Max: 3}
	chartOnly.Workload.Health = "/live"
	a4, err := b.Build(ctx, chartOnly)
	must(t, err)
	if !a4.Reused || a4.Key != a3.Key {
		t.Errorf("env/config/replicas/dependsOn/autoscale/probes rebuilt the image: reused=%v", a4.Reused)
	}
	// ...what the image contains does.
	newPort := req
	newPort.Workload.Port = 9191
	a5, err := b.Build(ctx, newPort)
	must(t, err)
	if a5.Reused || a5.Key == a3.Key {
		t.Error("a new port (in the image config) was not rebuilt")
	}
}

// fakeBases serves base images from memory.
type fakeBases map[string]*Base

func (f fakeBases) Base(_ context.Context, ref string) (*Base, error) {
	if b, ok := f[ref]; ok {
		return b, nil
	}
	return nil, errors.New("base image " + ref + " not found")
}

func TestBaseIndexPlatforms(t *testing.T) {
	img, err := random.Image(64, 1)
	must(t, err)
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img,
		Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}})
	d, _ := idx.Digest()
	req := goWorkload(t, t.TempDir())
	req.Base = "example/base:1"
	b := newBuilder(t)
	b.Bases = fakeBases{"example/base:1": {Ref: "example/base:1", Digest: d, Index: idx}}
	a, err := b.Build(context.Background(), req)
	must(t, err)
	if a.Base.Digest != d.String() {
		t.Errorf("base digest %s, want %s", a.Base.Digest, d)
	}
	layers, _ := a.Image.Layers()
	if len(layers) != 2 {
		t.Errorf("image has %d layers, want the base's 1 and the binary", len(layers))
	}

	req.Platforms = append(req.Platforms, v1.Platform{OS: "linux", Architecture: "arm64"})
	_, err = b.Build(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "has no linux/arm64 image") {
		t.Fatalf("missing platform: got %v", err)
	}
	req.Base = "example/missing:1"
	_, err = b.Build(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("missing base: got %v", err)
	}
}

func TestScratchNeedsGo(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"main.py": "print('hi')\n"})
	req := Request{Dir: dir, Base: Scratch, Workload: project.Workload{Name: "py", Lang: project.LangPython, Port: 8080},
		Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}}}
	_, err := newBuilder(t).Build(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "needs a base image with the Python runtime") {
		t.Fatalf("got %v", err)
	}
}

func scriptBase(t *testing.T) fakeBases {
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{OS: "linux", Architecture: "amd64",
		Config: v1.Config{Env: []string{"PATH=/usr/bin"}, Cmd: []string{"sh"}}})
	must(t, err)
	d, _ := img.Digest()
	return fakeBases{"runtime": {Ref: "runtime", Digest: d, Image: img}}
}

func TestPythonLayersAndEntrypoint(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"main.py": "print('hi')\n", "requirements.txt": "# none\n", "__pycache__/x.pyc": "x"})
	req := Request{Project: "shop", Dir: dir, Base: "runtime", Epoch: epoch, SBOM: true,
		Workload:  project.Workload{Name: "py", Lang: project.LangPython, Port: 8080},
		Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}}}
	b := newBuilder(t)
	b.Bases = scriptBase(t)
	a, err := b.Build(context.Background(), req)
	must(t, err)
	cf, err := a.Image.ConfigFile()
	must(t, err)
	if strings.Join(cf.Config.Entrypoint, " ") != "python3 /app/main.py" || cf.Config.Cmd != nil {
		t.Errorf("entrypoint %q cmd %q", cf.Config.Entrypoint, cf.Config.Cmd)
	}
	if !contains(cf.Config.Env, "PATH=/usr/bin") || !contains(cf.Config.Env, "PYTHONPATH=/app/.deps") {
		t.Errorf("env %v", cf.Config.Env)
	}
	files := imageFiles(t, a.Image)
	if _, ok := files["app/main.py"]; !ok {
		t.Error("no app/main.py")
	}
	if _, ok := files["app/__pycache__/x.pyc"]; ok {
		t.Error("__pycache__ went into the image")
	}
}

func TestNodeWithoutDependencies(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"package.json": `{"name":"n","main":"index.js"}`, "index.js": "console.log(1)\n",
		"node_modules/junk/index.js": "x"})
	req := Request{Project: "shop", Dir: dir, Base: "runtime", Epoch: epoch,
		Workload:  project.Workload{Name: "web", Lang: project.LangNode, Port: 3000},
		Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}}}
	b := newBuilder(t)
	b.Bases = scriptBase(t)
	a, err := b.Build(context.Background(), req)
	must(t, err)
	cf, err := a.Image.ConfigFile()
	must(t, err)
	if strings.Join(cf.Config.Entrypoint, " ") != "node /app/index.js" {
		t.Errorf("entrypoint %q", cf.Config.Entrypoint)
	}
	files := imageFiles(t, a.Image)
	if _, ok := files["app/node_modules/junk/index.js"]; ok {
		t.Error("the host's node_modules went into the image; the builder installs its own")
	}

	writeFiles(t, dir, map[string]string{"package.json": `{"name":"n","dependencies":{"left-pad":"1.0.0"}}`})
	_, err = b.Build(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "no package-lock.json") {
		t.Fatalf("dependencies without a lockfile: got %v", err)
	}
}

func TestCheckNativeRefusesCrossPlatform(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"addon/build/Release/x.node": "elf"})
	foreign := v1.Platform{OS: "linux", Architecture: "s390x"}
	isNode := func(rel string) bool { return strings.HasSuffix(rel, ".node") }
	if err := checkNative(dir, []v1.Platform{foreign}, isNode, "native Node.js addons"); err == nil || !strings.Contains(err.Error(), "x.node") {
		t.Fatalf("got %v", err)
	}
	host, _ := v1.ParsePlatform(hostPlatform())
	if err := checkNative(dir, []v1.Platform{*host}, isNode, "native Node.js addons"); err != nil {
		t.Fatalf("host platform: %v", err)
	}
}

func TestSourceProvenance(t *testing.T) {
	env := map[string]string{"SOURCE_DATE_EPOCH": "1234"}
	p, err := SourceProvenance(context.Background(), t.TempDir(), func(k string) string { return env[k] }, "v1")
	must(t, err)
	if p.Epoch.Unix() != 1234 || p.Labels[LabelVersion] != "v1" || p.Labels[LabelCreated] != "1970-01-01T00:20:34Z" {
		t.Errorf("got %+v", p)
	}
	env["SOURCE_DATE_EPOCH"] = "yesterday"
	if _, err := SourceProvenance(context.Background(), t.TempDir(), func(k string) string { return env[k] }, ""); err == nil {
		t.Error("a bad SOURCE_DATE_EPOCH was accepted")
	}
}

// imageFile is the contents of file name in img's layers ("" and false
// when no layer has it).
func imageFile(t *testing.T, img v1.Image, name string) ([]byte, bool) {
	t.Helper()
	layers, err := img.Layers()
	must(t, err)
	var data []byte
	found := false
	for _, l := range layers {
		rc, err := l.Uncompressed()
		must(t, err)
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			must(t, err)
			if h.Name == name {
				data, err = io.ReadAll(tr)
				must(t, err)
				found = true
			}
		}
		rc.Close()
	}
	return data, found
}

// The image carries the bytecode of the workload's modules, hash-checked
// (a source synced in later is compiled again, not run stale), with its
// path in the image, the same on every build; a file that does not
// compile is left to fail where it is imported.
func TestPythonBytecode(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	out, err := exec.Command("python3", "-c", "import sys; print(sys.implementation.cache_tag)").Output()
	must(t, err)
	tag := strings.TrimSpace(string(out))
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"main.py": "import lib\n", "lib.py": "GREETING = 'hi'\n", "pkg/__init__.py": "",
		"broken.py": "def (:\n"})
	req := Request{Project: "shop", Dir: dir, Base: "runtime", Epoch: epoch,
		Workload:  project.Workload{Name: "py", Lang: project.LangPython, Port: 8080},
		Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}}}
	b := newBuilder(t)
	b.Bases = scriptBase(t)
	a, err := b.Build(context.Background(), req)
	must(t, err)
	pyc, ok := imageFile(t, a.Image, "app/__pycache__/lib."+tag+".pyc")
	if !ok {
		t.Fatalf("no bytecode of lib.py in the image: %v", imageFiles(t, a.Image))
	}
	// PEP 552: the flags word after the magic number; 3 is hash-based and checked.
	if len(pyc) < 16 || pyc[4] != 3 || pyc[5] != 0 || pyc[6] != 0 || pyc[7] != 0 {
		t.Errorf("lib's bytecode is not hash-checked: header % x", pyc[:min(len(pyc), 16)])
	}
	if !bytes.Contains(pyc, []byte("/app/lib.py")) {
		t.Error("lib's bytecode does not name its path in the image")
	}
	if _, ok := imageFile(t, a.Image, "app/pkg/__pycache__/__init__."+tag+".pyc"); !ok {
		t.Error("no bytecode of a package's __init__.py")
	}
	if _, ok := imageFile(t, a.Image, "app/__pycache__/broken."+tag+".pyc"); ok {
		t.Error("a file that does not compile has bytecode")
	}
	if entries, err := os.ReadDir(dir); err != nil || slices.ContainsFunc(entries, func(e os.DirEntry) bool { return e.Name() == "__pycache__" }) {
		t.Errorf("the build wrote into the workload's folder: %v %v", entries, err)
	}
	again, err := b.Build(context.Background(), req)
	must(t, err)
	d1, _ := a.Image.Digest()
	d2, _ := again.Image.Digest()
	if d1 != d2 {
		t.Errorf("two builds of the same sources: %s and %s", d1, d2)
	}
}
