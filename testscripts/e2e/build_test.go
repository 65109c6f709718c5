//go:build e2e

package e2e

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/skiffdev/skiff/internal/porttest"
)

func TestBuild(t *testing.T) {
	need(t, "docker-registry", "skopeo", "umoci", "runc", "go", "node", "npm", "python3", "ldd")
	e := &env{skiff: buildSkiff(t, t.TempDir())}
	e.registry = startRegistry(t)
	e.bases = pushBases(t, e.registry)
	t.Logf("registry %s, bases %+v", e.registry, e.bases)

	t.Run("go", e.testGo)
	t.Run("go-multiplatform", e.testGoMultiPlatform)
	t.Run("reproducible", e.testReproducible)
	t.Run("node", func(t *testing.T) { e.testRuntime(t, "node", e.bases.Node, nil) })
	t.Run("typescript", func(t *testing.T) { e.testRuntime(t, "typescript", e.bases.Node, nil) })
	t.Run("python", e.testPython)
	t.Run("bad-inputs", e.testBadInputs)
	t.Run("concurrent-store", e.testConcurrentStore)
}

// cacheEnv gives each test its own cache folder.
func cacheEnv(t *testing.T) []string {
	return []string{"SKIFF_CACHE_DIR=" + filepath.Join(t.TempDir(), "cache")}
}

// checkPushed checks that the registry holds res under its tag, as skopeo
// sees it, and returns the tag reference.
func (e *env) checkPushed(t *testing.T, res result, repo string) string {
	t.Helper()
	ref := e.registry + "/" + repo + ":latest"
	if !strings.HasPrefix(res.Reference, ref+"@sha256:") {
		t.Fatalf("reference %s, want %s@sha256:...", res.Reference, ref)
	}
	if got := skopeoDigest(t, ref); got != res.Digest {
		t.Fatalf("skopeo reads %s as %s, skiff reported %s", ref, got, res.Digest)
	}
	if res.SBOM != "" {
		if got := skopeoDigest(t, res.SBOM); got == "" {
			t.Fatalf("skopeo cannot read the SBOM %s", res.SBOM)
		}
	}
	return ref
}

func (e *env) testGo(t *testing.T) {
	dir := e.newProject(t, "function", "go", "hello", e.registry+"/e2e")
	cache := cacheEnv(t)
	// The default base for Go: scratch with CA certificates and time zones.
	res := e.skiffBuild(t, dir, cache, "--push")
	if len(res) != 1 || res[0].Status != "built" || !res[0].Uploaded || res[0].Base != "scratch" {
		t.Fatalf("result %+v", res)
	}
	ref := e.checkPushed(t, res[0], "e2e/hello")

	out := mustRun(t, "", nil, "skopeo", "inspect", "--tls-verify=false", "--config", "docker://"+ref)
	for _, want := range []string{`"User": "65532"`, `"WorkingDir": "/app"`, `"PORT=8080"`, `"8080/tcp"`, `"/app/hello"`, `org.opencontainers.image.created`} {
		if !strings.Contains(out, want) {
			t.Errorf("image config lacks %s:\n%s", want, out)
		}
	}

	port := porttest.Port(t)
	runImage(t, ref, port)
	code, body := get(t, fmt.Sprintf("http://127.0.0.1:%d/?name=e2e", port))
	if code != http.StatusOK || !strings.Contains(body, "Hello, e2e!") {
		t.Fatalf("GET answered %d %q", code, body)
	}

	// A no-op rebuild reuses the image and uploads nothing.
	res = e.skiffBuild(t, dir, cache, "--push")
	if res[0].Status != "reused" || res[0].Uploaded {
		t.Fatalf("no-op rebuild: %+v", res[0])
	}

	// The tarball's reference is one skopeo reads as it is printed.
	file := filepath.Join(t.TempDir(), "hello.tar")
	res = e.skiffBuild(t, dir, cache, "--dest", "tar:"+file)
	if want := "docker-archive:" + file + ":" + e.registry + "/e2e/hello:latest"; res[0].Reference != want || !res[0].Uploaded {
		t.Fatalf("tarball result %+v, want reference %s", res[0], want)
	}
	cfg := mustRun(t, "", nil, "skopeo", "inspect", "--config", res[0].Reference)
	if !strings.Contains(cfg, `"/app/hello"`) {
		t.Fatalf("skopeo inspect %s:\n%s", res[0].Reference, cfg)
	}
	if _, err := os.Stat(res[0].SBOM); err != nil {
		t.Fatalf("the SBOM next to the tarball: %v", err)
	}
	if res = e.skiffBuild(t, dir, cache, "--dest", "tar:"+file); res[0].Uploaded {
		t.Errorf("the tarball already held the image: %+v", res[0])
	}
}

