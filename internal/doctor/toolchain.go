package doctor

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/skiffdev/skiff/internal/project"
)

// Runner runs a program and returns its standard output, trimmed.
type Runner func(ctx context.Context, name string, args ...string) (string, error)

// Exec is the Runner of this machine.
func Exec(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return strings.TrimSpace(string(out)), err
}

// tool is one program a language's builds run.
type tool struct {
	name string
	args []string
	fix  string
}

// toolsFor lists what skiff runs to build and run workloads of lang.
func toolsFor(lang string) []tool {
	switch lang {
	case project.LangGo:
		return []tool{{"go", []string{"env", "GOVERSION"}, "install Go 1.22 or later and put `go` on PATH"}}
	case project.LangNode, project.LangTypeScript:
		return []tool{
			{"node", []string{"--version"}, "install Node.js 18 or later and put `node` on PATH"},
			{"npm", []string{"--version"}, "install npm (it comes with Node.js) and put it on PATH"},
		}
	case project.LangPython:
		return []tool{
			{"python3", []string{"--version"}, "install Python 3.9 or later and put `python3` on PATH"},
			{"python3", []string{"-m", "pip", "--version"}, "install pip for python3 (`python3 -m ensurepip`, or the distribution's python3-pip)"},
		}
	}
	return nil
}

// Toolchain checks the programs the workloads of lang need, named by
// workloads, and says their versions.
func Toolchain(lang string, workloads []string, run Runner) Check {
	return Check{Name: "toolchain " + lang, Run: func(ctx context.Context) Result {
		var versions []string
		for _, t := range toolsFor(lang) {
			out, err := run(ctx, t.name, t.args...)
			if err != nil {
				what := t.name + " " + strings.Join(t.args, " ")
				if errors.Is(err, exec.ErrNotFound) {
					return Fails(fmt.Sprintf("%s is not installed (needed by %s)", t.name, strings.Join(workloads, ", ")), t.fix)
				}
				return Fails(fmt.Sprintf("`%s` failed: %v", what, err), t.fix)
			}
			versions = append(versions, firstLine(out))
		}
		if lang == project.LangTypeScript {
			versions = append(versions, "tsc from each workload's devDependencies")
		}
		return Okay(strings.Join(versions, ", "))
	}}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
