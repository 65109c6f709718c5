package build

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// An input is a file or folder outside the workload folder that a build
// reads, and whose contents therefore belong in the cache key.
type input struct {
	// Path is absolute.
	Path string
	// Skip leaves files of a folder out of the hash (nil: only version
	// control).
	Skip skipFunc
}

// vcsOnly leaves version control and caches out of a hash.
func vcsOnly(rel string, _ fs.DirEntry) bool {
	switch path.Base(rel) {
	case ".git", ".hg", ".svn", ".skiff", "__pycache__", "node_modules", ".venv", "venv":
		return true
	}
	return false
}

// hashInputs hashes the inputs in a stable order, naming each by its path
// relative to dir so the key does not depend on where the checkout is.
func hashInputs(dir string, ins []input) (string, error) {
	slices.SortFunc(ins, func(a, b input) int { return strings.Compare(a.Path, b.Path) })
	ins = slices.CompactFunc(ins, func(a, b input) bool { return a.Path == b.Path })
	h := sha256.New()
	for _, in := range ins {
		name, err := filepath.Rel(dir, in.Path)
		if err != nil {
			name = in.Path
		}
		fi, err := os.Stat(in.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			fmt.Fprintf(h, "missing %s\n", name)
		case err != nil:
			return "", fmt.Errorf("reading %s: %w", in.Path, err)
		case fi.IsDir():
			skip := in.Skip
			if skip == nil {
				skip = vcsOnly
			}
			sum, err := hashTree(in.Path, skip)
			if err != nil {
				return "", fmt.Errorf("reading %s: %w", in.Path, err)
			}
			fmt.Fprintf(h, "dir %s %s\n", name, sum)
		default:
			data, err := os.ReadFile(in.Path)
			if err != nil {
				return "", fmt.Errorf("reading %s: %w", in.Path, err)
			}
			fmt.Fprintf(h, "file %s %x\n", name, sha256.Sum256(data))
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// goInputs are what a Go build reads beyond the workload folder: the
// module root when go.mod is above the folder, go.work and the modules it
// uses, and every folder a replace directive points at.
func goInputs(ctx context.Context, dir string, env []string) ([]input, error) {
	out, err := run(ctx, dir, env, "go", "env", "GOMOD", "GOWORK")
	if err != nil {
		return nil, fmt.Errorf("finding the Go module of %s: %w; fix go.mod or go.work", dir, err)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	for len(lines) < 2 {
		lines = append(lines, "")
	}
	gomod, gowork := strings.TrimSpace(lines[0]), strings.TrimSpace(lines[1])
	var ins []input
	var mods []string
	if gomod != "" && gomod != os.DevNull {
		mods = append(mods, filepath.Dir(gomod))
	}
	if gowork != "" && gowork != "off" {
		ins = append(ins, input{Path: gowork}, input{Path: gowork + ".sum"})
		uses, reps, err := goDirectives(gowork)
		if err != nil {
			return nil, err
		}
		mods = append(mods, uses...)
		for _, r := range reps {
			ins = append(ins, goModule(r, dir))
		}
	}
	for _, m := range mods {
		if m != dir {
			ins = append(ins, goModule(m, dir))
		}
		_, reps, err := goDirectives(filepath.Join(m, "go.mod"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		for _, r := range reps {
			ins = append(ins, goModule(r, dir))
		}
	}
	return ins, nil
}

// goModule is the module folder root as an input: its files minus nested
// modules (hashed on their own when used) and minus the workload folder
// (hashed with its own filter).
func goModule(root, workload string) input {
	return input{Path: root, Skip: func(rel string, d fs.DirEntry) bool {
		if vcsOnly(rel, d) {
			return true
		}
		if !d.IsDir() {
			return false
		}
		p := filepath.Join(root, filepath.FromSlash(rel))
		if p == workload {
			return true
		}
		_, err := os.Stat(filepath.Join(p, "go.mod"))
		return err == nil
	}}
}

// goDirectives returns the folders of the use directives of a go.work and
// the local folders of the replace directives of a go.mod or go.work,
// made absolute.
func goDirectives(file string) (uses, replaces []string, err error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, err
	}
	base := filepath.Dir(file)
	local := func(p string) (string, bool) {
		p = strings.Trim(p, "\"`")
		if !strings.HasPrefix(p, "./") && !strings.HasPrefix(p, "../") && !filepath.IsAbs(p) && p != "." && p != ".." {
			return "", false
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(base, filepath.FromSlash(p))
		}
		return filepath.Clean(p), true
	}
	block := ""
	for _, line := range strings.Split(string(data), "\n") {
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		verb := block
		switch {
		case block != "" && f[0] == ")":
			block = ""
			continue
		case block == "" && len(f) == 2 && f[1] == "(":
			block = f[0]
			continue
		case block == "":
			verb, f = f[0], f[1:]
		}
		switch verb {
		case "use":
			if len(f) > 0 {
				if p, ok := local(f[0]); ok {
					uses = append(uses, p)
				}
			}
		case "replace":
			if i := slices.Index(f, "=>"); i >= 0 && i+1 < len(f) {
				if p, ok := local(f[i+1]); ok {
					replaces = append(replaces, p)
				}
			}
		}
	}
	return uses, replaces, nil
}

// pythonInputs are what pip reads beyond the workload folder: local paths
// of requirements.txt (and the files it includes with -r/-c), its
// --find-links folders and those of PIP_FIND_LINKS.
func pythonInputs(dir string, env []string) ([]input, error) {
	var ins []input
	addPath := func(base, p string) {
		if p == "" || strings.Contains(p, "://") && !strings.HasPrefix(p, "file://") {
			return
		}
		p = strings.TrimPrefix(p, "file://")
		p = strings.TrimPrefix(p, "file:")
		if !filepath.IsAbs(p) {
			p = filepath.Join(base, filepath.FromSlash(p))
		}
		ins = append(ins, input{Path: filepath.Clean(p)})
	}
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PIP_FIND_LINKS="); ok {
			for _, p := range strings.Fields(v) {
				addPath(dir, p)
			}
		}
	}
	seen := map[string]bool{}
	var read func(file string) error
	read = func(file string) error {
		if seen[file] {
			return nil
		}
		seen[file] = true
		f, err := os.Open(file)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", file, err)
		}
		defer f.Close()
		base := filepath.Dir(file)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if i := strings.Index(line, " #"); i >= 0 {
				line = line[:i]
			}
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			opt, arg := splitOption(line)
			switch opt {
			case "-r", "--requirement", "-c", "--constraint":
				p := arg
				if !filepath.IsAbs(p) {
					p = filepath.Join(base, p)
				}
				ins = append(ins, input{Path: p})
				if err := read(p); err != nil {
					return err
				}
				continue
			case "-f", "--find-links", "-e", "--editable":
				// pip resolves these against its working folder.
				addPath(dir, arg)
				continue
			case "":
			default:
				continue
			}
			// A requirement: a path, a file: URL, or NAME @ URL.
			if _, url, ok := strings.Cut(line, " @ "); ok {
				line = strings.TrimSpace(url)
			}
			line, _, _ = strings.Cut(line, ";")
			line, _, _ = strings.Cut(line, "#")
			line = strings.Fields(line + " ")[0]
			if strings.HasPrefix(line, "file:") || strings.HasPrefix(line, "./") || strings.HasPrefix(line, "../") ||
				strings.HasPrefix(line, "/") || line == "." || line == ".." {
				addPath(dir, line)
			}
		}
		return sc.Err()
	}
	if err := read(filepath.Join(dir, "requirements.txt")); err != nil {
		return nil, err
	}
	return ins, nil
}

// splitOption splits "-r file", "-rfile" and "--requirement=file" into the
// option and its argument; a requirement gives "".
func splitOption(line string) (opt, arg string) {
	if !strings.HasPrefix(line, "-") {
		return "", ""
	}
	if strings.HasPrefix(line, "--") {
		opt, arg, _ = strings.Cut(line, "=")
		if o, a, ok := strings.Cut(opt, " "); ok {
			opt, arg = o, a
		}
		return opt, strings.TrimSpace(arg)
	}
	if len(line) > 2 {
		return line[:2], strings.TrimSpace(line[2:])
	}
	return line, ""
}

// Outside is a folder or file outside a workload's folder that its build
// reads, as the build cache key counts it.
type Outside struct {
	// Path is absolute.
	Path string
	// Skip reports whether rel (slash-separated, relative to Path) is left
	// out (nil: nothing is).
	Skip func(rel string, isDir bool) bool
}

// OutsideInputs lists what the build of the workload in dir (of language
// lang) reads outside that folder: for Go, the module root above it,
// go.work and the modules it uses, and every folder a replace directive
// points at; for the other languages nothing (see docs/build.md).
func (b *Builder) OutsideInputs(ctx context.Context, dir, lang string) ([]Outside, error) {
	lb, err := b.lang(lang)
	if err != nil {
		return nil, err
	}
	ins, err := lb.inputs(ctx, Request{Dir: dir})
	if err != nil {
		return nil, err
	}
	out := make([]Outside, len(ins))
	for i, in := range ins {
		skip := in.Skip
		if skip == nil {
			skip = vcsOnly
		}
		out[i] = Outside{Path: in.Path, Skip: func(rel string, isDir bool) bool { return skip(rel, dirEntry(isDir)) }}
	}
	return out, nil
}
