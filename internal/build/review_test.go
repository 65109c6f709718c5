package build

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/skiffdev/skiff/internal/project"
)

func needTool(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s", tool)
		}
	}
}

func pythonRequest(dir string) Request {
	return Request{Project: "shop", Dir: dir, Base: "runtime", Epoch: epoch, SBOM: true,
		Workload:  project.Workload{Name: "py", Lang: project.LangPython, Port: 8080},
		Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}}}
}

func digestOf(t *testing.T, a *Artifact) v1.Hash {
	t.Helper()
	d, err := a.Digest()
	must(t, err)
	return d
}

func TestSecretsAndIgnoredFilesStayOutOfImageAndKey(t *testing.T) {
	needTool(t, "python3")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"main.py": "print('hi')\n", "id_rsa.pub": "ssh-rsa AAAA\n", "keep.log": "kept\n", "lib/util.py": "x = 1\n",
		"id_util.py": "y = 2\n",
		// secrets
		".env": "TOKEN=1\n", ".env.production": "TOKEN=2\n", ".npmrc": "//registry/:_authToken=x\n",
		".pypirc": "[pypi]\npassword=x\n", "certs/server.pem": "PEM\n", "tls.key": "KEY\n", "id_rsa": "PRIVATE\n",
		"id_ed25519": "PRIVATE\n", ".git-credentials": "https://u:p@host\n",
		// .skiffignore
		IgnoreFile:      "# not for the image\ndocs/\n*.log\n!keep.log\n/notes.txt\nlib/*.tmp\n",
		"docs/guide.md": "guide\n", "debug.log": "log\n", "notes.txt": "notes\n", "lib/notes.txt": "kept: not at the top\n",
		"lib/cache.tmp": "tmp\n",
	})
	b := newBuilder(t)
	b.Bases = scriptBase(t)
	b.Cache = &memCache{m: map[string]*Artifact{}}
	a, err := b.Build(context.Background(), pythonRequest(dir))
	must(t, err)
	files := imageFiles(t, a.Image)
	for _, gone := range []string{".env", ".env.production", ".npmrc", ".pypirc", "certs/server.pem", "tls.key", "id_rsa", "id_ed25519",
		".git-credentials", IgnoreFile, "docs/guide.md", "docs/", "debug.log", "notes.txt", "lib/cache.tmp"} {
		if _, ok := files["app/"+gone]; ok {
			t.Errorf("app/%s went into the image", gone)
		}
	}
	for _, kept := range []string{"main.py", "id_rsa.pub", "keep.log", "lib/util.py", "lib/notes.txt", "id_util.py"} {
		if _, ok := files["app/"+kept]; !ok {
			t.Errorf("app/%s is missing from the image", kept)
		}
	}

	// What stays out of the image stays out of the key: no rebuild.
	writeFiles(t, dir, map[string]string{".env": "TOKEN=3\n", "docs/guide.md": "new guide\n", "debug.log": "more\n"})
	again, err := b.Build(context.Background(), pythonRequest(dir))
	must(t, err)
	if !again.Reused {
		t.Error("a change to a secret or an ignored file rebuilt the image")
	}
	writeFiles(t, dir, map[string]string{"keep.log": "changed\n"})
	again, err = b.Build(context.Background(), pythonRequest(dir))
	must(t, err)
	if again.Reused {
		t.Error("a change to a file taken back with ! did not rebuild")
	}

	writeFiles(t, dir, map[string]string{IgnoreFile: "[oops\n"})
	if _, err := b.Build(context.Background(), pythonRequest(dir)); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("a bad pattern: got %v", err)
	}
}

