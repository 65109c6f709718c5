// Package devsync moves a new version of a workload's app folder into
// its running pods, for skiff dev: the difference between the files of
// the image the pod runs and those of the image just built (Diff, a
// Patch), written as one tar stream (WritePatch), applied in the pod
// (Apply) by a Supervisor that restarts the workload's process on it and
// puts the old files back when the new version does not get ready.
package devsync

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"reflect"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// Entry is one file, folder or link of an app folder.
type Entry struct {
	Type byte  // a tar type flag
	Mode int64 // permission bits
	// Sum is the SHA-256 of a file's content, or a link's target.
	Sum string
}

// Tree is an app folder: its entries by path relative to it ("fn",
// "lib/util.js"), the folder itself left out.
type Tree map[string]Entry

// manifestName is the first entry of a patch: what to remove.
const manifestName = ".skiff-sync.json"

type manifest struct {
	// From is the version the patch applies to, To the one it makes.
	From   string   `json:"from,omitempty"`
	To     string   `json:"to,omitempty"`
	Remove []string `json:"remove"`
}

// TreeOf reads the folder dir ("/app") of img's file system, as its
// layers stack up.
func TreeOf(img v1.Image, dir string) (Tree, error) {
	t := Tree{}
	err := walk(img, dir, func(rel string, h *tar.Header, r io.Reader) error {
		e := Entry{Type: h.Typeflag, Mode: h.Mode & 0o7777}
		switch h.Typeflag {
		case tar.TypeReg:
			sum := sha256.New()
			if _, err := io.Copy(sum, r); err != nil {
				return err
			}
			e.Sum = hex.EncodeToString(sum.Sum(nil))
		case tar.TypeSymlink, tar.TypeLink:
			e.Sum = h.Linkname
		}
		t[rel] = e
		return nil
	})
	return t, err
}

// walk calls fn for each entry under dir of img's flattened file system.
func walk(img v1.Image, dir string, fn func(rel string, h *tar.Header, r io.Reader) error) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	prefix := strings.Trim(dir, "/") + "/"
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the image's files: %w", err)
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		rel, ok := strings.CutPrefix(name, prefix)
		if !ok || rel == "" {
			continue
		}
		if err := fn(rel, h, tr); err != nil {
			return err
		}
	}
}

// Patch turns one app folder into another.
type Patch struct {
	// From and To name the versions (the images' references): a pod
	// whose folder is not at From refuses the patch.
	From, To string
	// Put are the entries that are new or changed, parents first.
	Put []string
	// Remove are those that are gone, children first.
	Remove []string
}

// Empty reports whether the patch changes nothing.
func (p Patch) Empty() bool { return len(p.Put) == 0 && len(p.Remove) == 0 }

// Diff is the patch that turns from into to.
func Diff(from, to Tree) Patch {
	var p Patch
	for name, e := range to {
		if old, ok := from[name]; !ok || old != e {
			p.Put = append(p.Put, name)
		}
	}
	for name := range from {
		if _, ok := to[name]; !ok {
			p.Remove = append(p.Remove, name)
		}
	}
	slices.Sort(p.Put)
	slices.Sort(p.Remove)
	slices.Reverse(p.Remove)
	return p
}

// WritePatch writes p as a tar stream: a manifest of what to remove, then
// the entries to put, with their content, from the folder dir of img.
func WritePatch(w io.Writer, img v1.Image, dir string, p Patch) error {
	tw := tar.NewWriter(w)
	m, err := json.Marshal(manifest{From: p.From, To: p.To, Remove: p.Remove})
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: manifestName, Mode: 0o644, Size: int64(len(m)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(m); err != nil {
		return err
	}
	put := map[string]bool{}
	for _, n := range p.Put {
		put[n] = true
	}
	err = walk(img, dir, func(rel string, h *tar.Header, r io.Reader) error {
		if !put[rel] {
			return nil
		}
		delete(put, rel)
		hdr := &tar.Header{Name: rel, Mode: h.Mode & 0o7777, Typeflag: h.Typeflag, Linkname: h.Linkname}
		if h.Typeflag == tar.TypeLink {
			// A hard link names its target by its path in the image.
			hdr.Linkname = strings.TrimPrefix(strings.TrimPrefix(path.Clean("/"+h.Linkname), "/"), strings.Trim(dir, "/")+"/")
		}
		if h.Typeflag == tar.TypeReg {
			hdr.Size = h.Size
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			_, err := io.Copy(tw, r)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(put) > 0 {
		return fmt.Errorf("%d entries of the patch are not in the image", len(put))
	}
	return tw.Close()
}

// SameOutside reports whether two images differ in their folder dir
// alone: the same configuration (entrypoint, environment, user, ...), and
// every layer one of them has and the other lacks holds nothing outside
// dir. Only then can a pod running from becomes one running to by a
// patch of dir.
func SameOutside(from, to v1.Image, dir string) (bool, error) {
	fc, err := from.ConfigFile()
	if err != nil {
		return false, err
	}
	tc, err := to.ConfigFile()
	if err != nil {
		return false, err
	}
	if !reflect.DeepEqual(fc.Config, tc.Config) || fc.OS != tc.OS || fc.Architecture != tc.Architecture {
		return false, nil
	}
	fl, err := layerSet(from)
	if err != nil {
		return false, err
	}
	tl, err := layerSet(to)
	if err != nil {
		return false, err
	}
	prefix := strings.Trim(dir, "/") + "/"
	for _, pair := range [][2]map[v1.Hash]v1.Layer{{fl, tl}, {tl, fl}} {
		for h, l := range pair[0] {
			if _, ok := pair[1][h]; ok {
				continue
			}
			inside, err := within(l, prefix)
			if err != nil || !inside {
				return false, err
			}
		}
	}
	return true, nil
}

func layerSet(img v1.Image) (map[v1.Hash]v1.Layer, error) {
	ls, err := img.Layers()
	if err != nil {
		return nil, err
	}
	m := map[v1.Hash]v1.Layer{}
	for _, l := range ls {
		h, err := l.DiffID()
		if err != nil {
			return nil, err
		}
		m[h] = l
	}
	return m, nil
}

// within reports whether every entry of l is prefix (a folder, "app/")
// or under it.
func within(l v1.Layer, prefix string) (bool, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return false, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if name+"/" != prefix && !strings.HasPrefix(name, prefix) {
			return false, nil
		}
	}
}
