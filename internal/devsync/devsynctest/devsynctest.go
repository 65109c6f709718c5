// Package devsynctest holds what devsync's tests and its folders' tests
// share.
package devsynctest

import (
	"os"
	"path/filepath"
	"testing"
)

// Files returns the entries below dir as path: content ("->target" for
// symbolic links, "/" for folders).
func Files(tb testing.TB, dir string) map[string]string {
	tb.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.Type()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			got[rel] = "->" + target
			return err
		case d.IsDir():
			got[rel] = "/"
		default:
			data, err := os.ReadFile(p)
			got[rel] = string(data)
			return err
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return got
}
