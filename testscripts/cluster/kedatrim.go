package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// KEDA's operator and adapter compile every scaler it ships, and with them
// the SDKs of every cloud and database (3,712 packages). skiff's charts use
// two trigger types; the test cluster's KEDA is built with a few only, and
// without a fork: the build copies the module out of the module cache (go
// build -overlay may not replace files there), leaves the other scalers'
// files out of the copy and rewrites its scaler registry
// (pkg/scaling/scalers_builder.go) so that buildScaler's switch keeps the kept
// types; a go.mod beside the tools module's replaces KEDA with the copy. A
// ScaledObject with another type gets KEDA's own "no scaler found for type".

// kedaTriggers are the trigger types the test cluster's KEDA builds: those
// skiff's chart renders (external-push for the HTTP add-on, nats-jetstream
// for event-driven functions), external (the add-on's pull form) and the
// resource metrics (cheap, and what an HPA user would expect).
var kedaTriggers = []string{"external", "external-push", "nats-jetstream", "cpu", "memory"}

// kedaScalerFiles are the files of pkg/scalers the kept triggers need:
// the shared code and the kept scalers themselves.
var kedaScalerFiles = []string{"scaler.go", "external_scaler.go", "nats_jetstream_scaler.go", "cpu_memory_scaler.go"}

// kedaTrimKey names what the trimmed build keeps, for its cache dir: a new
// list of triggers or files builds anew.
func kedaTrimKey() string {
	sum := sha256.Sum256([]byte(strings.Join(kedaTriggers, ",") + ";" + strings.Join(kedaScalerFiles, ",")))
	return "trimmed-" + hex.EncodeToString(sum[:4])
}

// prepareKEDA makes the trimmed copy of KEDA's module under scratch and a
// go.mod (with its go.sum) that replaces KEDA by it, and returns the go
// build flag that uses that go.mod.
func (c *cluster) prepareKEDA(ctx context.Context, scratch string) ([]string, error) {
	return c.prepareTrimmed(ctx, scratch, "keda", "github.com/kedacore/keda/v2", "keda", trimKEDA)
}

// trimKEDA copies KEDA's module from modDir into dst, keeping only what
// kedaTriggers need.
func trimKEDA(modDir, dst string) error {
	scalers := filepath.Join("pkg", "scalers")
	builder := filepath.Join("pkg", "scaling", "scalers_builder.go")
	err := copyModule(modDir, dst, func(rel string) bool {
		return rel == builder ||
			filepath.Dir(rel) == scalers && strings.HasSuffix(rel, ".go") && !slices.Contains(kedaScalerFiles, filepath.Base(rel))
	})
	if err != nil {
		return err
	}
	src, err := trimScalerSwitch(filepath.Join(modDir, builder), kedaTriggers)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dst, builder), src, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dst, scalers, "skiff_trimmed.go"), []byte(kedaScalersShared), 0o644)
}

// kedaScalersShared declares what the kept scalers use from files left out
// of the copy. When KEDA moves more such names, the build of pkg/scalers
// fails with "undefined: NAME": add it here.
const kedaScalersShared = `package scalers

// Declared in azure_queue_scaler.go, used by the external scaler.
const externalMetricType = "External"
`

// trimScalerSwitch returns the source of KEDA's scaler registry with the
// switch of buildScaler cut down to the given trigger types (and its default)
// and the imports that are then unused removed.
func trimScalerSwitch(file string, keep []string) ([]byte, error) {
	return trimSwitch(file, "buildScaler", keep, "KEDA changed its scaler registry; update kedatrim.go", "KEDA changed its trigger types; update kedaTriggers")
}

// trimSwitch returns the source of file with the switch in function fn cut
// down to the cases of the given string values (and its default) and the
// imports that are then unused removed. noSwitch and noCase say what to do
// when the file no longer has that shape.
func trimSwitch(file, fn string, keep []string, noSwitch, noCase string) ([]byte, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	var sw *ast.SwitchStmt
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Name.Name != fn {
			continue
		}
		for _, st := range fd.Body.List {
			if s, ok := st.(*ast.SwitchStmt); ok {
				sw = s
			}
		}
	}
	if sw == nil {
		return nil, fmt.Errorf("%s: no switch in %s (%s)", file, fn, noSwitch)
	}
	var clauses []ast.Stmt
	found := map[string]bool{}
	for _, st := range sw.Body.List {
		cc := st.(*ast.CaseClause)
		kept := cc.List == nil // default
		for _, e := range cc.List {
			if lit, ok := e.(*ast.BasicLit); ok {
				if v, err := strconv.Unquote(lit.Value); err == nil && slices.Contains(keep, v) {
					kept, found[v] = true, true
				}
			}
		}
		if kept {
			clauses = append(clauses, cc)
		}
	}
	for _, k := range keep {
		if !found[k] {
			return nil, fmt.Errorf("%s: %s has no case %q (%s)", file, fn, k, noCase)
		}
	}
	sw.Body.List = clauses
	// The comments of the removed cases would land anywhere: drop those
	// inside the switch.
	var comments []*ast.CommentGroup
	for _, c := range f.Comments {
		if c.Pos() < sw.Body.Lbrace || c.End() > sw.Body.Rbrace {
			comments = append(comments, c)
		}
	}
	f.Comments = comments
	dropUnusedImports(f)

	var buf bytes.Buffer
	if err := printer.Fprint(&buf, fset, f); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// dropUnusedImports removes the imports no selector of the file refers to.
// Every import of KEDA's and lego's registries is used by name as pkg.Symbol.
func dropUnusedImports(f *ast.File) {
	used := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok {
				used[id.Name] = true
			}
		}
		return true
	})
	var specs []*ast.ImportSpec
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.IMPORT {
			continue
		}
		var kept []ast.Spec
		for _, s := range gd.Specs {
			is := s.(*ast.ImportSpec)
			name := importName(is)
			if name == "_" || name == "." || used[name] {
				kept = append(kept, s)
				specs = append(specs, is)
			}
		}
		gd.Specs = kept
	}
	f.Imports = specs
}

// importName is the name an import is referred to by: its alias, or the
// last element of its path (without a major version suffix).
func importName(is *ast.ImportSpec) string {
	if is.Name != nil {
		return is.Name.Name
	}
	p, _ := strconv.Unquote(is.Path.Value)
	elems := strings.Split(p, "/")
	last := elems[len(elems)-1]
	if len(elems) > 1 && len(last) > 1 && last[0] == 'v' && strings.Trim(last[1:], "0123456789") == "" {
		last = elems[len(elems)-2]
	}
	return last
}
