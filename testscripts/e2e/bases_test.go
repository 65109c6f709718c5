//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// bases are the references of the base images the tests push, since none
// can be pulled on these machines.
type bases struct {
	Empty  string // an index of empty linux/amd64 and linux/arm64 images
	Node   string // the host's node and its shared libraries
	Python string // the host's python3, its standard library and shared libraries
}

// fsTar collects host files into a layer.
type fsTar struct {
	files map[string]string // image path -> host path (regular files)
	links map[string]string // image path -> symlink target
}

func newFSTar() *fsTar { return &fsTar{files: map[string]string{}, links: map[string]string{}} }

// addWithDeps adds a host binary at its own path and at its real path, with
// every shared library ldd lists.
func (f *fsTar) addWithDeps(t *testing.T, bin string) {
	t.Helper()
	f.addFile(t, bin)
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		return // a static binary or not an ELF file
	}
	re := regexp.MustCompile(`(/\S+)`)
	for _, line := range strings.Split(string(out), "\n") {
		for _, m := range re.FindAllString(line, -1) {
			if _, err := os.Stat(m); err == nil {
				f.addFile(t, m)
			}
		}
	}
}

func (f *fsTar) addFile(t *testing.T, p string) {
	t.Helper()
	f.files[p] = p
	if real, err := filepath.EvalSymlinks(p); err == nil && real != p {
		f.files[real] = real
	}
}

func (f *fsTar) addTree(t *testing.T, root string, skip func(rel string) bool) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel != "." && skip(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			f.links[p] = target
		case d.Type().IsRegular():
			f.files[p] = p
			if strings.HasSuffix(p, ".so") {
				f.addWithDeps(t, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fsTar) layer(t *testing.T) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	var names []string
	for p := range f.files {
		names = append(names, p)
	}
	for p := range f.links {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		for d := filepath.Dir(p); d != "/"; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	var dl []string
	for d := range dirs {
		dl = append(dl, d)
	}
	sort.Strings(dl)
	for _, d := range dl {
		must(t, tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(d, "/") + "/", Typeflag: tar.TypeDir, Mode: 0o755}))
	}
	for _, p := range names {
		if target, ok := f.links[p]; ok {
			must(t, tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(p, "/"), Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}))
			continue
		}
		data, err := os.ReadFile(f.files[p])
		must(t, err)
		info, err := os.Stat(f.files[p])
		must(t, err)
		mode := int64(0o644)
		if info.Mode()&0o111 != 0 {
			mode = 0o755
		}
		must(t, tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(p, "/"), Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(data))}))
		_, err = tw.Write(data)
		must(t, err)
	}
	must(t, tw.Close())
	raw := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }, tarball.WithMediaType(types.OCILayer))
	must(t, err)
	return l
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func baseImage(t *testing.T, arch string, env []string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(img, layers...)
	must(t, err)
	cf, err := img.ConfigFile()
	must(t, err)
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config.Env = env
	img, err = mutate.ConfigFile(img, cf)
	must(t, err)
	return img
}

func push(t *testing.T, ref string, t2 remote.Taggable) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	must(t, err)
	switch v := t2.(type) {
	case v1.ImageIndex:
		must(t, remote.WriteIndex(r, v))
	case v1.Image:
		must(t, remote.Write(r, v))
	}
}

// pushBases builds the base images from the host and pushes them.
func pushBases(t *testing.T, registry string) bases {
	t.Helper()
	b := bases{
		Empty:  registry + "/bases/empty:1",
		Node:   registry + "/bases/node:20",
		Python: registry + "/bases/python:3.11",
	}
	path := []string{"PATH=/usr/local/bin:/usr/bin:/bin"}

	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range []string{"amd64", "arm64"} {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: baseImage(t, arch, path),
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	push(t, b.Empty, idx)

	node, err := exec.LookPath("node")
	must(t, err)
	node, _ = filepath.EvalSymlinks(node)
	nt := newFSTar()
	nt.addWithDeps(t, node)
	nt.files["/usr/local/bin/node"] = node
	push(t, b.Node, baseImage(t, "amd64", path, nt.layer(t)))

	// pyenv's shim is a shell script; ask python where it really is.
	out, err := exec.Command("python3", "-c", "import sys, sysconfig; print(sys.executable); print(sysconfig.get_paths()['stdlib'])").Output()
	must(t, err)
	lines := strings.Fields(string(out))
	exe, stdlib := lines[0], lines[1]
	exe, _ = filepath.EvalSymlinks(exe)
	pt := newFSTar()
	pt.addWithDeps(t, exe)
	pt.links["/usr/local/bin/python3"] = exe
	pt.addTree(t, stdlib, func(rel string) bool {
		switch strings.Split(rel, string(filepath.Separator))[0] {
		case "test", "site-packages", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data", "config-3.11-x86_64-linux-gnu":
			return true
		}
		return filepath.Base(rel) == "__pycache__" || filepath.Base(rel) == "tests"
	})
	push(t, b.Python, baseImage(t, "amd64", append(path, "LANG=C.UTF-8"), pt.layer(t)))
	return b
}
