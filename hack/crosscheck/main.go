// Command crosscheck type-checks skiff's packages for the platforms it is
// released on besides the one CI runs on, without compiling them: CI's
// cross-platform check. It catches what a cross build would catch in
// skiff's own code (a file or symbol missing for a GOOS, a type that differs
// per platform); the dependencies' function bodies are not checked, as the
// released libraries they are build for these platforms themselves.
// A cross build compiles every dependency again per platform (minutes each
// on a cold cache); this takes seconds.
//
//	go run ./hack/crosscheck [-platforms darwin/arm64,windows/amd64] [packages]
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/tools/go/packages"
)

func main() {
	platforms := flag.String("platforms", "darwin/amd64,darwin/arm64,windows/amd64,windows/arm64", "GOOS/GOARCH pairs to check, comma-separated")
	flag.Parse()
	patterns := flag.Args()
	if len(patterns) == 0 {
		patterns = []string{"./..."}
	}
	failed := false
	for _, p := range strings.Split(*platforms, ",") {
		goos, goarch, ok := strings.Cut(strings.TrimSpace(p), "/")
		if !ok {
			fmt.Fprintf(os.Stderr, "crosscheck: %q is not GOOS/GOARCH\n", p)
			os.Exit(2)
		}
		n, err := check(goos, goarch, patterns)
		if err != nil {
			fmt.Fprintf(os.Stderr, "crosscheck: %s/%s: %v\n", goos, goarch, err)
			failed = true
			continue
		}
		fmt.Fprintf(os.Stderr, "crosscheck: %s/%s: %d packages type-check\n", goos, goarch, n)
	}
	if failed {
		os.Exit(1)
	}
}

// check loads the packages for one platform from source and reports their
// errors. Function bodies are dropped from files outside the current module:
// dependencies are checked for their API only.
func check(goos, goarch string, patterns []string) (int, error) {
	root, err := os.Getwd()
	if err != nil {
		return 0, err
	}
	root += string(filepath.Separator)
	cfg := &packages.Config{
		Mode: packages.NeedName | packages.NeedFiles | packages.NeedImports | packages.NeedDeps |
			packages.NeedTypes | packages.NeedSyntax,
		Env: append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0"),
		ParseFile: func(fset *token.FileSet, name string, src []byte) (*ast.File, error) {
			f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
			if err != nil || strings.HasPrefix(name, root) {
				return f, err
			}
			for _, d := range f.Decls {
				if fn, ok := d.(*ast.FuncDecl); ok {
					fn.Body = nil
				}
			}
			return f, nil
		},
	}
	pkgs, err := packages.Load(cfg, patterns...)
	if err != nil {
		return 0, err
	}
	// A dependency without its bodies has unused imports: only the
	// packages asked for report their errors (those of a dependency that
	// matter show there, as what it lacks).
	var errs []string
	n := 0
	packages.Visit(pkgs, nil, func(p *packages.Package) { n++ })
	for _, p := range pkgs {
		for _, e := range p.Errors {
			errs = append(errs, e.Error())
		}
	}
	if len(errs) > 0 {
		return n, fmt.Errorf("%d errors:\n  %s", len(errs), strings.Join(errs, "\n  "))
	}
	return n, nil
}
