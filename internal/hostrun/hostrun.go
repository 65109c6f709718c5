// Package hostrun runs a workload on the host, without containers: the
// language's own toolchain, the manifest's environment, and the URLs of
// the workloads it depends on pointing at local instances.
package hostrun

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/skiffdev/skiff/internal/build"
	"github.com/skiffdev/skiff/internal/event"
	"github.com/skiffdev/skiff/internal/project"
)

// StopTimeout is how long a workload has to exit after SIGTERM.
const StopTimeout = 10 * time.Second

// Plan is how to run one workload.
type Plan struct {
	// Prepare are commands run first, in order (install, compile).
	Prepare [][]string
	// Command runs the workload.
	Command []string
	// Dir is the workload's folder.
	Dir string
	// Env is added to the process environment.
	Env []string
	// Port is where the workload listens.
	Port int
	// Missing lists dependencies with no local instance listening.
	Missing []string
}

// NewPlan plans running w (of project p rooted at root) on port.
// binDir receives compiled programs.
func NewPlan(p *project.Project, w *project.Workload, root, binDir string, port int) (*Plan, error) {
	dir := filepath.Join(root, filepath.FromSlash(w.Path))
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("the folder of %s, %s, does not exist; check its path in skiff.yaml", w.Name, dir)
	}
	pl := &Plan{Dir: dir, Port: port}
	switch w.Lang {
	case project.LangGo:
		bin := filepath.Join(binDir, w.Name)
		pl.Prepare = [][]string{{"go", "build", "-o", bin, "."}}
		pl.Command = []string{bin}
	case project.LangNode, project.LangTypeScript:
		main, err := build.NodeMain(dir)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(filepath.Join(dir, "node_modules")); err != nil && hasDependencies(dir) {
			pl.Prepare = append(pl.Prepare, npmInstall(dir))
		}
		if w.Lang == project.LangTypeScript {
			pl.Prepare = append(pl.Prepare, []string{"npm", "run", "build"})
		}
		pl.Command = []string{"node", main}
	case project.LangPython:
		main, err := build.PythonMain(dir)
		if err != nil {
			return nil, err
		}
		pl.Command = []string{"python3", main}
		pl.Env = append(pl.Env, "PYTHONUNBUFFERED=1")
	default:
		return nil, fmt.Errorf("skiff run does not know how to run %s workloads", w.Lang)
	}
	pl.Env = append(pl.Env, Env(p, w, port)...)
	for _, d := range w.DependsOn {
		dep, _ := p.Workload(d)
		if dep != nil && !listening(dep.Port) {
			pl.Missing = append(pl.Missing, d)
		}
	}
	return pl, nil
}

// CheckSyntax adds to the plan's preparation a syntax check of the
// workload's own sources where the language has no compile step (Node.js
// and Python), so that `skiff dev` finds a syntax error before it stops
// the version that runs. Go and TypeScript are compiled already.
func (pl *Plan) CheckSyntax(lang string) error {
	switch lang {
	case project.LangNode:
		files, err := filepath.Glob(filepath.Join(pl.Dir, "*.js"))
		if err != nil {
			return err
		}
		if isESM(pl.Dir) {
			// ES modules: node --check follows the package's type.
			for _, f := range files {
				pl.Prepare = append(pl.Prepare, []string{"node", "--check", filepath.Base(f)})
			}
		} else if len(files) > 0 {
			// One node for every file: each compiled as a CommonJS module body.
			const check = "const fs = require('fs'), vm = require('vm');\n" +
				"for (const f of process.argv.slice(1)) vm.compileFunction(fs.readFileSync(f, 'utf8'), ['exports', 'require', 'module', '__filename', '__dirname'], { filename: f });\n"
			args := []string{"node", "-e", check}
			for _, f := range files {
				args = append(args, filepath.Base(f))
			}
			pl.Prepare = append(pl.Prepare, args)
		}
	case project.LangPython:
		// Parse (never write .pyc files into the user's folder).
		const parse = "import ast, glob, sys\nfor f in sorted(glob.glob('*.py')):\n    ast.parse(open(f, encoding='utf-8').read(), f)\n"
		pl.Prepare = append(pl.Prepare, []string{"python3", "-c", parse})
	}
	return nil
}

// isESM reports whether the package's .js files are ES modules.
func isESM(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		return false
	}
	var pkg struct {
		Type string `json:"type"`
	}
	return json.Unmarshal(data, &pkg) == nil && pkg.Type == "module"
}

// hasDependencies reports whether a package.json declares packages to
// install (npm makes no node_modules when it declares none).
func hasDependencies(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		return true // let npm say what is wrong
	}
	var pkg map[string]json.RawMessage
	if json.Unmarshal(data, &pkg) != nil {
		return true
	}
	for _, k := range []string{"dependencies", "devDependencies", "optionalDependencies"} {
		if v, ok := pkg[k]; ok && strings.TrimSpace(string(v)) != "{}" {
			return true
		}
	}
	return false
}

