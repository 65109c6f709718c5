//go:build e2e

// Package e2e proves skiff with real components. The build tests: a CNCF
// distribution registry (Debian's docker-registry) on loopback, skopeo and
// umoci reading what skiff pushed, and runc running the images (as root:
// go test -tags e2e -run TestBuild ./testscripts/e2e/); TestSign has the
// cosign CLI verify what skiff signed. The others deploy to the test
// cluster and skip without it. docs/testing.md says how to run each.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/porttest"
)

// env is what every test shares: the skiff binary and a running registry.
type env struct {
	skiff    string
	registry string // host:port of the docker-registry
	bases    bases
}

func need(t *testing.T, bins ...string) {
	t.Helper()
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			t.Fatalf("%s is not installed: %v (apt-get install docker-registry skopeo umoci runc)", b, err)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("the e2e tests run images with runc and need root")
	}
}

// buildSkiff builds the real binary.
func buildSkiff(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "skiff")
	cmd := exec.Command("go", "build", "-o", bin, "../../cmd/skiff")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build skiff: %v\n%s", err, out)
	}
	return bin
}

// startRegistry runs docker-registry on a free loopback port.
func startRegistry(t *testing.T) string {
	t.Helper()
	return startRegistryAuth(t, "")
}

// startRegistryAuth starts docker-registry on a free loopback port; with
// htpasswd (bcrypt lines), it wants those accounts for everything.
func startRegistryAuth(t *testing.T, htpasswd string) string {
	t.Helper()
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", porttest.Port(t))
	auth := ""
	if htpasswd != "" {
		file := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(file, []byte(htpasswd), 0o600); err != nil {
			t.Fatal(err)
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: skiff-e2e\n    path: %s\n", file)
	}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
%s`, filepath.Join(dir, "data"), addr, auth)
	cfgFile := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command("docker-registry", "serve", cfgFile)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting docker-registry: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("docker-registry log:\n%s", tail(logs.String(), 4000))
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || (htpasswd != "" && resp.StatusCode == http.StatusUnauthorized) {
				return addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry did not answer on %s: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// startProxy serves a reverse proxy to target on a free loopback port;
// intercept, when it returns true, has answered the request itself.
func startProxy(t *testing.T, target string, intercept func(w http.ResponseWriter, r *http.Request) bool) string {
	t.Helper()
	u, _ := url.Parse("http://" + target)
	rp := httputil.NewSingleHostReverseProxy(u)
	return startHandler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if intercept != nil && intercept(w, r) {
			return
		}
		rp.ServeHTTP(w, r)
	}))
}

// startHandler serves h on a free loopback port and returns its address.
func startHandler(t *testing.T, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// result is one entry of `skiff build -o json`.
type result struct {
	Workload   string   `json:"workload"`
	Reference  string   `json:"reference"`
	Digest     string   `json:"digest"`
	Platforms  []string `json:"platforms"`
	Status     string   `json:"status"`
	Uploaded   bool     `json:"uploaded"`
	Base       string   `json:"base"`
	BaseDigest string   `json:"baseDigest"`
	SBOM       string   `json:"sbom"`
}

// run runs a program and returns its stdout, stderr and exit code.
func run(t *testing.T, dir string, extraEnv []string, name string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return stdout.String(), stderr.String(), code
}

// mustRun runs a program that must succeed.
func mustRun(t *testing.T, dir string, extraEnv []string, name string, args ...string) string {
	t.Helper()
	out, errOut, code := run(t, dir, extraEnv, name, args...)
	if code != 0 {
		t.Fatalf("%s %s: exit %d\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// skiffBuild runs `skiff build -o json ARGS` in dir and returns the results.
func (e *env) skiffBuild(t *testing.T, dir string, extraEnv []string, args ...string) []result {
	t.Helper()
	out := mustRun(t, dir, extraEnv, e.skiff, append([]string{"build", "-o", "json"}, args...)...)
	var res []result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("skiff build -o json printed %q: %v", out, err)
	}
	return res
}

// newProject scaffolds a project with one workload with `skiff init`.
func (e *env) newProject(t *testing.T, kind, lang, name, registry string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "proj")
	args := []string{"init", dir, "--kind", kind, "--lang", lang, "--name", name, "--non-interactive"}
	if registry != "" {
		args = append(args, "--registry", registry)
	}
	mustRun(t, "", nil, e.skiff, args...)
	return dir
}

// skopeoDigest returns the digest the registry has under ref, or "" when
// skopeo cannot read it.
func skopeoDigest(t *testing.T, ref string) string {
	t.Helper()
	out, _, code := run(t, "", nil, "skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+ref)
	if code != 0 {
		return ""
	}
	return digestOf([]byte(out))
}

func digestOf(manifest []byte) string {
	// skopeo prints the manifest exactly as stored; its sha256 is the digest.
	return "sha256:" + sha256Hex(manifest)
}

// runImage copies ref out of the registry with skopeo, unpacks it with
// umoci and runs it with runc, sharing the host's network, with PORT set.
// It returns a stop function.
func runImage(t *testing.T, ref string, port int) func() {
	t.Helper()
	dir := t.TempDir()
	layoutDir := filepath.Join(dir, "layout")
	bundle := filepath.Join(dir, "bundle")
	mustRun(t, "", nil, "skopeo", "copy", "--src-tls-verify=false", "docker://"+ref, "oci:"+layoutDir+":img")
	mustRun(t, "", nil, "umoci", "unpack", "--image", layoutDir+":img", bundle)

	cfgFile := filepath.Join(bundle, "config.json")
	data, err := os.ReadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	var spec map[string]any
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	proc := spec["process"].(map[string]any)
	proc["terminal"] = false
	envs, _ := proc["env"].([]any)
	proc["env"] = append(envs, fmt.Sprintf("PORT=%d", port))
	linux := spec["linux"].(map[string]any)
	var ns []any
	for _, n := range linux["namespaces"].([]any) {
		if n.(map[string]any)["type"] != "network" {
			ns = append(ns, n)
		}
	}
	linux["namespaces"] = ns
	data, _ = json.MarshalIndent(spec, "", "  ")
	if err := os.WriteFile(cfgFile, data, 0o644); err != nil {
		t.Fatal(err)
	}

	id := fmt.Sprintf("skiff-e2e-%d-%d", os.Getpid(), port)
	var logs bytes.Buffer
	cmd := exec.Command("runc", "run", "--bundle", bundle, id)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("runc run: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stop := func() {
		_ = exec.Command("runc", "kill", id, "KILL").Run()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
		_ = exec.Command("runc", "delete", "-f", id).Run()
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("container output:\n%s", tail(logs.String(), 4000))
		}
	})
	// Wait for the server to listen, failing early when the process exits.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return stop
		}
		select {
		case err := <-done:
			t.Fatalf("the container exited before listening on %d: %v\n%s", port, err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container does not listen on %d after 30s:\n%s", port, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// get sends GET url and returns the status and body.
func get(t *testing.T, u string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func mustReadAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// atOnce calls request(0) to request(n-1) all at the same time and
// reports each error it returns.
func atOnce(t *testing.T, n int, request func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- request(i)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
