// Package scaffold renders a template into files and writes them into a
// folder safely: nothing outside the folder, nothing overwritten without
// force, and nothing half-written when something fails.
package scaffold

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/skiffdev/skiff/internal/catalog"
)

// TemplateSuffix marks a file that is rendered with text/template; the
// suffix is dropped from the output name. Other files are copied as they are.
const TemplateSuffix = ".tmpl"

// Data is what a template's files can use.
type Data struct {
	Name     string            // workload name, e.g. "orders"
	Project  string            // project name
	Kind     string            // function or service
	Lang     string            // go, node, typescript, python
	Template string            // template name
	Port     int               // port the workload listens on
	Values   map[string]string // answers to the template's prompts
}

// File is one file to write, with a slash-separated path relative to the
// target folder.
type File struct {
	Path string
	Data []byte
	Mode fs.FileMode
	// Link, when set, makes the file a symbolic link to this relative target.
	Link string
	// Replace lets Write replace an existing file without force (for a
	// manifest the command itself has just read and edited).
	Replace bool
}

// Render turns a template into files: those of the folders it includes,
// then its own (which win over an included file of the same name). It
// fails, writing nothing, on a file or link that would land outside the
// target folder.
func Render(t *catalog.Template, data Data) ([]File, error) {
	byPath := map[string]File{}
	for _, dir := range append(append([]string(nil), t.Include...), t.Dir) {
		files, err := renderDir(t, dir, data)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			byPath[f.Path] = f
		}
	}
	files := make([]File, 0, len(byPath))
	for _, f := range byPath {
		files = append(files, f)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

// renderDir renders the files of one folder of the template's repository.
func renderDir(t *catalog.Template, dir string, data Data) ([]File, error) {
	root, err := fs.Sub(t.FS, dir)
	if err != nil {
		return nil, err
	}
	var files []File
	err = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == catalog.ManifestName || d.IsDir() {
			return nil
		}
		out, err := renderPath(p, data)
		if err != nil {
			return fmt.Errorf("template %s: file name %s: %w", t.ID(), path.Join(dir, p), err)
		}
		if d.Type()&fs.ModeSymlink != 0 {
			f, err := renderLink(t.FS, path.Join(dir, p), out)
			if err != nil {
				return fmt.Errorf("template %s: %w", t.ID(), err)
			}
			files = append(files, f)
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("template %s: %s is not a regular file", t.ID(), path.Join(dir, p))
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		content, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		if strings.HasSuffix(p, TemplateSuffix) {
			content, err = renderText(p, content, data)
			if err != nil {
				return fmt.Errorf("template %s: %w", t.ID(), err)
			}
		}
		mode := fs.FileMode(0o644)
		if info.Mode()&0o111 != 0 {
			mode = 0o755
		}
		files = append(files, File{Path: out, Data: content, Mode: mode})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	for i := 1; i < len(files); i++ {
		if files[i].Path == files[i-1].Path {
			return nil, fmt.Errorf("template %s: two files of %s render to %s", t.ID(), dir, files[i].Path)
		}
	}
	return files, nil
}

// renderPath renders template actions in a file name, drops the .tmpl
// suffix and checks the result stays inside the target folder.
func renderPath(p string, data Data) (string, error) {
	out := strings.TrimSuffix(p, TemplateSuffix)
	if strings.Contains(out, "{{") {
		b, err := renderText(p, []byte(out), data)
		if err != nil {
			return "", err
		}
		out = string(b)
	}
	if err := CheckRelPath(out); err != nil {
		return "", err
	}
	return path.Clean(out), nil
}

// CheckRelPath fails for a path that is absolute or climbs out of its root.
func CheckRelPath(p string) error {
	switch {
	case p == "" || path.Clean(p) == ".":
		return fmt.Errorf("the path is empty")
	case path.IsAbs(p) || filepath.IsAbs(p) || strings.HasPrefix(p, `\`):
		return fmt.Errorf("%q is absolute; a template may only write inside the target folder", p)
	case strings.Contains(p, `\`):
		return fmt.Errorf("%q contains '\\'; use '/' in template paths", p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return fmt.Errorf("%q contains '..'; a template may only write inside the target folder", p)
		}
	}
	return nil
}

func renderLink(fsys fs.FS, full, out string) (File, error) {
	target, err := fs.ReadLink(fsys, full)
	if err != nil {
		return File{}, fmt.Errorf("reading link %s: %w", full, err)
	}
	resolved := path.Join(path.Dir(out), target)
	if path.IsAbs(target) || resolved == ".." || strings.HasPrefix(resolved, "../") {
		return File{}, fmt.Errorf("%s is a symbolic link to %s, outside the target folder; templates may only link inside themselves", full, target)
	}
	return File{Path: out, Link: target}, nil
}

func renderText(name string, src []byte, data Data) ([]byte, error) {
	tmpl, err := template.New(name).Option("missingkey=error").Funcs(funcs).Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", name, err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("rendering %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

var funcs = template.FuncMap{
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	"title": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
	// camel turns "my-func" into "myFunc".
	"camel": func(s string) string {
		parts := strings.Split(s, "-")
		for i := 1; i < len(parts); i++ {
			if parts[i] != "" {
				parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
			}
		}
		return strings.Join(parts, "")
	},
	// snake turns "my-func" into "my_func".
	"snake": func(s string) string { return strings.ReplaceAll(s, "-", "_") },
	// envname turns "my-func" into "MY_FUNC".
	"envname": func(s string) string { return strings.ToUpper(strings.ReplaceAll(s, "-", "_")) },
}
