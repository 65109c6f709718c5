// Command skiff takes a developer from an empty folder to functions and
// services running on Kubernetes.
package main

import (
	"os"
	"time"

	"github.com/skiffdev/skiff/internal/cli"
	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/factory"
	"github.com/skiffdev/skiff/internal/iostreams"
)

// quitGrace is how long a command has, after the second Ctrl-C, to say
// what it left before the process ends.
const quitGrace = time.Second

func main() {
	// The only signal handler: the first Ctrl-C cancels the command's
	// context (commands stop and clean up: a deploy rolls back, dev
	// restores the cluster); the second closes quit and ends skiff at once.
	in := cmdutil.CatchInterrupts(quitGrace, os.Exit)
	f := factory.New(iostreams.System(), os.Getenv)
	f.Quit = in.Quit
	code := cli.Main(in.Ctx, f, os.Args[1:])
	in.Stop()
	os.Exit(code)
}
