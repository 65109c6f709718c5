package devsync

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/devsync/devsynctest"
)

func TestApplyRefusesPathsOutsideTheFolder(t *testing.T) {
	for _, name := range []string{"../escape", "/etc/passwd", "a/../../b"} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		m, _ := json.Marshal(manifest{})
		_ = tw.WriteHeader(&tar.Header{Name: manifestName, Size: int64(len(m)), Mode: 0o644})
		_, _ = tw.Write(m)
		_ = tw.WriteHeader(&tar.Header{Name: "ok", Size: 2, Mode: 0o644})
		_, _ = tw.Write([]byte("ok"))
		_ = tw.WriteHeader(&tar.Header{Name: name, Size: 1, Mode: 0o644})
		_, _ = tw.Write([]byte("x"))
		_ = tw.Close()
		dir := t.TempDir()
		if _, err := Apply(dir, t.TempDir(), &buf); err == nil || !strings.Contains(err.Error(), "outside the app folder") {
			t.Errorf("%s: err = %v", name, err)
		}
		if got := devsynctest.Files(t, dir); len(got) != 0 {
			t.Errorf("%s: a refused patch left %v", name, got)
		}
	}
	if _, err := Apply(t.TempDir(), t.TempDir(), strings.NewReader("not a tar")); err == nil || !strings.Contains(err.Error(), "not a patch") {
		t.Errorf("garbage: err = %v", err)
	}

	// A folder of the app that is a link to elsewhere: nothing is written
	// or removed through it.
	dir, outside := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "keep"), []byte("k"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "lib")); err != nil {
		t.Fatal(err)
	}
	for _, files := range []map[string]string{{"lib/x": "x"}, {"lib/keep": ""}} {
		if _, err := Apply(dir, t.TempDir(), patchOf(t, "", "", files)); err == nil || !strings.Contains(err.Error(), "through the link") {
			t.Errorf("%v through a link: err = %v", files, err)
		}
	}
	if got := devsynctest.Files(t, outside); !maps.Equal(got, map[string]string{"keep": "k"}) {
		t.Errorf("the folder behind the link holds %v", got)
	}
}

// The pod's copy step may run again on the same volume: it starts over.
func TestCopyRunsAgain(t *testing.T) {
	from, to := t.TempDir(), t.TempDir()
	for n, c := range map[string]string{"fn": "v1", "lib/a.js": "a"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(from, n)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(from, n), []byte(c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("fn", filepath.Join(from, "link")); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := Copy(from, to); err != nil {
			t.Fatalf("copy %d: %v", i+1, err)
		}
		if i == 0 { // a sync wrote into the copy meanwhile
			if err := os.WriteFile(filepath.Join(to, "new"), []byte("n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got, want := devsynctest.Files(t, to), devsynctest.Files(t, from); !maps.Equal(got, want) {
		t.Errorf("after two copies: %v, want %v", got, want)
	}
}

// The supervised process is this test binary run as a tiny server (see
// TestMain): it answers /readyz with the content of the file "greeting"
// of its folder, or exits with the status written in "exit".
func TestMain(m *testing.M) {
	if dir := os.Getenv("DEVSYNC_TEST_SERVER"); dir != "" {
		serve(dir)
		return
	}
	os.Exit(m.Run())
}

func serve(dir string) {
	if code, err := os.ReadFile(filepath.Join(dir, "exit")); err == nil {
		os.Stderr.WriteString("boom: " + string(code) + "\n")
		os.Exit(3)
	}
	if _, err := os.Stat(filepath.Join(dir, "spawn")); err == nil {
		// A child that outlives this process and holds its output open.
		child := exec.Command("sleep", "1000")
		child.Stdout, child.Stderr = os.Stdout, os.Stderr
		_ = child.Start()
	}
	greeting, _ := os.ReadFile(filepath.Join(dir, "greeting"))
	ln, err := net.Listen("tcp", os.Getenv("DEVSYNC_TEST_ADDR"))
	if err != nil {
		os.Exit(4)
	}
	_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(greeting) }))
}

// patchOf is a patch from one version to another that writes files
// (name: content; "" removes).
func patchOf(t *testing.T, from, to string, files map[string]string) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	m := manifest{From: from, To: to}
	for n, c := range files {
		if c == "" {
			m.Remove = append(m.Remove, n)
		}
	}
	data, _ := json.Marshal(m)
	_ = tw.WriteHeader(&tar.Header{Name: manifestName, Size: int64(len(data)), Mode: 0o644})
	_, _ = tw.Write(data)
	for n, c := range files {
		if c != "" {
			_ = tw.WriteHeader(&tar.Header{Name: n, Size: int64(len(c)), Mode: 0o644})
			_, _ = tw.Write([]byte(c))
		}
	}
	_ = tw.Close()
	return &buf
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return b.String()
}

