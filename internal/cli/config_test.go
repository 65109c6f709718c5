package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffdev/skiff/internal/project"
)

// TestConfigLive: config list says whether a workload is live, and
// set --apply says the pods were not restarted only when what is deployed
// is live.
func TestConfigLive(t *testing.T) {
	f, dir, errOut := testFactoryBuffers(t, false)
	write := func(manifest string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, project.FileName), []byte(manifest), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	live := strings.Replace(clusterManifest, "    config: {GREETING: hello}\n", "    config: {GREETING: hello}\n    liveConfig: true\n", 1)
	if live == clusterManifest {
		t.Fatal("the manifest has no config line to add liveConfig after")
	}

	write(clusterManifest)
	_, _, stderr := runCLI(t, f, errOut, "config", "list")
	if !strings.Contains(stderr, "orders: a change restarts the pods") {
		t.Errorf("config list of a workload without liveConfig said:\n%s", stderr)
	}
	fc := newFakeCluster(t, f, readyDeployment("shop", 1))
	if code, _, stderr := runCLI(t, f, errOut, "deploy", "--image", ordersImage); code != 0 {
		t.Fatalf("deploy exited %d:\n%s", code, stderr)
	}

	// liveConfig in skiff.yaml, but the deployed release is not live yet.
	write(live)
	_, _, stderr = runCLI(t, f, errOut, "config", "list")
	if !strings.Contains(stderr, "orders: live config") {
		t.Errorf("config list of a live workload said:\n%s", stderr)
	}
	code, _, stderr := runCLI(t, f, errOut, "config", "set", "GREETING=hi", "--apply")
	if code != 0 || !strings.Contains(stderr, "liveConfig takes effect at the next `skiff deploy orders`") {
		t.Errorf("config set --apply before a live deploy: exit %d\n%s", code, stderr)
	}

	if code, _, stderr := runCLI(t, f, errOut, "deploy", "--image", ordersImage); code != 0 {
		t.Fatalf("deploy exited %d:\n%s", code, stderr)
	}
	code, _, stderr = runCLI(t, f, errOut, "config", "set", "GREETING=hey", "--apply")
	if code != 0 || !strings.Contains(stderr, "pods were not restarted") {
		t.Errorf("config set --apply of a live workload: exit %d\n%s", code, stderr)
	}
	rel, err := fc.releases.Last("shop-orders")
	if err != nil || rel.Config["liveConfig"] != true || rel.Config["config"].(map[string]any)["GREETING"] != "hey" {
		t.Errorf("the last release: %+v, %v", rel, err)
	}
}
