package devsync

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
)

// Applied is a patch written into a folder; Undo puts back what it
// replaced and removed, Commit forgets it.
type Applied struct {
	dir, backup string
	to          string // the version the patch makes
	// ops are the changes made, in order, for Undo.
	ops  []op
	done map[string]bool
}

// op is one change: an entry written or removed at rel, its old version
// (a file or link) moved to the backup folder, or an old folder removed
// (dirMode) or a new one made.
type op struct {
	rel     string
	saved   bool
	made    bool // a folder made by the patch
	oldDir  bool // a folder removed by the patch
	dirMode fs.FileMode
}

// Apply writes the patch read from r into dir. What it replaces or
// removes is moved to backup (an empty folder on the same file system)
// first, so Undo can put it back. Each file is written under a temporary
// name and renamed into place. A patch that names a path outside dir is
// refused before anything changes.
func Apply(dir, backup string, r io.Reader) (*Applied, error) {
	return apply(dir, backup, r, nil)
}

// apply is Apply; check, when not nil, vets the manifest first.
func apply(dir, backup string, r io.Reader, check func(manifest) error) (*Applied, error) {
	a := &Applied{dir: dir, backup: backup, done: map[string]bool{}}
	tr := tar.NewReader(r)
	h, err := tr.Next()
	if err != nil || h.Name != manifestName {
		return nil, fmt.Errorf("not a patch: it does not start with %s", manifestName)
	}
	var m manifest
	if err := json.NewDecoder(tr).Decode(&m); err != nil {
		return nil, fmt.Errorf("reading the patch's %s: %w", manifestName, err)
	}
	if check != nil {
		if err := check(m); err != nil {
			return nil, err
		}
	}
	a.to = m.To
	for _, n := range m.Remove {
		if !filepath.IsLocal(n) {
			return nil, fmt.Errorf("the patch removes %q, outside the app folder", n)
		}
	}
	fail := func(err error) (*Applied, error) {
		return nil, errors.Join(err, a.Undo())
	}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(fmt.Errorf("reading the patch: %w", err))
		}
		if !filepath.IsLocal(h.Name) || (h.Typeflag == tar.TypeLink && !filepath.IsLocal(h.Linkname)) {
			return fail(fmt.Errorf("the patch writes %q, outside the app folder", h.Name))
		}
		if err := a.put(h, tr); err != nil {
			return fail(err)
		}
	}
	for _, n := range m.Remove {
		if err := a.remove(n); err != nil {
			return fail(err)
		}
	}
	return a, nil
}

// save moves the current file or link at rel, if any, to the backup
// folder, and records it.
func (a *Applied) save(rel string) error {
	if a.done[rel] {
		return nil
	}
	a.done[rel] = true
	cur := filepath.Join(a.dir, rel)
	if _, err := os.Lstat(cur); errors.Is(err, fs.ErrNotExist) {
		a.ops = append(a.ops, op{rel: rel})
		return nil
	} else if err != nil {
		return err
	}
	dst := filepath.Join(a.backup, rel)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := move(cur, dst); err != nil {
		return err
	}
	a.ops = append(a.ops, op{rel: rel, saved: true})
	return nil
}

// remove takes rel away: a file or link to the backup folder, a folder
// (emptied before: children come first) removed.
func (a *Applied) remove(rel string) error {
	if err := a.throughLink(rel); err != nil {
		return err
	}
	fi, err := os.Lstat(filepath.Join(a.dir, rel))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.IsDir():
		if err := os.Remove(filepath.Join(a.dir, rel)); err != nil {
			return err
		}
		a.ops = append(a.ops, op{rel: rel, oldDir: true, dirMode: fi.Mode() & fs.ModePerm})
		return nil
	}
	return a.save(rel)
}

// throughLink refuses rel when a folder on its way, below dir, is a link:
// the patch would write or remove outside what it names.
func (a *Applied) throughLink(rel string) error {
	parent := filepath.Dir(rel)
	for p := parent; p != "." && p != string(filepath.Separator); p = filepath.Dir(p) {
		fi, err := os.Lstat(filepath.Join(a.dir, p))
		if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("the patch reaches %q through the link %q", rel, p)
		}
	}
	return nil
}

func (a *Applied) put(h *tar.Header, r io.Reader) error {
	if err := a.throughLink(h.Name); err != nil {
		return err
	}
	dst := filepath.Join(a.dir, h.Name)
	mode := fs.FileMode(h.Mode) & fs.ModePerm
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if h.Typeflag == tar.TypeDir {
		if fi, err := os.Lstat(dst); err == nil && fi.IsDir() {
			return os.Chmod(dst, mode)
		}
		if err := a.save(h.Name); err != nil {
			return err
		}
		if err := os.Mkdir(dst, mode); err != nil {
			return err
		}
		a.ops = append(a.ops, op{rel: h.Name, made: true})
		return nil
	}
	tmp := filepath.Join(filepath.Dir(dst), ".skiff-sync-"+filepath.Base(dst))
	_ = os.Remove(tmp)
	switch h.Typeflag {
	case tar.TypeReg:
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return errors.Join(err, os.Remove(tmp))
		}
		if err := f.Close(); err != nil {
			return errors.Join(err, os.Remove(tmp))
		}
	case tar.TypeSymlink:
		if err := os.Symlink(h.Linkname, tmp); err != nil {
			return err
		}
	case tar.TypeLink:
		if err := os.Link(filepath.Join(a.dir, h.Linkname), tmp); err != nil {
			return err
		}
	default:
		return fmt.Errorf("the patch holds %s of a kind skiff does not sync (%c)", h.Name, h.Typeflag)
	}
	if err := a.save(h.Name); err != nil {
		return errors.Join(err, os.Remove(tmp))
	}
	return os.Rename(tmp, dst)
}

// Undo puts the folder back as it was before Apply.
func (a *Applied) Undo() error {
	var errs []error
	for _, o := range slices.Backward(a.ops) {
		cur := filepath.Join(a.dir, o.rel)
		switch {
		case o.oldDir:
			errs = append(errs, os.Mkdir(cur, o.dirMode))
		case o.made:
			errs = append(errs, os.Remove(cur))
		default:
			if err := os.Remove(cur); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			if o.saved {
				errs = append(errs, move(filepath.Join(a.backup, o.rel), cur))
			}
		}
	}
	a.ops, a.done = nil, map[string]bool{}
	return errors.Join(errs...)
}

// Commit drops the saved versions: the patch stays.
func (a *Applied) Commit() error {
	a.ops, a.done = nil, map[string]bool{}
	entries, err := os.ReadDir(a.backup)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		errs = append(errs, os.RemoveAll(filepath.Join(a.backup, e.Name())))
	}
	return errors.Join(errs...)
}

// move renames the file or link src to dst, or, when they are on two
// mounts (a pod's app folder and its backup folder are two volumes),
// copies it and removes src.
func move(src, dst string) error {
	err := os.Rename(src, dst)
	if !errors.Is(err, syscall.EXDEV) {
		return err
	}
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
		return os.Remove(src)
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode()&fs.ModePerm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return errors.Join(err, os.Remove(dst))
	}
	if err := out.Close(); err != nil {
		return errors.Join(err, os.Remove(dst))
	}
	return os.Remove(src)
}
