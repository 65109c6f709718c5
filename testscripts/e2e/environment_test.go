//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDeployEnvironment deploys one project to an environment of its
// skiff.yaml on the real cluster: the environment's namespace, replicas
// and env reach the pods; status and deploy's summary name the
// environment; the top level is untouched; delete -e removes it.
func TestDeployEnvironment(t *testing.T) {
	c := needCluster(t)
	top := c.restrictedNamespace(t, "e2e-env-top")
	staging := c.restrictedNamespace(t, "e2e-env-staging")
	root := filepath.Join(t.TempDir(), "shop")
	c.mustSkiff(t, "", "init", root, "--kind", "function", "--lang", "go", "--name", "hello",
		"--registry", c.registry+"/e2e-env", "-n", top, "--non-interactive")
	manifest := filepath.Join(root, "skiff.yaml")
	data, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	env := "environments:\n  staging:\n    namespace: " + staging + "\n    workloads:\n      hello: {replicas: 2, env: {GREETING: Bonjour}}\n"
	if err := os.WriteFile(manifest, append(data, []byte(env)...), 0o644); err != nil {
		t.Fatal(err)
	}

	out := c.mustSkiff(t, root, "deploy", "-e", "staging", "--timeout", "3m", "-o", "json")
	var deployed []struct {
		Environment, Namespace, Ready string
		Revision                      int
	}
	if err := json.Unmarshal([]byte(out), &deployed); err != nil || len(deployed) != 1 {
		t.Fatalf("deploy -e staging -o json printed %q: %v", out, err)
	}
	if d := deployed[0]; d.Environment != "staging" || d.Namespace != staging || d.Ready != "2/2" || d.Revision != 1 {
		t.Fatalf("deploy -e staging summary %+v", d)
	}
	if body := c.call(t, staging, "shop-hello", "/?name=Ada", 8080); !strings.Contains(body, "Bonjour, Ada!") {
		t.Fatalf("staging answered %q", body)
	}
	out, errOut, code := c.skiffIn(t, root, "status", "-e", "staging", "-o", "json")
	var sts []struct{ Environment, State, Namespace string }
	if err := json.Unmarshal([]byte(out), &sts); err != nil || code != 0 || len(sts) != 1 ||
		sts[0].Environment != "staging" || sts[0].State != "Ready" || sts[0].Namespace != staging {
		t.Fatalf("status -e staging: exit %d, %s %s (%v)", code, out, errOut, err)
	}
	// The top level (its own namespace) has nothing deployed.
	if st := c.status(t, root)["hello"]; st.State != "NotDeployed" {
		t.Errorf("top-level status %+v, want NotDeployed", st)
	}
	c.mustSkiff(t, root, "delete", "-e", "staging", "hello")
	if st, _, _ := c.skiffIn(t, root, "status", "-e", "staging", "-o", "json"); !strings.Contains(st, `"state": "NotDeployed"`) {
		t.Errorf("status -e staging after delete: %s", st)
	}
}
