// Command gendocs regenerates skiff's command reference (docs/commands) and
// shell completions (completions/) from the cobra command tree:
//
//	go run ./internal/cli/gendocs
//
// With -man DIR it writes man pages into DIR instead (used by releases).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/skiffdev/skiff/internal/cli"
)

func main() {
	root := flag.String("root", ".", "repository root")
	man := flag.String("man", "", "write man pages into this folder instead")
	flag.Parse()
	var err error
	if *man != "" {
		err = cli.WriteManPages(*man)
	} else {
		err = cli.WriteGenerated(*root)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}
