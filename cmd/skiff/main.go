// Command skiff takes a developer from an empty folder to functions and
// services running on Kubernetes.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/skiffdev/skiff/internal/cli"
	"github.com/skiffdev/skiff/internal/iostreams"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first Ctrl-C cancels ctx: commands stop and clean up (a deploy
	// rolls back). The second one, no longer caught, ends skiff at once.
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := cli.Main(ctx, os.Args[1:], iostreams.System(), os.Getenv)
	stop()
	os.Exit(code)
}
