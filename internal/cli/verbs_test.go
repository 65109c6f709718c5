package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/project"
)

// fakeSession is an engine.Session that records what a verb asks of it; a
// method it does not define panics (the verb asked for something the test
// did not expect).
type fakeSession struct {
	engine.Session
	cfg    engine.SessionConfig
	calls  []string
	closed bool

	statuses [][]*engine.Status // one answer per Statuses call; the last repeats
	revs     []engine.Revision
	deleted  []string
	delOpts  engine.DeleteOptions
	rollback struct {
		workload string
		revision int
		timeout  time.Duration
	}
	plan struct {
		given map[string]string
		reuse bool
	}
	deployOpts engine.DeployOptions
	deployErr  error
	secrets    map[string][]byte
	// stats answers Stats, one answer per call (the last repeats).
	stats     [][]engine.WorkloadStats
	statsErr  error
	statsOpts []engine.StatsOptions
}

// onFakeSession makes f's sessions fs.
func onFakeSession(f *cmdutil.Factory, fs *fakeSession) {
	f.Session = func(_ context.Context, cfg engine.SessionConfig) (engine.Session, error) {
		fs.cfg = cfg
		return fs, nil
	}
}

func (s *fakeSession) Close() { s.closed = true }

func (s *fakeSession) Preflight(context.Context, []project.Workload) error {
	s.calls = append(s.calls, "preflight")
	return nil
}

func (s *fakeSession) Plan(_ context.Context, ws []project.Workload, given map[string]string, reuse bool) (map[string]string, []project.Workload, error) {
	s.calls = append(s.calls, "plan")
	s.plan.given, s.plan.reuse = given, reuse
	images := map[string]string{}
	for _, w := range ws {
		images[w.Name] = ordersImage
	}
	return images, nil, nil
}

func (s *fakeSession) EnsureNamespace(context.Context) error {
	s.calls = append(s.calls, "namespace")
	return nil
}

func (s *fakeSession) EnsurePullSecret(context.Context, []project.Workload, engine.PullOptions) (string, error) {
	s.calls = append(s.calls, "pull-secret")
	return "shop-pull", nil
}

func (s *fakeSession) Deploy(_ context.Context, o engine.DeployOptions, ws []project.Workload, images map[string]string) ([]engine.Deployment, error) {
	s.calls = append(s.calls, "deploy")
	s.deployOpts = o
	if s.deployErr != nil {
		return nil, s.deployErr
	}
	var out []engine.Deployment
	for _, w := range ws {
		out = append(out, engine.Deployment{Workload: w.Name, Release: "shop-" + w.Name, Namespace: "shop", Revision: 4, Image: images[w.Name], Ready: "1/1"})
	}
	return out, nil
}

func (s *fakeSession) Statuses(context.Context, []project.Workload) ([]*engine.Status, error) {
	s.calls = append(s.calls, "statuses")
	st := s.statuses[0]
	if len(s.statuses) > 1 {
		s.statuses = s.statuses[1:]
	}
	return st, nil
}

func (s *fakeSession) History(_ context.Context, workload string) ([]engine.Revision, error) {
	s.calls = append(s.calls, "history "+workload)
	return s.revs, nil
}

func (s *fakeSession) Rollback(_ context.Context, workload string, revision int, timeout time.Duration) (int, error) {
	s.rollback.workload, s.rollback.revision, s.rollback.timeout = workload, revision, timeout
	return revision, nil
}

func (s *fakeSession) Delete(_ context.Context, o engine.DeleteOptions, workloads ...string) error {
	s.delOpts, s.deleted = o, workloads
	return nil
}