func TestSupervisorSyncsRestartsAndPutsBackAFailure(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	if err := os.WriteFile(filepath.Join(dir, "greeting"), []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("DEVSYNC_TEST_SERVER", dir)
	t.Setenv("DEVSYNC_TEST_ADDR", addr)
	state := filepath.Join(t.TempDir(), "version")
	s := &Supervisor{Command: []string{self}, Dir: dir, Backup: t.TempDir(), Ready: "http://" + addr + "/readyz",
		ReadyTimeout: 10 * time.Second, Version: "v1", State: state}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(ctx) }()
	admin := httptest.NewServer(s)
	defer admin.Close()
	sync := func(body *bytes.Buffer) (Result, int) {
		res, code, err := Push(context.Background(), http.DefaultClient, admin.URL, body.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		return res, code
	}

	// The first process starts; a sync waits until it is ready.
	if res, code := sync(patchOf(t, "v1", "v2", map[string]string{"greeting": "v2"})); code != http.StatusOK || res.Error != "" || res.Version != "v2" {
		t.Fatalf("sync v2: %d %+v", code, res)
	}
	if got := get(t, "http://"+addr+"/"); got != "v2" {
		t.Errorf("after the sync the process answers %q, want v2", got)
	}

	// A version that exits: the answer says why, the old one serves.
	res, code := sync(patchOf(t, "v2", "v3", map[string]string{"greeting": "v3", "exit": "1"}))
	if code != http.StatusUnprocessableEntity || res.ExitCode == nil || *res.ExitCode != 3 || !strings.Contains(res.Output, "boom") {
		t.Fatalf("sync of a crashing version: %d %+v", code, res)
	}
	if got := get(t, "http://"+addr+"/"); got != "v2" {
		t.Errorf("after a failed sync the process answers %q, want v2", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "exit")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the failed version's file stays: %v", err)
	}

	// A patch from another version than the pod's: 409, nothing changes.
	stale := patchOf(t, "v2", "v4", map[string]string{"greeting": "v4"})
	var other bytes.Buffer
	{
		tr := tar.NewReader(stale)
		tw := tar.NewWriter(&other)
		for first := true; ; first = false {
			h, err := tr.Next()
			if err != nil {
				break
			}
			data, _ := io.ReadAll(tr)
			if first {
				data = []byte(`{"from":"registry.test/fn@sha256:other","remove":[]}`)
				h.Size = int64(len(data))
			}
			_ = tw.WriteHeader(h)
			_, _ = tw.Write(data)
		}
		_ = tw.Close()
	}
	if res, code := sync(&other); code != http.StatusConflict || res.Version != "v2" {
		t.Errorf("a stale patch: %d %+v", code, res)
	}
	if got := get(t, "http://"+addr+"/"); got != "v2" {
		t.Errorf("after a stale patch the process answers %q, want v2", got)
	}

	// Not a patch: 400, nothing changes.
	if _, code := sync(bytes.NewBufferString("nope")); code != http.StatusBadRequest {
		t.Errorf("garbage: %d", code)
	}
	select {
	case err := <-runErr:
		t.Fatalf("Run ended during syncs: %v", err)
	default:
	}

	// A version whose process leaves a child behind that holds the output
	// open: the sync after it still stops it.
	if res, code := sync(patchOf(t, "v2", "v5", map[string]string{"greeting": "v5", "spawn": "1"})); code != http.StatusOK {
		t.Fatalf("sync v5: %d %+v", code, res)
	}
	if res, code := sync(patchOf(t, "v5", "v6", map[string]string{"greeting": "v6", "spawn": ""})); code != http.StatusOK {
		t.Fatalf("sync v6 after a version that spawned a child: %d %+v", code, res)
	}

	// Stopping: the process is told to stop, Run returns.
	cancel()
	if err := <-runErr; err != nil {
		t.Errorf("Run = %v", err)
	}
	if c := s.cur; c.cmd.ProcessState == nil {
		t.Error("the process still runs")
	}
	admin.Close()

	// The container starts again on the same volumes (a crash, a liveness
	// restart): the supervisor is told the image's version, but the
	// folder holds v6, and that is what it answers with.
	if data, err := os.ReadFile(state); err != nil || string(data) != "v6" {
		t.Fatalf("state = %q, %v", data, err)
	}
	again := &Supervisor{Command: []string{self}, Dir: dir, Backup: t.TempDir(), Ready: "http://" + addr + "/readyz",
		ReadyTimeout: 10 * time.Second, Version: "v1", State: state}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go func() { runErr <- again.Run(ctx) }()
	admin = httptest.NewServer(again)
	defer admin.Close()
	if res, code := sync(patchOf(t, "v1", "v7", map[string]string{"greeting": "v7"})); code != http.StatusConflict || res.Version != "v6" {
		t.Errorf("a patch from the image's version after a restart: %d %+v", code, res)
	}
	if res, code := sync(patchOf(t, "v6", "v7", map[string]string{"greeting": "v7"})); code != http.StatusOK {
		t.Errorf("a patch from what the folder holds after a restart: %d %+v", code, res)
	}
	cancel()
	<-runErr

	// A sync cut short leaves the folder at no version: every patch is
	// refused, and only a new pod helps.
	if err := os.WriteFile(state, []byte(stateDirty), 0o644); err != nil {
		t.Fatal(err)
	}
	cut := &Supervisor{Command: []string{self}, Dir: dir, Backup: t.TempDir(), Ready: "http://" + addr + "/readyz",
		ReadyTimeout: 10 * time.Second, Version: "v1", State: state}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go func() { runErr <- cut.Run(ctx) }()
	admin = httptest.NewServer(cut)
	defer admin.Close()
	if _, code := sync(patchOf(t, "v7", "v8", map[string]string{"greeting": "v8"})); code != http.StatusConflict {
		t.Errorf("a patch into a folder a cut sync left: %d", code)
	}
	cancel()
	<-runErr
}

func TestSupervisorEndsWithItsProcess(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "exit"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	t.Setenv("DEVSYNC_TEST_SERVER", dir)
	s := &Supervisor{Command: []string{self}, Dir: dir, Backup: t.TempDir(), Ready: "http://127.0.0.1:1/"}
	err := s.Run(context.Background())
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 3 {
		t.Errorf("Run = %v, want exit status 3", err)
	}
	s = &Supervisor{Command: []string{filepath.Join(dir, "missing")}}
	var pe *exec.Error
	if err := s.Run(context.Background()); err == nil || (!errors.As(err, &pe) && !strings.Contains(err.Error(), "starting")) {
		t.Errorf("Run of a missing program = %v", err)
	}
}
