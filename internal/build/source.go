package build

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/skiffdev/skiff/internal/project"
)

// IgnoreFile is the file of a workload folder listing, one pattern a
// line, the files that go neither into the image nor into the cache key.
const IgnoreFile = ".skiffignore"

// skipFunc says whether the file or folder at rel (slash separated,
// relative to the walked folder) is left out.
type skipFunc func(rel string, d fs.DirEntry) bool

// walkSource calls fn for every folder, regular file and symlink under src
// that skip does not leave out, in lexical order, with its slash-separated
// path relative to src ("." for src itself). Symlinks are not followed.
// Special files (sockets, devices, pipes) are refused. Every walk of
// sources (the image layers, the build copy, the cache key, the native
// code check) goes through here, so they cannot disagree.
func walkSource(src string, skip skipFunc, fn func(p, rel string, d fs.DirEntry) error) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel != "." && skip != nil && skip(rel, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if t := d.Type(); !t.IsDir() && !t.IsRegular() && t&fs.ModeSymlink == 0 {
			return fmt.Errorf("%s is a special file (%s) that cannot go into an image; remove it, move it out of the workload folder or list it in %s", p, t, IgnoreFile)
		}
		return fn(p, rel, d)
	})
}

// isSecret reports whether a file name is one that holds credentials and
// never goes into an image: dotenv files, npm and PyPI credentials, PEM
// files and keys, SSH private keys and git's stored credentials.
func isSecret(name string) bool {
	switch name {
	case ".env", ".npmrc", ".pypirc", ".git-credentials", ".netrc":
		return true
	}
	switch {
	case strings.HasPrefix(name, ".env."),
		strings.HasSuffix(name, ".pem"),
		strings.HasSuffix(name, ".key"):
		return true
	case strings.HasPrefix(name, "id_"):
		// SSH private keys (id_rsa, id_ed25519, ...) have no extension;
		// their public halves end in .pub.
		return !strings.Contains(name, ".")
	}
	return false
}

// sourceFilter decides which files of a workload folder are sources:
// neither version control, nor what the builder installs itself, nor
// caches, nor secrets, nor what .skiffignore lists.
type sourceFilter struct {
	lang   string
	ignore []ignorePattern
}

// loadSourceFilter reads the .skiffignore of dir, if there is one.
func loadSourceFilter(dir, lang string) (*sourceFilter, error) {
	f := &sourceFilter{lang: lang}
	data, err := os.ReadFile(filepath.Join(dir, IgnoreFile))
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w; make it readable or remove it", filepath.Join(dir, IgnoreFile), err)
	}
	if f.ignore, err = parseIgnore(data); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, IgnoreFile), err)
	}
	return f, nil
}

// base leaves out what never belongs to the sources of any language.
func (f *sourceFilter) base(rel string, d fs.DirEntry) bool {
	name := path.Base(rel)
	switch name {
	case ".git", ".hg", ".svn", ".DS_Store", ".skiff":
		return true
	}
	if rel == IgnoreFile {
		return true
	}
	switch f.lang {
	case project.LangNode:
		if rel == "node_modules" {
			return true
		}
	case project.LangTypeScript:
		if rel == "node_modules" || rel == "dist" {
			return true
		}
	case project.LangPython:
		if name == "__pycache__" || strings.HasSuffix(name, ".pyc") ||
			rel == ".venv" || rel == "venv" || rel == pythonDepsDir {
			return true
		}
	}
	return ignored(f.ignore, rel, d.IsDir())
}

// image says what stays out of the image: everything base leaves out, and
// secrets.
func (f *sourceFilter) image(rel string, d fs.DirEntry) bool {
	return f.base(rel, d) || (!d.IsDir() && isSecret(path.Base(rel)))
}

// build says what stays out of what a toolchain reads, which the cache key
// hashes. Node.js builds in a copy made with it: as image, but the
// workload's own .npmrc stays so npm reads its registry settings (and a
// changed .npmrc rebuilds). Go compiles in the folder itself and may embed
// any file of it, so only base applies; its image holds the binary alone.
func (f *sourceFilter) build(rel string, d fs.DirEntry) bool {
	switch {
	case f.lang == project.LangGo:
		return f.base(rel, d)
	case rel == ".npmrc" && (f.lang == project.LangNode || f.lang == project.LangTypeScript):
		return f.base(rel, d)
	}
	return f.image(rel, d)
}