// skopeoRawDigest returns the digest of the manifest skopeo reads at a
// transport reference (oci:DIR:NAME), as skiff printed it.
func skopeoRawDigest(t *testing.T, ref string) string {
	t.Helper()
	return digestOf([]byte(mustRun(t, "", nil, "skopeo", "inspect", "--raw", ref)))
}

func (e *env) testGoMultiPlatform(t *testing.T) {
	dir := e.newProject(t, "service", "go", "multi", e.registry+"/e2e")
	res := e.skiffBuild(t, dir, cacheEnv(t), "--push", "--base", e.bases.Empty, "--platform", "linux/amd64,linux/arm64")
	if strings.Join(res[0].Platforms, ",") != "linux/amd64,linux/arm64" || res[0].BaseDigest == "" {
		t.Fatalf("result %+v", res[0])
	}
	ref := e.checkPushed(t, res[0], "e2e/multi")
	raw := mustRun(t, "", nil, "skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+ref)
	if !strings.Contains(raw, "application/vnd.oci.image.index.v1+json") || !strings.Contains(raw, `"architecture":"arm64"`) || !strings.Contains(raw, `"architecture":"amd64"`) {
		t.Fatalf("not an index of amd64 and arm64:\n%s", raw)
	}
	arm := mustRun(t, "", nil, "skopeo", "inspect", "--tls-verify=false", "--override-arch", "arm64", "docker://"+ref)
	if !strings.Contains(arm, `"Architecture": "arm64"`) {
		t.Fatalf("the arm64 image says:\n%s", arm)
	}
	port := porttest.Port(t)
	runImage(t, ref, port)
	if code, body := get(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", port)); code != http.StatusOK {
		t.Fatalf("GET /healthz answered %d %q", code, body)
	}
}

func (e *env) testReproducible(t *testing.T) {
	src := e.newProject(t, "function", "go", "repro", e.registry+"/e2e")
	gitEnv := []string{"GIT_AUTHOR_NAME=e2e", "GIT_AUTHOR_EMAIL=e2e@skiff.invalid", "GIT_COMMITTER_NAME=e2e",
		"GIT_COMMITTER_EMAIL=e2e@skiff.invalid", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1"}
	mustRun(t, src, gitEnv, "git", "init", "-q")
	mustRun(t, src, gitEnv, "git", "add", "-A")
	mustRun(t, src, gitEnv, "git", "commit", "-q", "-m", "first")
	// Two checkouts of one upstream, in different folders.
	upstream := filepath.Join(t.TempDir(), "upstream.git")
	mustRun(t, "", gitEnv, "git", "clone", "-q", "--bare", src, upstream)
	dir := filepath.Join(t.TempDir(), "a", "checkout")
	other := filepath.Join(t.TempDir(), "b", "elsewhere")
	mustRun(t, "", gitEnv, "git", "clone", "-q", upstream, dir)
	mustRun(t, "", gitEnv, "git", "clone", "-q", upstream, other)

	first := e.skiffBuild(t, dir, cacheEnv(t), "--push", "--platform", "linux/amd64,linux/arm64")
	again := e.skiffBuild(t, dir, cacheEnv(t), "--push", "--no-cache", "--platform", "linux/amd64,linux/arm64")
	clone := e.skiffBuild(t, other, cacheEnv(t), "--dest", "oci:"+filepath.Join(t.TempDir(), "out"), "--platform", "linux/amd64,linux/arm64")
	if first[0].Digest != again[0].Digest || first[0].Digest != clone[0].Digest {
		t.Fatalf("digests differ: first %s, rebuilt %s, other checkout %s", first[0].Digest, again[0].Digest, clone[0].Digest)
	}
	// The layout's reference is one skopeo reads as it is printed.
	if !strings.HasPrefix(clone[0].Reference, "oci:") || strings.Contains(clone[0].Reference, "@") {
		t.Fatalf("layout reference %s, want oci:DIR:NAME:TAG", clone[0].Reference)
	}
	if got := skopeoRawDigest(t, clone[0].Reference); got != clone[0].Digest {
		t.Fatalf("skopeo reads %s as %s, skiff reported %s", clone[0].Reference, got, clone[0].Digest)
	}
	if again[0].Uploaded {
		t.Error("the identical rebuild uploaded again")
	}
	rev := strings.TrimSpace(mustRun(t, dir, nil, "git", "rev-parse", "HEAD"))
	cfg := mustRun(t, "", nil, "skopeo", "inspect", "--tls-verify=false", "--config", "docker://"+e.registry+"/e2e/repro:latest")
	if !strings.Contains(cfg, rev) {
		t.Errorf("the image is not labelled with revision %s:\n%s", rev, cfg)
	}
}

// testRuntime builds a Node.js or TypeScript function on base, runs it and
// calls it.
func (e *env) testRuntime(t *testing.T, lang, base string, extraEnv []string) result {
	name := lang + "-fn"
	dir := e.newProject(t, "function", lang, name, e.registry+"/e2e")
	res := e.skiffBuild(t, dir, append(cacheEnv(t), extraEnv...), "--push", "--base", base)
	if res[0].Status != "built" || res[0].Base != base {
		t.Fatalf("result %+v", res[0])
	}
	ref := e.checkPushed(t, res[0], "e2e/"+name)
	port := porttest.Port(t)
	runImage(t, ref, port)
	code, body := get(t, fmt.Sprintf("http://127.0.0.1:%d/?name=e2e", port))
	if code != http.StatusOK || !strings.Contains(body, "Hello, e2e!") {
		t.Fatalf("GET answered %d %q", code, body)
	}
	return res[0]
}

func (e *env) testPython(t *testing.T) {
	// A dependency from a local wheel: PyPI is unreachable.
	wheels := t.TempDir()
	writeWheel(t, filepath.Join(wheels, "greetlib-1.0-py3-none-any.whl"))
	dir := e.newProject(t, "function", "python", "py", e.registry+"/e2e")
	fn := filepath.Join(dir, "py")
	must(t, os.WriteFile(filepath.Join(fn, "requirements.txt"), []byte("greetlib==1.0\n"), 0o644))
	main, err := os.ReadFile(filepath.Join(fn, "main.py"))
	must(t, err)
	// The function fails to start when the dependency is missing.
	main = []byte(strings.Replace(string(main), "\nimport ", "\nimport greetlib  # e2e: installed from requirements.txt\nimport ", 1))
	must(t, os.WriteFile(filepath.Join(fn, "main.py"), main, 0o644))

	res := e.skiffBuild(t, dir, append(cacheEnv(t), "PIP_NO_INDEX=1", "PIP_FIND_LINKS="+wheels), "--push", "--base", e.bases.Python)
	ref := e.checkPushed(t, res[0], "e2e/py")
	port := porttest.Port(t)
	runImage(t, ref, port)
	code, body := get(t, fmt.Sprintf("http://127.0.0.1:%d/?name=e2e", port))
	if code != http.StatusOK || !strings.Contains(body, "Hello, e2e!") {
		t.Fatalf("GET answered %d %q", code, body)
	}

	sbomRef, err := name.ParseReference(res[0].SBOM, name.Insecure)
	must(t, err)
	img, err := remote.Image(sbomRef)
	must(t, err)
	layers, err := img.Layers()
	must(t, err)
	rc, err := layers[0].Uncompressed()
	must(t, err)
	defer rc.Close()
	var doc strings.Builder
	_, _ = fmt.Fprint(&doc, mustReadAll(t, rc))
	if !strings.Contains(doc.String(), `"spdxVersion": "SPDX-2.3"`) || !strings.Contains(doc.String(), "pkg:pypi/greetlib@1.0") {
		t.Fatalf("the SBOM does not list greetlib:\n%s", doc.String())
	}

	t.Run("reproducible-local-wheel", func(t *testing.T) {
		// A wheel named by path in requirements.txt: pip records its
		// absolute file:// URL, which must not reach the image.
		var digests []string
		for i := 0; i < 2; i++ {
			dir := e.newProject(t, "function", "python", "py", e.registry+"/e2e")
			fn := filepath.Join(dir, "py")
			must(t, os.MkdirAll(filepath.Join(fn, "wheels"), 0o755))
			writeWheel(t, filepath.Join(fn, "wheels", "greetlib-1.0-py3-none-any.whl"))
			must(t, os.WriteFile(filepath.Join(fn, "requirements.txt"), []byte("./wheels/greetlib-1.0-py3-none-any.whl\n"), 0o644))
			out := filepath.Join(t.TempDir(), "out")
			res := e.skiffBuild(t, dir, append(cacheEnv(t), "PIP_NO_INDEX=1"), "--dest", "oci:"+out, "--base", e.bases.Python)
			if got := skopeoRawDigest(t, res[0].Reference); got != res[0].Digest {
				t.Fatalf("skopeo reads %s as %s, skiff reported %s", res[0].Reference, got, res[0].Digest)
			}
			digests = append(digests, res[0].Digest)
		}
		if digests[0] != digests[1] {
			t.Fatalf("the same Python sources in two folders give %s and %s", digests[0], digests[1])
		}
	})
}

// writeWheel writes a minimal pure-Python wheel, the same bytes every time.
func writeWheel(t *testing.T, file string) {
	f, err := os.Create(file)
	must(t, err)
	zw := zip.NewWriter(f)
	for _, e := range [][2]string{
		{"greetlib/__init__.py", "GREETING = 'Hello'\n"},
		{"greetlib-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: greetlib\nVersion: 1.0\n"},
		{"greetlib-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: e2e\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
		{"greetlib-1.0.dist-info/RECORD", ""},
	} {
		n, data := e[0], e[1]
		w, err := zw.Create(n)
		must(t, err)
		_, err = w.Write([]byte(data))
		must(t, err)
	}
	must(t, zw.Close())
	must(t, f.Close())
}

func (e *env) testBadInputs(t *testing.T) {
	dir := e.newProject(t, "function", "go", "bad", e.registry+"/e2e")
	cache := cacheEnv(t)
	good := e.skiffBuild(t, dir, cache, "--push")[0]
	ref := e.registry + "/e2e/bad:latest"
	tagUnchanged := func(t *testing.T) {
		t.Helper()
		if got := skopeoDigest(t, ref); got != good.Digest {
			t.Fatalf("the failed build moved %s to %s (was %s)", ref, got, good.Digest)
		}
	}
	fails := func(t *testing.T, dir string, env []string, wantErr string, args ...string) {
		t.Helper()
		_, errOut, code := run(t, dir, env, e.skiff, append([]string{"build"}, args...)...)
		if code != 1 || !strings.Contains(errOut, wantErr) {
			t.Fatalf("skiff build %s: exit %d, stderr:\n%s\nwant exit 1 and %q", strings.Join(args, " "), code, errOut, wantErr)
		}
	}
	mainGo := filepath.Join(dir, "bad", "main.go")
	src, err := os.ReadFile(mainGo)
	must(t, err)

	t.Run("does-not-compile", func(t *testing.T) {
		must(t, os.WriteFile(mainGo, append(src, []byte("\nfunc broken() { undefinedCall() }\n")...), 0o644))
		defer os.WriteFile(mainGo, src, 0o644)
		fails(t, dir, cache, "go build of bad for linux/amd64 failed", "--push")
		fails(t, dir, cache, "undefined: undefinedCall", "--push")
		tagUnchanged(t)
	})
	t.Run("missing-base", func(t *testing.T) {
		fails(t, dir, cache, "not found in "+e.registry, "--push", "--base", e.registry+"/bases/nope:1", "--tag", "nobase")
		if skopeoDigest(t, e.registry+"/e2e/bad:nobase") != "" {
			t.Fatal("a tag was created by the failed build")
		}
	})
	t.Run("auth-refused", func(t *testing.T) {
		proxy := startProxy(t, e.registry, func(w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("WWW-Authenticate", `Basic realm="e2e"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return true
		})
		p2 := e.newProject(t, "function", "go", "bad", proxy+"/e2e")
		fails(t, p2, cache, "docker login "+proxy, "--push")
		tagUnchanged(t)
	})
	t.Run("500-mid-push", func(t *testing.T) {
		var blobs, manifests atomic.Int32
		proxy := startProxy(t, e.registry, func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") {
				blobs.Add(1)
			}
			if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
				manifests.Add(1)
				http.Error(w, "injected failure", http.StatusInternalServerError)
				return true
			}
			return false
		})
		p2 := e.newProject(t, "function", "go", "bad", proxy+"/e2e")
		// Change the sources so there is something new to push.
		m := filepath.Join(p2, "bad", "main.go")
		s, err := os.ReadFile(m)
		must(t, err)
		must(t, os.WriteFile(m, append(s, []byte("\nvar _ = \"changed\"\n")...), 0o644))
		fails(t, p2, cache, "500 Internal Server Error", "--push")
		if blobs.Load() == 0 || manifests.Load() < 2 {
			t.Errorf("the failure was not mid-push: %d blob uploads, %d manifest puts (retried)", blobs.Load(), manifests.Load())
		}
		tagUnchanged(t)
	})
	t.Run("read-only-dest", func(t *testing.T) {
		ro := filepath.Join(t.TempDir(), "ro")
		must(t, os.MkdirAll(ro, 0o755))
		if _, errOut, code := run(t, "", nil, "mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", ro); code != 0 {
			t.Skipf("cannot mount a read-only folder here: %s", errOut)
		}
		defer run(t, "", nil, "umount", ro)
		fails(t, dir, cache, "read-only file system; choose a writable folder", "--dest", "oci:"+filepath.Join(ro, "out"))
	})
}

// testConcurrentStore is four `skiff build WORKLOAD --no-cache` processes
// at once on one project and one cache folder, ten rounds: every build
// succeeds, the store stays one valid index that skopeo reads, and a later
// build reuses what they stored.
func (e *env) testConcurrentStore(t *testing.T) {
	dir := e.newProject(t, "function", "go", "w0", "")
	names := []string{"w0", "w1", "w2", "w3"}
	for _, n := range names[1:] {
		mustRun(t, dir, nil, e.skiff, "add", n, "--kind", "function", "--lang", "go", "--non-interactive")
	}
	cache := cacheEnv(t)
	cacheDir := strings.TrimPrefix(cache[0], "SKIFF_CACHE_DIR=")
	const rounds = 10
	failed := 0
	for r := range rounds {
		type outcome struct {
			name, stderr string
			code         int
		}
		done := make(chan outcome, len(names))
		for _, n := range names {
			go func() {
				_, errOut, code := run(t, dir, cache, e.skiff, "build", n, "--no-cache", "--sbom", "none")
				done <- outcome{n, errOut, code}
			}()
		}
		for range names {
			o := <-done
			if o.code != 0 {
				failed++
				t.Errorf("round %d: skiff build %s exited %d:\n%s", r, o.name, o.code, o.stderr)
			}
		}
	}
	t.Logf("%d of %d concurrent builds succeeded", len(names)*rounds-failed, len(names)*rounds)
	data, err := os.ReadFile(filepath.Join(cacheDir, "oci", "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var index struct {
		Manifests []json.RawMessage `json:"manifests"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&index); err != nil || dec.More() {
		t.Fatalf("index.json is not one JSON document (%v):\n%s", err, data)
	}
	for _, n := range names {
		ref := "oci:" + filepath.Join(cacheDir, "oci") + ":proj/" + n + ":latest"
		if d := skopeoRawDigest(t, ref); d == "" {
			t.Errorf("skopeo cannot read %s", ref)
		}
	}
	res := e.skiffBuild(t, dir, cache, "--sbom", "none")
	for _, r := range res {
		if r.Status != "reused" {
			t.Errorf("after the concurrent builds, %s was %s, want reused", r.Workload, r.Status)
		}
	}
}
