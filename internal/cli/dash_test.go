package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/tui"
)

func TestNewCmdDashFlags(t *testing.T) {
	f, _ := testFactory(t, true)
	var got *DashOptions
	cmd := NewCmdDash(f, func(_ context.Context, o *DashOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"orders", "payments", "--log-lines", "20000", "--timeout", "1m"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.Workloads, ",") != "orders,payments" || got.LogLines != 20000 || got.Timeout != time.Minute {
		t.Errorf("options = %+v", got)
	}
	cmd = NewCmdDash(f, func(_ context.Context, o *DashOptions) error { got = o; return nil })
	cmd.SetArgs(nil)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.LogLines != tui.DefaultLogLines || got.Timeout != DefaultTimeout {
		t.Errorf("defaults = %+v", got)
	}
	cmd = NewCmdDash(f, func(context.Context, *DashOptions) error { t.Error("ran with --log-lines 10"); return nil })
	cmd.SetArgs([]string{"--log-lines", "10"})
	if err := cmd.Execute(); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
		t.Errorf("--log-lines 10: err %v, want a usage error", err)
	}
}

func TestDashNeedsATerminal(t *testing.T) {
	f, _, errBuf := testFactoryBuffers(t, false)
	code := run(context.Background(), f, []string{"dash"})
	errOut := errBuf.String()
	if code != cmdutil.ExitFailure {
		t.Errorf("exit code %d, want %d", code, cmdutil.ExitFailure)
	}
	if !strings.Contains(errOut, "skiff dash needs a terminal; use `skiff status` and `skiff logs` in scripts") {
		t.Errorf("stderr = %q", errOut)
	}
	if out := f.IOStreams.Out.(*bytes.Buffer).String(); out != "" {
		t.Errorf("wrote to stdout without a terminal: %q", out)
	}
}

func TestDashUnreachableCluster(t *testing.T) {
	f, dir, errBuf := testFactoryBuffers(t, true)
	if err := os.WriteFile(filepath.Join(dir, project.FileName), []byte(buildManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	// Port 1 on loopback refuses connections.
	const kc = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`
	if err := os.WriteFile(kubeconfig, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code := run(context.Background(), f, []string{"dash", "--kubeconfig", kubeconfig})
	errOut := errBuf.String()
	if code != cmdutil.ExitFailure || !strings.Contains(errOut, "cannot reach the cluster at https://127.0.0.1:1") {
		t.Errorf("exit code %d, stderr %q; want 1 and the unreachable cluster named", code, errOut)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("took %s to give up", d)
	}
}

// dash opens its backend through the Factory on the session it opened,
// with the project's namespace and workloads and --timeout; when the
// backend cannot be opened, dash says why and closes the session.
func TestDashOpensItsBackendOnTheSession(t *testing.T) {
	f, errOut := clusterProject(t)
	f.IOStreams.SetTTY(true)
	fs := &fakeSession{}
	onFakeSession(f, fs)
	var got tui.ClusterConfig
	var on engine.Session
	f.Dashboard = func(s engine.Session, cfg tui.ClusterConfig) (tui.Cluster, error) {
		on, got = s, cfg
		return nil, errors.New("this command needs a session on a real cluster")
	}
	code, _, stderr := runCLI(t, f, errOut, "dash", "--timeout", "90s")
	if code != cmdutil.ExitFailure || !strings.Contains(stderr, "this command needs a session on a real cluster") {
		t.Errorf("exit %d, stderr %q; want 1 and the backend's error", code, stderr)
	}
	if on != fs || !fs.closed {
		t.Errorf("backend opened on %v (want the session), session closed %v", on, fs.closed)
	}
	var names []string
	for _, w := range got.Workloads {
		names = append(names, w.Name)
	}
	if got.Namespace != "shop" || got.Timeout != 90*time.Second || strings.Join(names, ",") != "orders" || got.Activity == nil {
		t.Errorf("backend config = %+v", got)
	}
}