// Flags are parsed into the options, the run func replaced: no project,
// no cluster.
func TestClusterVerbsParseTheirFlags(t *testing.T) {
	f, _ := testFactory(t, false)
	var status *StatusOptions
	cmd := NewCmdStatus(f, func(_ context.Context, o *StatusOptions) error { status = o; return nil })
	cmd.SetArgs([]string{"orders", "--wait", "--timeout", "90s"})
	if err := cmd.Execute(); err != nil || status == nil {
		t.Fatalf("status: %v", err)
	}
	if !slices.Equal(status.Workloads, []string{"orders"}) || !status.Wait || status.Timeout != 90*time.Second {
		t.Errorf("status options %+v", status)
	}

	var rb *RollbackOptions
	cmd = NewCmdRollback(f, func(_ context.Context, o *RollbackOptions) error { rb = o; return nil })
	cmd.SetArgs([]string{"orders", "3"})
	if err := cmd.Execute(); err != nil || rb.Workload != "orders" || rb.Revision != 3 || rb.Timeout != DefaultTimeout {
		t.Errorf("rollback: %v, %+v", err, rb)
	}

	var del *DeleteOptions
	cmd = NewCmdDelete(f, func(_ context.Context, o *DeleteOptions) error { del = o; return nil })
	cmd.SetArgs([]string{"--all", "--keep-secrets"})
	if err := cmd.Execute(); err != nil || !del.All || !del.KeepSecrets || len(del.Workloads) != 0 {
		t.Errorf("delete: %v, %+v", err, del)
	}

	var dep *DeployOptions
	cmd = NewCmdDeploy(f, func(_ context.Context, o *DeployOptions) error { dep = o; return nil })
	cmd.SetArgs([]string{"orders", "--no-build", "--set", "replicas=3", "--image", "orders=" + ordersImage})
	if err := cmd.Execute(); err != nil || !dep.NoBuild || !slices.Equal(dep.Values.Set, []string{"replicas=3"}) || len(dep.Images) != 1 {
		t.Errorf("deploy: %v, %+v", err, dep)
	}

	// What the flags get wrong never reaches the run func.
	ran := false
	for _, tc := range []struct {
		cmd  *cobra.Command
		args []string
	}{
		{NewCmdStatus(f, func(context.Context, *StatusOptions) error { ran = true; return nil }), []string{"--timeout", "0s"}},
		{NewCmdRollback(f, func(context.Context, *RollbackOptions) error { ran = true; return nil }), []string{"orders", "x"}},
		{NewCmdDelete(f, func(context.Context, *DeleteOptions) error { ran = true; return nil }), nil},
		{NewCmdDelete(f, func(context.Context, *DeleteOptions) error { ran = true; return nil }), []string{"orders", "--all"}},
	} {
		tc.cmd.SetArgs(tc.args)
		tc.cmd.SetOut(io.Discard)
		tc.cmd.SetErr(io.Discard)
		if err := tc.cmd.Execute(); cmdutil.ExitCode(err) != cmdutil.ExitUsage || ran {
			t.Errorf("%s %v: exit %d, ran %v", tc.cmd.Name(), tc.args, cmdutil.ExitCode(err), ran)
		}
	}
}

