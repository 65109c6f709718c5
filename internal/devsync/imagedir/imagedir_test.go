package imagedir

import (
	"archive/tar"
	"bytes"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/skiffdev/skiff/internal/devsync"
	"github.com/skiffdev/skiff/internal/devsync/devsynctest"
)

// file is an entry of a test layer: content, or a link target for
// symlinks ("->target") and hard links ("=>target", its path in the
// image), or a folder (trailing /).
type file struct{ name, content string }

func layer(t *testing.T, files ...file) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(f.content))}
		switch {
		case strings.HasSuffix(f.name, "/"):
			h = &tar.Header{Name: f.name, Mode: 0o755, Typeflag: tar.TypeDir}
		case strings.HasPrefix(f.content, "->"):
			h = &tar.Header{Name: f.name, Mode: 0o777, Typeflag: tar.TypeSymlink, Linkname: f.content[2:]}
		case strings.HasPrefix(f.content, "=>"):
			h = &tar.Header{Name: f.name, Mode: 0o644, Typeflag: tar.TypeLink, Linkname: f.content[2:]}
		case strings.HasSuffix(f.name, ".sh"):
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(f.content)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func image(t *testing.T, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// Walk names entries, and a hard link's target, by their paths in the
// folder, and leaves out what is outside it; a patch holding a hard link
// makes one in the pod's folder.
func TestWalkNamesEntriesInTheFolder(t *testing.T) {
	img := image(t, layer(t, file{"etc/", ""}, file{"etc/x", "outside"}, file{"./app/", ""},
		file{"./app/a", "A"}, file{"app/b", "=>./app/a"}, file{"application/c", "not app/"}))
	var got []string
	err := Folder{img, "/app/"}.Walk(func(rel string, h *tar.Header, r io.Reader) error {
		got = append(got, rel+" "+h.Linkname)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a ", "b a"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("walked %q, want %q", got, want)
	}
	dir := t.TempDir()
	writeTree(t, dir, img)
	a, errA := os.Stat(filepath.Join(dir, "a"))
	b, errB := os.Stat(filepath.Join(dir, "b"))
	if errA != nil || errB != nil || !os.SameFile(a, b) {
		t.Errorf("b is not a hard link of a in the pod's folder (%v, %v)", errA, errB)
	}
}

func TestPatchTurnsOneAppFolderIntoTheOther(t *testing.T) {
	base := layer(t, file{"etc/", ""}, file{"etc/os-release", "debian"})
	old := image(t, base, layer(t,
		file{"app/", ""}, file{"app/fn", "v1"}, file{"app/lib/", ""}, file{"app/lib/a.js", "a1"},
		file{"app/lib/gone.js", "bye"}, file{"app/old/", ""}, file{"app/old/x", "x"}, file{"app/link", "->fn"},
		file{"app/same.txt", "same"}))
	// The new image stacks a layer on the old one's, with a whiteout: what
	// TreeOf reads is the folder as the layers stack up.
	next := image(t, base, layer(t,
		file{"app/", ""}, file{"app/fn", "v2"}, file{"app/lib/", ""}, file{"app/lib/a.js", "a1"},
		file{"app/lib/gone.js", "bye"}, file{"app/old/", ""}, file{"app/old/x", "x"}, file{"app/link", "->lib/a.js"},
		file{"app/same.txt", "same"}), layer(t, file{"app/lib/.wh.gone.js", ""}, file{"app/.wh.old", ""},
		file{"app/new/", ""}, file{"app/new/run.sh", "#!/bin/sh"}))

	from, err := devsync.TreeOf(Folder{old, "/app"})
	if err != nil {
		t.Fatal(err)
	}
	to, err := devsync.TreeOf(Folder{next, "/app"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := from["same.txt"]; !ok || len(from) != 8 {
		t.Fatalf("tree of the old image = %v", from)
	}
	p := devsync.Diff(from, to)
	if strings.Join(p.Put, " ") != "fn link new new/run.sh" || strings.Join(p.Remove, " ") != "old/x old lib/gone.js" {
		t.Fatalf("patch = %+v", p)
	}

	// The pod's folder holds the old image's files. Its backup folder is
	// on the same mount, or (as in a pod: two volumes) on another one.
	backups := map[string]func(t *testing.T) string{
		"same mount": func(t *testing.T) string { return t.TempDir() },
		"another mount": func(t *testing.T) string {
			shm, err := os.MkdirTemp("/dev/shm", "devsync")
			if err != nil || sameDevice(shm, t.TempDir()) {
				t.Skip("no /dev/shm on a mount of its own here")
			}
			t.Cleanup(func() { os.RemoveAll(shm) })
			return shm
		},
	}
	for name, mk := range backups {
		t.Run(name, func(t *testing.T) { applyUndoCommit(t, old, next, p, mk(t)) })
	}
}

// sameDevice reports whether a and b are on one file system.
func sameDevice(a, b string) bool {
	var sa, sb syscall.Stat_t
	return syscall.Stat(a, &sa) == nil && syscall.Stat(b, &sb) == nil && sa.Dev == sb.Dev
}

// applyUndoCommit applies the patch p from old to next in a folder with
// old's files, undoes it, applies it again and keeps it.
func applyUndoCommit(t *testing.T, old, next v1.Image, p devsync.Patch, backup string) {
	dir := t.TempDir()
	writeTree(t, dir, old)
	before := devsynctest.Files(t, dir)
	var patch bytes.Buffer
	if err := devsync.WritePatch(&patch, Folder{next, "/app"}, p); err != nil {
		t.Fatal(err)
	}
	applied, err := devsync.Apply(dir, backup, bytes.NewReader(patch.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"fn": "v2", "lib": "/", "lib/a.js": "a1", "link": "->lib/a.js", "same.txt": "same",
		"new": "/", "new/run.sh": "#!/bin/sh"}
	if got := devsynctest.Files(t, dir); !maps.Equal(got, want) {
		t.Errorf("after Apply: %v\nwant %v", got, want)
	}
	if fi, err := os.Stat(filepath.Join(dir, "new/run.sh")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("run.sh mode = %v (%v), want 0755", fi.Mode(), err)
	}
	if err := applied.Undo(); err != nil {
		t.Fatal(err)
	}
	if got := devsynctest.Files(t, dir); !maps.Equal(got, before) {
		t.Errorf("after Undo: %v\nwant %v", got, before)
	}

	// Applied again and kept: the backup folder is empty after Commit.
	applied, err = devsync.Apply(dir, backup, bytes.NewReader(patch.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if err := applied.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := devsynctest.Files(t, dir); !maps.Equal(got, want) {
		t.Errorf("after Commit: %v", got)
	}
	if left := devsynctest.Files(t, backup); len(left) != 0 {
		t.Errorf("backup keeps %v", left)
	}
}

// writeTree writes the app folder of img into dir, as the pod's first
// copy does.
func writeTree(t *testing.T, dir string, img v1.Image) {
	t.Helper()
	tree, err := devsync.TreeOf(Folder{img, "/app"})
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for n := range tree {
		all = append(all, n)
	}
	var buf bytes.Buffer
	if err := devsync.WritePatch(&buf, Folder{img, "/app"}, devsync.Patch{Put: all}); err != nil {
		t.Fatal(err)
	}
	a, err := devsync.Apply(dir, t.TempDir(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestSameOutside(t *testing.T) {
	base := layer(t, file{"etc/", ""}, file{"etc/os-release", "debian"})
	app := func(v string) v1.Layer { return layer(t, file{"app/", ""}, file{"app/fn", v}) }
	withEnv := func(img v1.Image, env ...string) v1.Image {
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.Config.Env = env
		out, err := mutate.ConfigFile(img, cf)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	old := image(t, base, app("v1"))
	tests := []struct {
		name string
		to   v1.Image
		want bool
	}{
		{"the app layer changed", image(t, base, app("v2")), true},
		{"an app layer more", image(t, base, app("v1"), layer(t, file{"app/extra", "x"})), true},
		{"the base changed", image(t, layer(t, file{"etc/os-release", "trixie"}), app("v2")), false},
		{"a layer writes outside the app folder", image(t, base, app("v2"), layer(t, file{"app/x", "x"}, file{"usr/bin/tool", "x"})), false},
		{"the environment changed", withEnv(image(t, base, app("v2")), "A=1"), false},
	}
	for _, tc := range tests {
		got, err := SameOutside(old, tc.to, "/app")
		if err != nil || got != tc.want {
			t.Errorf("%s: SameOutside = %t, %v; want %t", tc.name, got, err, tc.want)
		}
	}
}
