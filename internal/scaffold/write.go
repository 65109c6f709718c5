package scaffold

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ConflictError lists files that exist and would be overwritten.
type ConflictError struct {
	Dir   string
	Paths []string
}

func (e *ConflictError) Error() string {
	const max = 5
	shown := e.Paths
	more := ""
	if len(shown) > max {
		more = fmt.Sprintf(" and %d more", len(shown)-max)
		shown = shown[:max]
	}
	return fmt.Sprintf("%s already has %s%s; nothing was written; use --force to overwrite, or choose another folder",
		e.Dir, strings.Join(shown, ", "), more)
}

// Write puts files into dir, creating it if needed. It is all or nothing:
// it first checks for conflicts (existing files are only replaced with
// force), then writes every file to a temporary name, and only when all of
// them are written renames them into place. On failure it removes what it
// created, so the folder is left as it was.
func Write(dir string, files []File, force bool) (err error) {
	for _, f := range files {
		if err := CheckRelPath(f.Path); err != nil {
			return err
		}
	}
	if err := checkConflicts(dir, files, force); err != nil {
		return err
	}

	var createdDirs []string // in creation order
	var temps []string
	defer func() {
		if err == nil {
			return
		}
		for _, t := range temps {
			os.Remove(t)
		}
		for i := len(createdDirs) - 1; i >= 0; i-- {
			os.Remove(createdDirs[i])
		}
	}()

	mkdir := func(d string) error {
		var missing []string
		for p := d; ; p = filepath.Dir(p) {
			fi, err := os.Lstat(p)
			if err == nil {
				if !fi.IsDir() {
					return fmt.Errorf("%s is a file, not a folder", p)
				}
				break
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			missing = append(missing, p)
			if filepath.Dir(p) == p {
				break
			}
		}
		for i := len(missing) - 1; i >= 0; i-- {
			if err := os.Mkdir(missing[i], 0o755); err != nil {
				return err
			}
			createdDirs = append(createdDirs, missing[i])
		}
		return nil
	}

	type staged struct{ tmp, final string }
	var stage []staged
	for _, f := range files {
		final := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := mkdir(filepath.Dir(final)); err != nil {
			return fmt.Errorf("creating the folder of %s: %w", f.Path, err)
		}
		tmp, err := writeTemp(final, f)
		if err != nil {
			return fmt.Errorf("writing %s: %w", f.Path, err)
		}
		temps = append(temps, tmp)
		stage = append(stage, staged{tmp, final})
	}
	for i, s := range stage {
		if err := os.Rename(s.tmp, s.final); err != nil {
			// Files renamed so far stay: they are complete. Name them.
			return fmt.Errorf("moving %s into place: %w (%d of %d files were written)", s.final, err, i, len(stage))
		}
	}
	return nil
}

func checkConflicts(dir string, files []File, force bool) error {
	var conflicts []string
	for _, f := range files {
		final := filepath.Join(dir, filepath.FromSlash(f.Path))
		fi, err := os.Lstat(final)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if fi.IsDir() {
			return fmt.Errorf("%s is a folder, but the template has a file there; move it away first", final)
		}
		if !force && !f.Replace {
			conflicts = append(conflicts, f.Path)
		}
	}
	if len(conflicts) > 0 {
		return &ConflictError{Dir: dir, Paths: conflicts}
	}
	return nil
}

func writeTemp(final string, f File) (string, error) {
	d, base := filepath.Dir(final), filepath.Base(final)
	if f.Link != "" {
		for i := 0; ; i++ {
			tmp := filepath.Join(d, fmt.Sprintf(".%s.skiff-%d", base, i))
			err := os.Symlink(f.Link, tmp)
			if err == nil {
				return tmp, nil
			}
			if !errors.Is(err, fs.ErrExist) || i > 100 {
				return "", err
			}
		}
	}
	tmp, err := os.CreateTemp(d, "."+base+".skiff-*")
	if err != nil {
		return "", err
	}
	if _, err := tmp.Write(f.Data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", err
	}
	mode := f.Mode
	if mode == 0 {
		mode = 0o644
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return tmp.Name(), nil
}
