// Package hostbase makes base images from this machine's own files, for
// tests and benchmarks on machines that can pull no image: an empty
// two-platform index, the host's node, and the host's python3 with its
// standard library, each with the shared libraries ldd lists.
package hostbase

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Bases are the references of the base images Push pushes.
type Bases struct {
	Empty  string // an index of empty linux/amd64 and linux/arm64 images
	Node   string // the host's node and its shared libraries (linux/amd64)
	Python string // the host's python3, its standard library and shared libraries (linux/amd64)
}

// Push builds the base images from the host and pushes them to registry
// (host:port[/path], plain HTTP).
func Push(registry string) (Bases, error) {
	b := Bases{
		Empty:  registry + "/bases/empty:1",
		Node:   registry + "/bases/node:20",
		Python: registry + "/bases/python:3.11",
	}
	path := []string{"PATH=/usr/local/bin:/usr/bin:/bin"}

	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := image(arch, path)
		if err != nil {
			return b, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	if err := push(b.Empty, idx); err != nil {
		return b, err
	}

	node, err := exec.LookPath("node")
	if err != nil {
		return b, err
	}
	node, _ = filepath.EvalSymlinks(node)
	nt := newFSTar()
	nt.addWithDeps(node)
	nt.files["/usr/local/bin/node"] = node
	if err := pushLayered(b.Node, path, nt); err != nil {
		return b, err
	}

	// pyenv's shim is a shell script; ask python where it really is.
	out, err := exec.Command("python3", "-c", "import sys, sysconfig; print(sys.executable); print(sysconfig.get_paths()['stdlib']); print(sys.implementation.cache_tag)").Output()
	if err != nil {
		return b, fmt.Errorf("asking python3 where it is: %w", err)
	}
	lines := strings.Fields(string(out))
	if len(lines) != 3 {
		return b, fmt.Errorf("python3 said %q", out)
	}
	exe, stdlib, tag := lines[0], lines[1], lines[2]
	exe, _ = filepath.EvalSymlinks(exe)
	pt := newFSTar()
	pt.addWithDeps(exe)
	pt.links["/usr/local/bin/python3"] = exe
	if err := pt.addTree(stdlib, func(rel string) bool {
		switch strings.Split(rel, string(filepath.Separator))[0] {
		case "test", "site-packages", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data", "config-3.11-x86_64-linux-gnu":
			return true
		}
		// The standard library's bytecode, which an installed Python has
		// (its `make install` compiles it): without it every start
		// compiles what it imports, 0.3 s more of CPU for a template's
		// server. Not the optimised variants.
		if filepath.Base(filepath.Dir(rel)) == "__pycache__" {
			return !strings.HasSuffix(rel, "."+tag+".pyc")
		}
		return filepath.Base(rel) == "tests"
	}); err != nil {
		return b, err
	}
	return b, pushLayered(b.Python, append(path, "LANG=C.UTF-8"), pt)
}

func pushLayered(ref string, env []string, f *fsTar) error {
	l, err := f.layer()
	if err != nil {
		return err
	}
	img, err := image("amd64", env, l)
	if err != nil {
		return err
	}
	return push(ref, img)
}

// fsTar collects host files into a layer.
type fsTar struct {
	files map[string]string // image path -> host path (regular files)
	links map[string]string // image path -> symlink target
}

func newFSTar() *fsTar { return &fsTar{files: map[string]string{}, links: map[string]string{}} }

// addWithDeps adds a host binary at its own path and at its real path, with
// every shared library ldd lists.
func (f *fsTar) addWithDeps(bin string) {
	f.addFile(bin)
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		return // a static binary or not an ELF file
	}
	re := regexp.MustCompile(`(/\S+)`)
	for _, line := range strings.Split(string(out), "\n") {
		for _, m := range re.FindAllString(line, -1) {
			if _, err := os.Stat(m); err == nil {
				f.addFile(m)
			}
		}
	}
}

func (f *fsTar) addFile(p string) {
	f.files[p] = p
	if real, err := filepath.EvalSymlinks(p); err == nil && real != p {
		f.files[real] = real
	}
}

func (f *fsTar) addTree(root string, skip func(rel string) bool) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
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
				f.addWithDeps(p)
			}
		}
		return nil
	})
}

func (f *fsTar) layer() (v1.Layer, error) {
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
	var errs []error
	for _, d := range dl {
		errs = append(errs, tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(d, "/") + "/", Typeflag: tar.TypeDir, Mode: 0o755}))
	}
	for _, p := range names {
		if target, ok := f.links[p]; ok {
			errs = append(errs, tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(p, "/"), Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}))
			continue
		}
		data, err := os.ReadFile(f.files[p])
		if err != nil {
			return nil, err
		}
		info, err := os.Stat(f.files[p])
		if err != nil {
			return nil, err
		}
		mode := int64(0o644)
		if info.Mode()&0o111 != 0 {
			mode = 0o755
		}
		errs = append(errs, tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(p, "/"), Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(data))}))
		_, err = tw.Write(data)
		errs = append(errs, err)
	}
	errs = append(errs, tw.Close())
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	raw := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }, tarball.WithMediaType(types.OCILayer))
}

func image(arch string, env []string, layers ...v1.Layer) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(img, layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config.Env = env
	return mutate.ConfigFile(img, cf)
}

func push(ref string, t remote.Taggable) error {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return err
	}
	switch v := t.(type) {
	case v1.ImageIndex:
		err = remote.WriteIndex(r, v)
	case v1.Image:
		err = remote.Write(r, v)
	}
	if err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	return nil
}
