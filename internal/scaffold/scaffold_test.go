package scaffold

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/skiffdev/skiff/internal/catalog"
)

func tmpl(files fstest.MapFS) *catalog.Template {
	files["t/template.yaml"] = &fstest.MapFile{Data: []byte("name: t\nkind: function\nlang: go\n")}
	return &catalog.Template{Manifest: catalog.Manifest{Name: "t", Kind: "function", Lang: "go"}, Repo: "test", Dir: "t", FS: files}
}

func TestRender(t *testing.T) {
	tp := tmpl(fstest.MapFS{
		"t/main.go.tmpl":          {Data: []byte("package main // {{.Name}} {{.Values.word}} {{envname .Name}} {{camel .Name}}")},
		"t/static/{{.Name}}.txt":  {Data: []byte("{{not rendered}}")},
		"t/run.sh":                {Data: []byte("#!/bin/sh"), Mode: 0o755},
		"t/sub/dir/file.txt.tmpl": {Data: []byte("port {{.Port}}")},
	})
	files, err := Render(tp, Data{Name: "my-fn", Port: 9000, Values: map[string]string{"word": "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]File{}
	for _, f := range files {
		got[f.Path] = f
	}
	if len(got) != 4 {
		t.Fatalf("files = %v", files)
	}
	if s := string(got["main.go"].Data); s != "package main // my-fn hi MY_FN myFn" {
		t.Errorf("main.go = %q", s)
	}
	if s := string(got["static/my-fn.txt"].Data); s != "{{not rendered}}" {
		t.Errorf("a file without .tmpl was rendered: %q", s)
	}
	if got["run.sh"].Mode != 0o755 || got["main.go"].Mode != 0o644 {
		t.Errorf("modes: run.sh %v, main.go %v", got["run.sh"].Mode, got["main.go"].Mode)
	}
	if s := string(got["sub/dir/file.txt"].Data); s != "port 9000" {
		t.Errorf("file.txt = %q", s)
	}
}

func TestRenderRejectsEscapes(t *testing.T) {
	for name, fs := range map[string]fstest.MapFS{
		"dotdot in name":  {"t/{{.Values.dir}}/x.tmpl": {Data: []byte("x")}},
		"missing value":   {"t/x.tmpl": {Data: []byte("{{.Values.nope}}")}},
		"bad template":    {"t/x.tmpl": {Data: []byte("{{.Name")}},
		"symlink escapes": {"t/link": {Data: []byte("../../etc/passwd"), Mode: os.ModeSymlink}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Render(tmpl(fs), Data{Name: "x", Values: map[string]string{"dir": ".."}})
			if err == nil {
				t.Fatal("Render succeeded, want an error")
			}
		})
	}
}

func TestCheckRelPath(t *testing.T) {
	for _, p := range []string{"", ".", "/etc/passwd", "a/../../b", "..", `a\b`} {
		if CheckRelPath(p) == nil {
			t.Errorf("CheckRelPath(%q) = nil, want an error", p)
		}
	}
	for _, p := range []string{"a", "a/b/c.txt", ".gitignore", "a/..b"} {
		if err := CheckRelPath(p); err != nil {
			t.Errorf("CheckRelPath(%q) = %v", p, err)
		}
	}
}

func TestWriteIsAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "keep.txt"), []byte("mine"), 0o644)
	files := []File{{Path: "a/new.txt", Data: []byte("new")}, {Path: "keep.txt", Data: []byte("theirs")}}

	err := Write(dir, files, false)
	var conflict *ConflictError
	if !errors.As(err, &conflict) || len(conflict.Paths) != 1 || conflict.Paths[0] != "keep.txt" {
		t.Fatalf("err = %v, want a conflict on keep.txt", err)
	}
	if !strings.Contains(err.Error(), "use --force") {
		t.Errorf("error does not name the fix: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); !os.IsNotExist(err) {
		t.Error("a conflict left a folder behind")
	}

	// A failure while writing (a file where a folder must go) removes
	// everything written so far, including created folders.
	os.WriteFile(filepath.Join(dir, "blocker"), []byte("x"), 0o644)
	err = Write(dir, []File{{Path: "b/one.txt", Data: []byte("1")}, {Path: "blocker/two.txt", Data: []byte("2")}}, false)
	if err == nil {
		t.Fatal("want an error")
	}
	if _, err := os.Stat(filepath.Join(dir, "b")); !os.IsNotExist(err) {
		t.Error("a failed write left b/ behind")
	}

	if err := Write(dir, files, true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "keep.txt")); string(b) != "theirs" {
		t.Errorf("force did not overwrite: %q", b)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func TestWriteReplace(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "skiff.yaml"), []byte("old"), 0o644)
	if err := Write(dir, []File{{Path: "skiff.yaml", Data: []byte("new"), Replace: true}}, false); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "skiff.yaml")); string(b) != "new" {
		t.Errorf("content = %q", b)
	}
}

func TestRenderIncludes(t *testing.T) {
	fsys := fstest.MapFS{
		"_shared/server.py":      {Data: []byte("shared server")},
		"_shared/README.md.tmpl": {Data: []byte("shared readme of {{.Name}}")},
		"t/README.md.tmpl":       {Data: []byte("own readme of {{.Name}}")},
		"t/template.yaml":        {Data: []byte("name: t\nkind: function\nlang: python\ninclude: [_shared]\n")},
	}
	ts, err := catalog.Discover("r", fsys)
	if err != nil {
		t.Fatal(err)
	}
	files, err := Render(ts[0], Data{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range files {
		got[f.Path] = string(f.Data)
	}
	if len(got) != 2 || got["server.py"] != "shared server" || got["README.md"] != "own readme of x" {
		t.Errorf("files = %v; want the shared server.py and the template's own README", got)
	}
	for _, bad := range []string{"../x", "/abs", "missing"} {
		fsys["t/template.yaml"] = &fstest.MapFile{Data: []byte("name: t\nkind: function\nlang: python\ninclude: [" + bad + "]\n")}
		if _, err := catalog.Discover("r", fsys); err == nil || !strings.Contains(err.Error(), "include[0]") {
			t.Errorf("include %q: err = %v", bad, err)
		}
	}
}
