// Package testscripts runs skiff's command line as a user types it: each
// *.txtar file in this folder is a testscript (rogpeppe/go-internal).
package testscripts

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/skiffdev/skiff/internal/cli"
	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/factory"
	"github.com/skiffdev/skiff/internal/iostreams"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"skiff": func() {
			// As cmd/skiff's main: it alone catches the interrupts.
			in := cmdutil.CatchInterrupts(time.Second, os.Exit)
			f := factory.New(iostreams.System(), os.Getenv)
			f.Quit = in.Quit
			code := cli.Main(in.Ctx, f, os.Args[1:])
			in.Stop()
			os.Exit(code)
		},
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 ".",
		RequireExplicitExec: true,
		Cmds: map[string]func(*testscript.TestScript, bool, []string){
			"exits": exitsCmd,
		},
		Condition: func(cond string) (bool, error) {
			if cond == "root" {
				return os.Geteuid() == 0, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Setup: func(env *testscript.Env) error {
			home := filepath.Join(env.WorkDir, ".home")
			if err := os.MkdirAll(home, 0o755); err != nil {
				return err
			}
			env.Setenv("HOME", home)
			env.Setenv("SKIFF_CONFIG_DIR", filepath.Join(env.WorkDir, ".skiff"))
			env.Setenv("NO_COLOR", "1")
			for _, kv := range [][2]string{
				{"GIT_AUTHOR_NAME", "skiff test"}, {"GIT_AUTHOR_EMAIL", "test@skiff.invalid"},
				{"GIT_COMMITTER_NAME", "skiff test"}, {"GIT_COMMITTER_EMAIL", "test@skiff.invalid"},
				{"GIT_CONFIG_NOSYSTEM", "1"}, {"GIT_CONFIG_GLOBAL", "/dev/null"},
			} {
				env.Setenv(kv[0], kv[1])
			}
			return nil
		},
	})
}

// exitsCmd runs `exits CODE PROGRAM ARGS...`: the program must exit with
// exactly CODE. Its output is kept for the stdout and stderr commands.
func exitsCmd(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROGRAM [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: %v", err)
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exits: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
	}
}