// ForDev makes the plan's choices for `skiff dev`, where the next save
// matters more than a debugger: a Go program is linked without its symbol
// table and DWARF (-ldflags=-s -w), a quarter faster to link, and without
// version control stamping (-buildvcs=false), which runs git on each build
// in a git work tree.
func (pl *Plan) ForDev(lang string) {
	if lang == project.LangGo && len(pl.Prepare) > 0 {
		b := pl.Prepare[0]
		pl.Prepare[0] = append([]string{b[0], b[1], "-buildvcs=false", "-ldflags=-s -w"}, b[2:]...)
	}
}

func npmInstall(dir string) []string {
	if _, err := os.Stat(filepath.Join(dir, "package-lock.json")); err == nil {
		return []string{"npm", "ci"}
	}
	return []string{"npm", "install"}
}

// Env is the environment of a workload run locally: its manifest env and
// config, PORT, and <DEP>_URL of each dependency on localhost.
func Env(p *project.Project, w *project.Workload, port int) []string {
	var env []string
	keys := func(m map[string]string) []string {
		out := make([]string, 0, len(m))
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	for _, k := range keys(w.Config) {
		env = append(env, k+"="+w.Config[k])
	}
	for _, k := range keys(w.Env) {
		env = append(env, k+"="+w.Env[k])
	}
	for _, d := range w.DependsOn {
		if dep, ok := p.Workload(d); ok {
			env = append(env, fmt.Sprintf("%s_URL=http://127.0.0.1:%d", project.EnvName(d), dep.Port))
		}
	}
	return append(env, "PORT="+strconv.Itoa(port), "SKIFF_WORKLOAD="+w.Name)
}

func listening(port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Run runs the plan's preparation, then the workload, until it exits or
// ctx ends; then the workload gets SIGTERM and StopTimeout to exit. Each
// step is a Notice on events (nil: none).
func (pl *Plan) Run(ctx context.Context, stdout, stderr io.Writer, events *event.Emitter) error {
	if err := pl.Build(ctx, stderr, events); err != nil {
		return err
	}
	p, err := pl.Start(stdout, stderr)
	if err != nil {
		return err
	}
	select {
	case <-p.Exited():
		return p.Err()
	case <-ctx.Done():
	}
	events.Emit(event.Event{Kind: event.Notice, Phase: event.PhaseRun, Message: "stopping (SIGTERM)..."})
	return p.Stop()
}

// Build runs the plan's preparation commands (install, compile), their
// output to stderr, each said as a Notice on events (nil: none).
func (pl *Plan) Build(ctx context.Context, stderr io.Writer, events *event.Emitter) error {
	env := append(os.Environ(), pl.Env...)
	for _, args := range pl.Prepare {
		events.Emit(event.Event{Kind: event.Notice, Phase: event.PhaseBuild, Message: "$ " + join(args)})
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = pl.Dir, env, stderr, stderr
		// A compiler runs programs of its own (go build: compile, link):
		// cancelled, the whole group is killed, not the command alone,
		// whose children would go on after skiff stopped.
		setProcAttr(cmd)
		cmd.Cancel = func() error { return kill(cmd.Process) }
		cmd.WaitDelay = 5 * time.Second // a program that left the group may hold its output
		if err := cmd.Run(); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%s failed: %w", join(args), err)
		}
	}
	return nil
}

// Process is a running workload.
type Process struct {
	cmd     *exec.Cmd
	command string
	exited  chan struct{}
	err     error
}

// Start starts the workload (prepared already) in its own process group,
// unless another program listens on its port:
// a terminal's Ctrl-C reaches skiff, which then stops the workload the way
// Kubernetes would (SIGTERM, then SIGKILL).
func (pl *Plan) Start(stdout, stderr io.Writer) (*Process, error) {
	if pl.Port > 0 {
		if err := CheckPort(pl.Port); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(pl.Command[0], pl.Command[1:]...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = pl.Dir, append(os.Environ(), pl.Env...), stdout, stderr
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", join(pl.Command), err)
	}
	p := &Process{cmd: cmd, command: join(pl.Command), exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err says how the process exited; call it once Exited is closed.
func (p *Process) Err() error {
	if p.err != nil {
		return fmt.Errorf("%s exited: %w", p.command, p.err)
	}
	return nil
}

// Stop sends SIGTERM to the process group and waits StopTimeout for it to
// exit, then kills it. Exiting because of the SIGTERM is a clean stop.
func (p *Process) Stop() error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	_ = terminate(p.cmd.Process)
	select {
	case <-p.exited:
		if ee, ok := p.err.(*exec.ExitError); ok && !ee.Success() && !terminated(ee) {
			return fmt.Errorf("%s exited with %v after SIGTERM", p.command, ee)
		}
		return nil
	case <-time.After(StopTimeout):
		_ = kill(p.cmd.Process)
		<-p.exited
		return fmt.Errorf("%s did not stop within %s of SIGTERM and was killed", p.command, StopTimeout)
	}
}

func join(args []string) string { return strings.Join(args, " ") }