// ignorePattern is one line of .skiffignore.
type ignorePattern struct {
	glob    string
	negate  bool
	dirOnly bool
	// anchored patterns (with a slash) match the whole relative path only.
	anchored bool
}

// parseIgnore parses .skiffignore: one pattern a line, '#' comments,
// '*' and '?' globs, a trailing '/' for folders only, a leading '!' to
// take a file back in. A pattern without a slash matches the base name at
// any depth; one with a slash matches the path from the workload folder.
func parseIgnore(data []byte) ([]ignorePattern, error) {
	var out []ignorePattern
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var p ignorePattern
		if s, ok := strings.CutPrefix(line, "!"); ok {
			p.negate, line = true, s
		}
		if s, ok := strings.CutSuffix(line, "/"); ok {
			p.dirOnly, line = true, s
		}
		if s, ok := strings.CutPrefix(line, "/"); ok {
			p.anchored, line = true, s
		}
		if strings.Contains(line, "/") {
			p.anchored = true
		}
		if line == "" {
			continue
		}
		if _, err := path.Match(line, ""); err != nil {
			return nil, fmt.Errorf("line %d: %q is not a valid pattern (%v); use * and ? globs, and [...] with a closing ]", n, sc.Text(), err)
		}
		p.glob = line
		out = append(out, p)
	}
	return out, sc.Err()
}

// ignored applies the patterns in order; the last one matching decides.
func ignored(pats []ignorePattern, rel string, dir bool) bool {
	out := false
	for _, p := range pats {
		if p.dirOnly && !dir {
			continue
		}
		ok, _ := path.Match(p.glob, rel)
		if !ok && !p.anchored {
			ok, _ = path.Match(p.glob, path.Base(rel))
		}
		if ok {
			out = !p.negate
		}
	}
	return out
}

// hashTree hashes the names, kinds, executable bits and contents of the
// files under dir that skip does not leave out.
func hashTree(dir string, skip skipFunc) (string, error) {
	h := sha256.New()
	err := walkSource(dir, skip, func(p, rel string, d fs.DirEntry) error {
		switch t := d.Type(); {
		case t.IsDir():
			fmt.Fprintf(h, "d %s\n", rel)
		case t&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "l %s %s\n", rel, target)
		default:
			info, err := d.Info()
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "f %s %d %d\n", rel, normMode(info.Mode()), info.Size())
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(h, f)
			f.Close()
			return err
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil)), err
}

// copyTree copies the regular files, folders and symlinks of src that skip
// does not leave out to dst.
func copyTree(dst, src string, skip skipFunc) error {
	return walkSource(src, skip, func(p, rel string, d fs.DirEntry) error {
		target := filepath.Join(dst, filepath.FromSlash(rel))
		switch t := d.Type(); {
		case t.IsDir():
			return os.MkdirAll(target, 0o755)
		case t&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		default:
			info, err := d.Info()
			if err != nil {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, info.Mode().Perm())
		}
	})
}

// Inputs says which files of a workload folder its build reads: what the
// build cache key hashes, and what `skiff dev` watches.
type Inputs struct {
	f   *sourceFilter
	git []ignorePattern
}

// LoadInputs reads the .skiffignore (and, for watching, the .gitignore) of
// a workload folder.
func LoadInputs(dir, lang string) (*Inputs, error) {
	f, err := loadSourceFilter(dir, lang)
	if err != nil {
		return nil, err
	}
	in := &Inputs{f: f}
	if data, err := os.ReadFile(filepath.Join(dir, ".gitignore")); err == nil {
		in.git, _ = parseIgnore(data) // git's syntax is wider; what parses is used
	}
	return in, nil
}

// Skip reports whether rel (slash-separated, relative to the workload
// folder) is not an input of the build, or is ignored by git.
func (in *Inputs) Skip(rel string, isDir bool) bool {
	return in.f.build(rel, dirEntry(isDir)) || ignored(in.git, rel, isDir)
}

// dirEntry is an fs.DirEntry that knows only whether it is a folder.
type dirEntry bool

func (d dirEntry) Name() string               { return "" }
func (d dirEntry) IsDir() bool                { return bool(d) }
func (d dirEntry) Info() (fs.FileInfo, error) { return nil, fs.ErrInvalid }
func (d dirEntry) Type() fs.FileMode {
	if d {
		return fs.ModeDir
	}
	return 0
}
