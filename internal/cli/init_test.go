package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/factory"
	"github.com/skiffdev/skiff/internal/iostreams"
	"github.com/skiffdev/skiff/internal/prompt"
)

func testFactory(t *testing.T, tty bool) (*cmdutil.Factory, string) {
	t.Helper()
	f, dir, _ := testFactoryBuffers(t, tty)
	return f, dir
}

// testFactoryBuffers is testFactory, with the buffer behind stderr.
func testFactoryBuffers(t *testing.T, tty bool) (*cmdutil.Factory, string, *bytes.Buffer) {
	t.Helper()
	ios, _, _, errOut := iostreams.Test()
	ios.SetTTY(tty)
	dir := t.TempDir()
	env := map[string]string{"SKIFF_CONFIG_DIR": filepath.Join(dir, ".skiff"), "SKIFF_CACHE_DIR": filepath.Join(dir, ".cache")}
	f := factory.New(ios, func(k string) string { return env[k] })
	f.WorkDir = func() (string, error) { return dir, nil }
	return f, dir, errOut
}

func TestNewCmdInitFlags(t *testing.T) {
	f, _ := testFactory(t, false)
	var got *InitOptions
	cmd := NewCmdInit(f, func(_ context.Context, o *InitOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"shop", "--kind", "function", "--lang", "go", "--template", "team/x", "--name", "hi",
		"--registry", "r.example.com/a", "--var", "a=b", "--var", "c=d", "--force"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	w := got.Workload
	if got.Dir != "shop" || w.Kind != "function" || w.Lang != "go" || w.Template != "team/x" || w.Name != "hi" ||
		got.Registry != "r.example.com/a" || !got.Force || strings.Join(w.Vars, ",") != "a=b,c=d" {
		t.Errorf("options = %+v", got)
	}
}

// fakePrompter answers questions from a script, failing on unexpected ones.
type fakePrompter struct {
	t       *testing.T
	answers map[string]string // message prefix -> answer
	asked   []string
}

func (p *fakePrompter) answer(message string) (string, error) {
	p.asked = append(p.asked, message)
	for prefix, a := range p.answers {
		if strings.HasPrefix(message, prefix) {
			return a, nil
		}
	}
	p.t.Fatalf("unexpected question %q", message)
	return "", nil
}

func (p *fakePrompter) Select(message string, options []string, _ string) (string, error) {
	a, err := p.answer(message)
	for _, o := range options {
		if o == a || strings.HasPrefix(o, a+" ") {
			return o, err
		}
	}
	p.t.Fatalf("answer %q is not among %v", a, options)
	return "", nil
}

func (p *fakePrompter) Input(message, def string, validate func(string) error) (string, error) {
	a, err := p.answer(message)
	if validate != nil {
		if verr := validate(a); verr != nil {
			return "", verr
		}
	}
	return a, err
}

func (p *fakePrompter) Password(message string) (string, error) { return p.answer(message) }

func TestInitRunAsksWhatFlagsLeftOut(t *testing.T) {
	f, dir := testFactory(t, true)
	fp := &fakePrompter{t: t, answers: map[string]string{
		"Language:":            "node",
		"Template:":            "http",
		"Name of the service:": "api",
		"Registry to push":     "",
	}}
	f.Prompter = func() (prompt.Prompter, error) { return fp, nil }
	opts := &InitOptions{Factory: f, Dir: "shop", Workload: workloadChoice{Kind: "service"}}
	if err := initRun(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if len(fp.asked) == 0 || fp.asked[0] != "Language:" {
		t.Errorf("asked %v; the kind was given and must not be asked", fp.asked)
	}
	data, err := os.ReadFile(filepath.Join(dir, "shop", "skiff.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "name: api") || !strings.Contains(string(data), "lang: node") {
		t.Errorf("manifest:\n%s", data)
	}
}

func TestInitRunNoTTYNeedsFlags(t *testing.T) {
	f, dir := testFactory(t, false)
	f.Prompter = func() (prompt.Prompter, error) { t.Fatal("prompted without a terminal"); return nil, nil }
	err := initRun(context.Background(), &InitOptions{Factory: f, Dir: "shop"})
	var usage *cmdutil.UsageError
	if !errors.As(err, &usage) || !strings.Contains(err.Error(), "--kind is required") {
		t.Fatalf("err = %v, want a usage error naming --kind", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "shop")); !os.IsNotExist(err) {
		t.Error("a failed init created the folder")
	}
}

func TestApplyEnv(t *testing.T) {
	f, _ := testFactory(t, false)
	env := map[string]string{"SKIFF_NAMESPACE": "from-env", "SKIFF_VERBOSE": "true", "SKIFF_CONTEXT": "ctx"}
	f.Getenv = func(k string) string { return env[k] }
	root := NewCmdRoot(f)
	root.SetArgs([]string{"version", "--context", "from-flag"})
	ios, _, _, _ := iostreams.Test()
	f.IOStreams = ios
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	g := f.Globals
	if g.Namespace != "from-env" || !g.Verbose || g.Context != "from-flag" {
		t.Errorf("globals = %+v; env fills in, flags win", g)
	}
}

func TestPodColorIsStable(t *testing.T) {
	if podColor("web-1") != podColor("web-1") {
		t.Fatal("a pod's color changed")
	}
	seen := map[string]bool{}
	for _, p := range []string{"a-1", "a-2", "a-3", "b-1", "b-2", "c-9"} {
		seen[podColor(p)] = true
	}
	if len(seen) < 2 {
		t.Error("every pod got the same color")
	}
}