// status --wait asks until every workload is healthy; without --wait an
// unhealthy workload is exit 1, its problems on stderr.
func TestStatusRunOnAFakeSession(t *testing.T) {
	f, errOut := clusterProject(t)
	progressing := &engine.Status{Workload: "orders", Kind: "service", State: engine.StateProgressing, Ready: 0, Desired: 1,
		Problems: []engine.PodProblem{{Pod: "orders-1", Reason: "ImagePullBackOff", Image: "reg/orders:x"}}}
	ready := &engine.Status{Workload: "orders", Kind: "service", State: engine.StateReady, Ready: 1, Desired: 1, Revision: 2}
	fs := &fakeSession{statuses: [][]*engine.Status{{progressing}, {progressing}, {ready}}}
	onFakeSession(f, fs)
	err := statusRun(context.Background(), &StatusOptions{Factory: f, Wait: true, Timeout: time.Minute, Poll: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(slices.DeleteFunc(slices.Clone(fs.calls), func(c string) bool { return c != "statuses" })); n != 3 || !fs.closed {
		t.Errorf("asked %d times (want 3), closed %v", n, fs.closed)
	}
	if out := f.IOStreams.Out.(*bytes.Buffer).String(); !strings.Contains(out, "orders") || !strings.Contains(out, "Ready") {
		t.Errorf("table:\n%s", out)
	}

	f.IOStreams.Out.(*bytes.Buffer).Reset()
	errOut.Reset()
	fs.statuses = [][]*engine.Status{{progressing}}
	err = statusRun(context.Background(), &StatusOptions{Factory: f, Timeout: time.Minute})
	if cmdutil.ExitCode(err) != cmdutil.ExitFailure || !cmdutil.Quiet(err) {
		t.Errorf("unhealthy: %v (exit %d)", err, cmdutil.ExitCode(err))
	}
	if !strings.Contains(errOut.String(), "orders: pod orders-1: ImagePullBackOff for image reg/orders:x") {
		t.Errorf("stderr:\n%s", errOut.String())
	}
}

// deploy checks before it changes anything, then makes the namespace and
// pull Secret, then deploys with the user's values and the pull Secret;
// the environment decides the namespace and the kubeconfig context.
func TestDeployRunOnAFakeSession(t *testing.T) {
	f, errOut := clusterProject(t)
	fs := &fakeSession{}
	onFakeSession(f, fs)
	code, out, stderr := runCLI(t, f, errOut, "deploy", "--no-build", "--set", "replicas=3", "--env", "prod", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if want := []string{"preflight", "plan", "namespace", "pull-secret", "deploy"}; !slices.Equal(fs.calls, want) {
		t.Errorf("calls %v, want %v", fs.calls, want)
	}
	if !fs.plan.reuse || fs.deployOpts.PullSecret != "shop-pull" || fs.deployOpts.Overrides["replicas"] != int64(3) || fs.deployOpts.Timeout != DefaultTimeout {
		t.Errorf("plan %+v, deploy %+v", fs.plan, fs.deployOpts)
	}
	if fs.cfg.KubeContext != "prod-cluster" || fs.cfg.Project.Namespace != "shop-prod" || !fs.closed {
		t.Errorf("session of %q in %s, closed %v", fs.cfg.KubeContext, fs.cfg.Project.Namespace, fs.closed)
	}
	var got []engine.Deployment
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 || got[0].Revision != 4 {
		t.Errorf("printed %s (%v)", out, err)
	}

	// A failed deploy is the command's error, exit 1.
	fs.calls, fs.deployErr = nil, errors.New("orders did not become ready")
	if code, _, stderr := runCLI(t, f, errOut, "deploy", "--no-build"); code != cmdutil.ExitFailure || !strings.Contains(stderr, "orders did not become ready") {
		t.Errorf("exit %d:\n%s", code, stderr)
	}
}

func TestHistoryRollbackDeleteOnAFakeSession(t *testing.T) {
	f, errOut := clusterProject(t)
	at := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	fs := &fakeSession{revs: []engine.Revision{{Revision: 1, Updated: at, Status: "superseded", Image: ordersImage}, {Revision: 2, Updated: at, Status: "deployed"}}}
	onFakeSession(f, fs)

	code, out, _ := runCLI(t, f, errOut, "history", "orders", "-o", "json")
	var revs []engine.Revision
	if err := json.Unmarshal([]byte(out), &revs); code != 0 || err != nil || len(revs) != 2 || revs[1].Status != "deployed" {
		t.Errorf("history: exit %d, %s", code, out)
	}
	if code, _, stderr := runCLI(t, f, errOut, "rollback", "orders", "1", "--timeout", "2m"); code != 0 || fs.rollback.workload != "orders" ||
		fs.rollback.revision != 1 || fs.rollback.timeout != 2*time.Minute {
		t.Errorf("rollback: exit %d, %+v\n%s", code, fs.rollback, stderr)
	}
	if code, _, stderr := runCLI(t, f, errOut, "delete", "--all", "--keep-secrets"); code != 0 || !slices.Equal(fs.deleted, []string{"orders"}) ||
		!fs.delOpts.All || !fs.delOpts.KeepSecrets {
		t.Errorf("delete: exit %d, %v %+v\n%s", code, fs.deleted, fs.delOpts, stderr)
	}
}

func (s *fakeSession) SetSecrets(_ context.Context, workload string, values map[string][]byte) (string, error) {
	s.calls = append(s.calls, "set-secrets "+workload)
	s.secrets = values
	return workload + "-secrets", nil
}

func (s *fakeSession) Restart(_ context.Context, workload string) (bool, error) {
	s.calls = append(s.calls, "restart "+workload)
	return true, nil
}

func TestConfigSecretEventsParseTheirFlags(t *testing.T) {
	f, _ := clusterProject(t)
	root := func(args ...string) (got any, err error) {
		cmd := NewCmdRoot(f)
		cmd.SetArgs(args)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		for _, c := range cmd.Commands() {
			switch c.Name() {
			case "config":
				cmd.RemoveCommand(c)
				cmd.AddCommand(NewCmdConfig(f, func(_ context.Context, o *ConfigOptions) error { got = o; return nil }))
			case "secret":
				cmd.RemoveCommand(c)
				cmd.AddCommand(NewCmdSecret(f, func(_ context.Context, o *SecretOptions) error { got = o; return nil }))
			case "events":
				cmd.RemoveCommand(c)
				cmd.AddCommand(NewCmdEvents(f, func(_ context.Context, o *EventsOptions) error { got = o; return nil }))
			}
		}
		return got, cmd.Execute()
	}
	got, err := root("config", "set", "orders", "A=1", "B=two", "--apply", "--timeout", "1m")
	if c, ok := got.(*ConfigOptions); err != nil || !ok || c.Verb != "set" || c.Workload != "orders" || c.Set["B"] != "two" || !c.Apply || c.Timeout != time.Minute {
		t.Errorf("config set: %v %+v", err, got)
	}
	got, err = root("config", "get", "orders", "GREETING")
	if c, ok := got.(*ConfigOptions); err != nil || !ok || c.Verb != "get" || c.Key != "GREETING" || c.Workload != "orders" {
		t.Errorf("config get: %v %+v", err, got)
	}
	f.IOStreams.In.(*bytes.Buffer).WriteString("s3cret\n")
	got, err = root("secret", "set", "orders", "API_TOKEN", "--no-restart")
	if s, ok := got.(*SecretOptions); err != nil || !ok || s.Verb != "set" || string(s.Value) != "s3cret" || !slices.Equal(s.Keys, []string{"API_TOKEN"}) || !s.NoRestart {
		t.Errorf("secret set: %v %+v", err, got)
	}
	got, err = root("events", "publish", "com.example.placed", "--data", `{"n":1}`, "--id", "e-1")
	if e, ok := got.(*EventsOptions); err != nil || !ok || e.Verb != "publish" || e.Type != "com.example.placed" || string(e.Data) != `{"n":1}` || e.ID != "e-1" || e.Source != "/skiff/cli" {
		t.Errorf("events publish: %v %+v", err, got)
	}
	got, err = root("events", "dlq", "replay", "--seq", "3", "--seq", "5")
	if e, ok := got.(*EventsOptions); err != nil || !ok || e.Verb != "dlq replay" || !slices.Equal(e.Seqs, []uint{3, 5}) || e.All {
		t.Errorf("events dlq replay: %v %+v", err, got)
	}
	// Bad input stops at the flags.
	for _, args := range [][]string{{"events", "dlq", "replay"}, {"events", "publish", "Bad Type"}, {"config", "set", "orders", "=x"}, {"secret", "set", "orders", "bad key"}} {
		if got, err := root(args...); got != nil || cmdutil.ExitCode(err) != cmdutil.ExitUsage {
			t.Errorf("%v: ran with %+v, exit %d", args, got, cmdutil.ExitCode(err))
		}
	}
}

// secret set stores the value through the session and restarts the pods;
// the value is never printed.
func TestSecretRunOnAFakeSession(t *testing.T) {
	f, errOut := clusterProject(t)
	fs := &fakeSession{}
	onFakeSession(f, fs)
	err := secretRun(context.Background(), &SecretOptions{Factory: f, Verb: "set", Workload: "orders", Keys: []string{"API_TOKEN"}, Value: []byte("s3cret")})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fs.calls, []string{"set-secrets orders", "restart orders"}) || string(fs.secrets["API_TOKEN"]) != "s3cret" || !fs.closed {
		t.Errorf("calls %v, values %v", fs.calls, fs.secrets)
	}
	if out := errOut.String() + f.IOStreams.Out.(*bytes.Buffer).String(); strings.Contains(out, "s3cret") || !strings.Contains(out, "Set secret API_TOKEN for orders (Secret shop/orders-secrets)") {
		t.Errorf("output:\n%s", out)
	}
}

func TestLocalVerbsParseTheirFlags(t *testing.T) {
	f, _ := testFactory(t, false)
	exec := func(cmd *cobra.Command, args ...string) error {
		cmd.SetArgs(args)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		return cmd.Execute()
	}
	var cache *CacheOptions
	if err := exec(NewCmdCache(f, func(_ context.Context, o *CacheOptions) error { cache = o; return nil }), "prune", "--keep", "0"); err != nil ||
		cache.Verb != "prune" || cache.Keep != 0 {
		t.Errorf("cache prune: %v %+v", err, cache)
	}
	var run *RunOptions
	if err := exec(NewCmdRun(f, func(_ context.Context, o *RunOptions) error { run = o; return nil }), "orders", "--port", "9000"); err != nil ||
		run.Workload != "orders" || run.Port != 9000 {
		t.Errorf("run: %v %+v", err, run)
	}
	var logout *LogoutOptions
	if err := exec(NewCmdLogout(f, func(o *LogoutOptions) error { logout = o; return nil }), "registry.example.com"); err != nil || logout.Registry != "registry.example.com" {
		t.Errorf("logout: %v %+v", err, logout)
	}
	var tpl *TemplatesOptions
	if err := exec(NewCmdTemplates(f, func(_ context.Context, o *TemplatesOptions) error { tpl = o; return nil }), "add", "team", "./tpl", "--ref", "v1"); err != nil ||
		tpl.Verb != "add" || tpl.Name != "team" || tpl.URL != "./tpl" || tpl.Ref != "v1" {
		t.Errorf("templates add: %v %+v", err, tpl)
	}
	if err := exec(NewCmdTemplates(f, func(_ context.Context, o *TemplatesOptions) error { tpl = o; return nil }), "list", "--lang", "go"); err != nil ||
		tpl.Verb != "list" || tpl.Lang != "go" {
		t.Errorf("templates list: %v %+v", err, tpl)
	}
	ran := false
	if err := exec(NewCmdVersion(f, func(*VersionOptions) error { ran = true; return nil })); err != nil || !ran {
		t.Errorf("version: %v, ran %v", err, ran)
	}
	ran = false
	for _, c := range []struct {
		cmd  *cobra.Command
		args []string
	}{
		{NewCmdCache(f, func(context.Context, *CacheOptions) error { ran = true; return nil }), []string{"prune", "--keep", "-1"}},
		{NewCmdRun(f, func(context.Context, *RunOptions) error { ran = true; return nil }), []string{"--port", "70000"}},
		{NewCmdTemplates(f, func(context.Context, *TemplatesOptions) error { ran = true; return nil }), []string{"add", "Bad Name", "./x"}},
	} {
		if err := exec(c.cmd, c.args...); cmdutil.ExitCode(err) != cmdutil.ExitUsage || ran {
			t.Errorf("%v: exit %d, ran %v", c.args, cmdutil.ExitCode(err), ran)
		}
	}
}