func TestNodeNpmrcReachesNpmButNotTheImage(t *testing.T) {
	f := &sourceFilter{lang: project.LangNode}
	d := fakeEntry{}
	if f.build(".npmrc", d) || !f.image(".npmrc", d) || !f.build("sub/.npmrc", d) || !f.build(".env", d) {
		t.Fatal("the build copy must keep the top .npmrc only, and the image none")
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"package.json": `{"name":"n","main":"index.js"}`, "index.js": "console.log(1)\n",
		".npmrc": "//registry.example/:_authToken=secret\n", ".env": "A=1\n"})
	req := Request{Project: "shop", Dir: dir, Base: "runtime", Epoch: epoch,
		Workload:  project.Workload{Name: "web", Lang: project.LangNode, Port: 3000},
		Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}}}
	b := newBuilder(t)
	b.Bases = scriptBase(t)
	a, err := b.Build(context.Background(), req)
	must(t, err)
	files := imageFiles(t, a.Image)
	for _, gone := range []string{"app/.npmrc", "app/.env"} {
		if _, ok := files[gone]; ok {
			t.Errorf("%s went into the image", gone)
		}
	}
}

// fakeEntry is a regular file for filter tests.
type fakeEntry struct{ dir bool }

func (f fakeEntry) Name() string { return "x" }
func (f fakeEntry) IsDir() bool  { return f.dir }
func (f fakeEntry) Type() os.FileMode {
	if f.dir {
		return os.ModeDir
	}
	return 0
}
func (f fakeEntry) Info() (os.FileInfo, error) { return nil, os.ErrInvalid }

func TestGoKeyCoversModuleRootAndReplaces(t *testing.T) {
	needTool(t, "go")
	lib := func(word string) string {
		return "package lib\n\nfunc Word() string { return \"" + word + "\" }\n"
	}
	main := func(imp string) string {
		return "package main\n\nimport (\n\t\"fmt\"\n\n\t\"" + imp + "\"\n)\n\nfunc main() { fmt.Println(lib.Word()) }\n"
	}
	t.Run("module-root", func(t *testing.T) {
		root := t.TempDir()
		writeFiles(t, root, map[string]string{"go.mod": "module example.com/shop\n\ngo 1.22\n",
			"lib/lib.go": lib("hello"), "svc/main.go": main("example.com/shop/lib")})
		b := newBuilder(t)
		b.Cache = &memCache{m: map[string]*Artifact{}}
		svc := filepath.Join(root, "svc")
		req := goWorkload(t, svc)
		must(t, os.Remove(filepath.Join(svc, "go.mod")))
		writeFiles(t, svc, map[string]string{"main.go": main("example.com/shop/lib")})
		a1, err := b.Build(context.Background(), req)
		must(t, err)
		writeFiles(t, root, map[string]string{"lib/lib.go": lib("bonjour")})
		a2, err := b.Build(context.Background(), req)
		must(t, err)
		if a2.Reused || digestOf(t, a1) == digestOf(t, a2) {
			t.Fatal("editing ../lib of the module did not rebuild")
		}
		a3, err := b.Build(context.Background(), req)
		must(t, err)
		if !a3.Reused {
			t.Fatal("an unchanged module was rebuilt")
		}
	})
	t.Run("replace", func(t *testing.T) {
		root := t.TempDir()
		writeFiles(t, root, map[string]string{"util/go.mod": "module example.com/util\n\ngo 1.22\n", "util/lib.go": lib("hello")})
		b := newBuilder(t)
		b.Cache = &memCache{m: map[string]*Artifact{}}
		svc := filepath.Join(root, "svc")
		req := goWorkload(t, svc)
		writeFiles(t, svc, map[string]string{
			"go.mod":  "module example.com/hello\n\ngo 1.22\n\nrequire example.com/util v0.0.0\n\nreplace (\n\texample.com/util => ../util // local\n)\n",
			"main.go": main("example.com/util"),
		})
		a1, err := b.Build(context.Background(), req)
		must(t, err)
		writeFiles(t, root, map[string]string{"util/lib.go": lib("bonjour")})
		a2, err := b.Build(context.Background(), req)
		must(t, err)
		if a2.Reused || digestOf(t, a1) == digestOf(t, a2) {
			t.Fatal("editing the replaced module ../util did not rebuild")
		}
	})
}

