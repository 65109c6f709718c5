//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestBuildLogin signs in to a docker-registry that wants an account
// (htpasswd): a push without credentials fails and doctor says why; a
// wrong password is refused and stores nothing; the right one is stored
// in the docker config, doctor and the push then pass; logout removes it.
func TestBuildLogin(t *testing.T) {
	need(t, "docker-registry")
	hash, err := bcrypt.GenerateFromPassword([]byte("right-horse"), bcrypt.MinCost)
	must(t, err)
	addr := startRegistryAuth(t, "ci:"+string(hash)+"\n")
	work := t.TempDir()
	skiff := buildSkiff(t, work)
	docker := filepath.Join(work, "docker")
	env := []string{"DOCKER_CONFIG=" + docker, "SKIFF_CACHE_DIR=" + filepath.Join(work, "cache"),
		"SKIFF_CONFIG_DIR=" + filepath.Join(work, "config"), "KUBECONFIG=" + filepath.Join(work, "no-kubeconfig"), "NO_COLOR=1"}
	root := filepath.Join(work, "shop")
	mustRun(t, "", env, skiff, "init", root, "--kind", "function", "--lang", "go", "--name", "hello",
		"--registry", addr+"/e2e-login", "--non-interactive")

	doctorCheck := func(name string) (string, string) {
		t.Helper()
		out, errOut, _ := run(t, root, env, skiff, "doctor", "-o", "json")
		var rs []struct{ Check, Status, Detail string }
		if err := json.Unmarshal([]byte(out), &rs); err != nil {
			t.Fatalf("doctor -o json: %v\n%s\n%s", err, out, errOut)
		}
		for _, r := range rs {
			if r.Check == name {
				return r.Status, r.Detail
			}
		}
		t.Fatalf("doctor has no %s check: %s", name, out)
		return "", ""
	}
	registryCheck := func() (string, string) { return doctorCheck("registry " + addr) }

	if _, errOut, code := run(t, root, env, skiff, "build", "--push"); code != 1 || !strings.Contains(errOut, "401") && !strings.Contains(errOut, "unauthorized") {
		t.Errorf("push without credentials: exit %d\n%s", code, errOut)
	}
	if st, detail := registryCheck(); st != "fail" || !strings.Contains(detail, "wants credentials to push") {
		t.Errorf("doctor without credentials: %s %s", st, detail)
	}
	if st, detail := doctorCheck("pull access"); st != "fail" || !strings.Contains(detail, "pods need a pull secret") {
		t.Errorf("doctor's pull access without credentials: %s %s", st, detail)
	}

	login := func(password string) (string, int) {
		cmd := exec.Command(skiff, "login", addr, "-u", "ci", "--password-stdin")
		cmd.Dir, cmd.Env = root, append(os.Environ(), env...)
		cmd.Stdin = strings.NewReader(password + "\n")
		out, err := cmd.CombinedOutput()
		if err != nil && cmd.ProcessState == nil {
			t.Fatal(err)
		}
		return string(out), cmd.ProcessState.ExitCode()
	}
	out, code := login("wrong-horse")
	if code != 1 || !strings.Contains(out, "refused the username and password") || strings.Contains(out, "wrong-horse") {
		t.Errorf("login with a wrong password: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(docker, "config.json")); err == nil {
		t.Error("a refused login stored something")
	}
	out, code = login("right-horse")
	if code != 0 || !strings.Contains(out, "Signed in to "+addr+" as ci") || strings.Contains(out, "right-horse") {
		t.Fatalf("login: exit %d\n%s", code, out)
	}
	cfg, err := os.ReadFile(filepath.Join(docker, "config.json"))
	must(t, err)
	if !strings.Contains(string(cfg), addr) {
		t.Errorf("config.json after login: %s", cfg)
	}
	if st, detail := registryCheck(); st != "ok" || !strings.Contains(detail, filepath.Join(docker, "config.json")) {
		t.Errorf("doctor after login: %s %s", st, detail)
	}
	if st, detail := doctorCheck("pull access"); st != "ok" || !strings.Contains(detail, "deploy keeps a pull secret") {
		t.Errorf("doctor's pull access after login: %s %s", st, detail)
	}
	if _, errOut, code := run(t, root, env, skiff, "build", "--push"); code != 0 {
		t.Errorf("push after login: exit %d\n%s", code, errOut)
	}

	mustRun(t, root, env, skiff, "logout", addr)
	cfg, err = os.ReadFile(filepath.Join(docker, "config.json"))
	must(t, err)
	if strings.Contains(string(cfg), addr) {
		t.Errorf("config.json after logout: %s", cfg)
	}
	if st, _ := registryCheck(); st != "fail" {
		t.Errorf("doctor after logout: %s", st)
	}
}
