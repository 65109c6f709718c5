// Command hostbases pushes base images made from this machine's node and
// python3 (see testscripts/hostbase) to a registry, for benchmarks of
// Node.js and Python workloads on machines that can pull no image, and
// prints where they are: REGISTRY/bases, holding node:20 and python:3.11.
//
//	go run ./testscripts/bench/hostbases 127.0.0.1:5000
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/skiffdev/skiff/testscripts/hostbase"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: hostbases REGISTRY")
		os.Exit(2)
	}
	b, err := hostbase.Push(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "hostbases:", err)
		os.Exit(1)
	}
	fmt.Println(strings.TrimSuffix(b.Node, "/node:20"))
}