// wheel returns a minimal pure-Python wheel.
func wheel(t *testing.T, greeting string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range [][2]string{
		{"greetlib/__init__.py", "GREETING = '" + greeting + "'\n"},
		{"greetlib-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: greetlib\nVersion: 1.0\n"},
		{"greetlib-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
		{"greetlib-1.0.dist-info/RECORD", ""},
	} {
		w, err := zw.Create(f[0])
		must(t, err)
		_, err = w.Write([]byte(f[1]))
		must(t, err)
	}
	must(t, zw.Close())
	return buf.Bytes()
}

func TestPythonLocalWheelDigestDoesNotDependOnFolder(t *testing.T) {
	needTool(t, "python3")
	if err := exec.Command("python3", "-m", "pip", "--version").Run(); err != nil {
		t.Skip("no pip")
	}
	whl := "greetlib-1.0-py3-none-any.whl"
	var digests []v1.Hash
	for _, dir := range []string{filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b", "elsewhere")} {
		writeFiles(t, dir, map[string]string{"main.py": "import greetlib\n", "requirements.txt": "./wheels/" + whl + "\n",
			"wheels/" + whl: string(wheel(t, "Hello"))})
		b := newBuilder(t)
		b.Bases = scriptBase(t)
		b.Env = append(os.Environ(), "PIP_NO_INDEX=1")
		a, err := b.Build(context.Background(), pythonRequest(dir))
		must(t, err)
		files := imageFiles(t, a.Image)
		if _, ok := files["app/.deps/greetlib/__init__.py"]; !ok {
			t.Fatal("greetlib was not installed")
		}
		if _, ok := files["app/.deps/greetlib-1.0.dist-info/direct_url.json"]; ok {
			t.Error("direct_url.json (an absolute file:// URL of the checkout) went into the image")
		}
		digests = append(digests, digestOf(t, a))
	}
	if digests[0] != digests[1] {
		t.Fatalf("the same sources in two folders give %s and %s", digests[0], digests[1])
	}
}

func TestPythonKeyCoversLocalRequirements(t *testing.T) {
	needTool(t, "python3")
	if err := exec.Command("python3", "-m", "pip", "--version").Run(); err != nil {
		t.Skip("no pip")
	}
	root := t.TempDir()
	whl := "greetlib-1.0-py3-none-any.whl"
	writeFiles(t, root, map[string]string{"wheels/" + whl: string(wheel(t, "Hello")), "links/README": "x\n",
		"py/main.py": "import greetlib\n", "py/requirements.txt": "../wheels/" + whl + "\n"})
	b := newBuilder(t)
	b.Bases = scriptBase(t)
	b.Cache = &memCache{m: map[string]*Artifact{}}
	b.Env = append(os.Environ(), "PIP_NO_INDEX=1", "PIP_FIND_LINKS="+filepath.Join(root, "links"))
	req := pythonRequest(filepath.Join(root, "py"))
	a1, err := b.Build(context.Background(), req)
	must(t, err)
	writeFiles(t, root, map[string]string{"wheels/" + whl: string(wheel(t, "Bonjour"))})
	a2, err := b.Build(context.Background(), req)
	must(t, err)
	if a2.Reused || digestOf(t, a1) == digestOf(t, a2) {
		t.Fatal("a changed ../wheels/greetlib wheel did not rebuild")
	}
	writeFiles(t, root, map[string]string{"links/other.whl": "x"})
	a3, err := b.Build(context.Background(), req)
	must(t, err)
	if a3.Reused {
		t.Fatal("a changed PIP_FIND_LINKS folder did not rebuild")
	}
}

func TestSymlinkedWorkloadFolder(t *testing.T) {
	needTool(t, "python3")
	real := filepath.Join(t.TempDir(), "real")
	writeFiles(t, real, map[string]string{"main.py": "print('hi')\n"})
	link := filepath.Join(t.TempDir(), "link")
	must(t, os.Symlink(real, link))
	b := newBuilder(t)
	b.Bases = scriptBase(t)
	a, err := b.Build(context.Background(), pythonRequest(link))
	must(t, err)
	if _, ok := imageFiles(t, a.Image)["app/main.py"]; !ok {
		t.Fatal("a workload folder that is a symlink gave an image without its sources")
	}
}

func TestScratchTmpIsSticky(t *testing.T) {
	a, err := newBuilder(t).Build(context.Background(), goWorkload(t, t.TempDir()))
	must(t, err)
	h := imageFiles(t, a.Image)["tmp/"]
	if h == nil || h.Mode != 0o1777 {
		t.Fatalf("/tmp of the scratch base: %+v, want mode 1777", h)
	}
	var buf bytes.Buffer
	lw := newLayerWriter(epoch)
	lw.Dir("/opt/shared", 0o2775|os.ModeSetgid, RootID, RootID)
	must(t, lw.Tar(&buf))
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		must(t, err)
		if h.Name == "opt/shared/" {
			if h.Mode != 0o2775 {
				t.Fatalf("setgid folder has mode %o", h.Mode)
			}
			break
		}
	}
}

// npmTarball returns an npm package tarball (package/...) and its
// integrity string.
func npmTarball(t *testing.T, files map[string]string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, n := range []string{"package/package.json", "package/index.js"} {
		must(t, tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), ModTime: epoch}))
		_, err := tw.Write([]byte(files[n]))
		must(t, err)
	}
	must(t, tw.Close())
	must(t, zw.Close())
	sum := sha512.Sum512(buf.Bytes())
	return buf.Bytes(), "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
}

func TestNodeLockfileV1Installs(t *testing.T) {
	needTool(t, "node", "npm")
	tgz, integrity := npmTarball(t, map[string]string{
		"package/package.json": `{"name":"greet","version":"1.0.0","main":"index.js"}`,
		"package/index.js":     "module.exports = 'hi'\n",
	})
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"package.json": `{"name":"app","version":"1.0.0","main":"index.js","dependencies":{"greet":"file:greet-1.0.0.tgz"}}`,
		"package-lock.json": `{"name":"app","version":"1.0.0","lockfileVersion":1,"requires":true,"dependencies":{` +
			`"greet":{"version":"file:greet-1.0.0.tgz","integrity":"` + integrity + `"}}}`,
		"index.js":        "console.log(require('greet'))\n",
		"greet-1.0.0.tgz": string(tgz),
	})
	req := Request{Project: "shop", Dir: dir, Base: "runtime", Epoch: epoch, SBOM: true,
		Workload:  project.Workload{Name: "web", Lang: project.LangNode, Port: 3000},
		Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}}}
	b := newBuilder(t)
	b.Bases = scriptBase(t)
	b.Env = append(os.Environ(), "npm_config_cache="+t.TempDir(), "npm_config_offline=true")
	a, err := b.Build(context.Background(), req)
	must(t, err)
	if _, ok := imageFiles(t, a.Image)["app/node_modules/greet/index.js"]; !ok {
		t.Fatal("a lockfileVersion 1 project got an image without node_modules")
	}
	if !strings.Contains(string(a.SBOM), "pkg:npm/greet@1.0.0") {
		t.Errorf("the SBOM does not list greet 1.0.0:\n%s", a.SBOM)
	}
}

func TestDirtyWorkTreeRevision(t *testing.T) {
	needTool(t, "git")
	dir := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t.invalid", "GIT_COMMITTER_NAME=t",
			"GIT_COMMITTER_EMAIL=t@t.invalid", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	writeFiles(t, dir, map[string]string{"fn/main.py": "print(1)\n"})
	git("init", "-q")
	git("add", "-A")
	git("commit", "-q", "-m", "first")
	fn := filepath.Join(dir, "fn")
	getenv := func(string) string { return "" }
	clean, err := SourceProvenance(context.Background(), fn, getenv, "")
	must(t, err)
	rev := clean.Labels[LabelRevision]
	if len(rev) != 40 {
		t.Fatalf("clean revision %q", rev)
	}
	writeFiles(t, dir, map[string]string{"fn/main.py": "print(2)\n"})
	dirty, err := SourceProvenance(context.Background(), fn, getenv, "")
	must(t, err)
	if dirty.Labels[LabelRevision] != rev+"-dirty" {
		t.Fatalf("a changed work tree is labelled %q, want %s-dirty", dirty.Labels[LabelRevision], rev)
	}
}
