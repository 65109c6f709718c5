// Package imagedir reads a folder of an image's file system, its layers
// stacked up: skiff dev's side of a live sync, which compares the app
// folders of the image the pods run and of the one just built
// (devsync.TreeOf, devsync.Diff) and writes the patch from one to the other
// (devsync.WritePatch). The pod's side, package devsync in skiff-relay,
// links no image library.
package imagedir

import (
	"archive/tar"
	"fmt"
	"io"
	"path"
	"reflect"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// Folder is the folder Dir ("/app") of Image's file system: a
// devsync.Folder.
type Folder struct {
	Image v1.Image
	Dir   string
}

// Walk calls fn for each entry under the folder, in the order of the
// image's flattened file system, with its path relative to the folder (a
// hard link's target too), its header and a file's content.
func (f Folder) Walk(fn func(rel string, h *tar.Header, r io.Reader) error) error {
	rc := mutate.Extract(f.Image)
	defer rc.Close()
	prefix := strings.Trim(f.Dir, "/") + "/"
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the image's files: %w", err)
		}
		rel, ok := strings.CutPrefix(clean(h.Name), prefix)
		if !ok || rel == "" {
			continue
		}
		if h.Typeflag == tar.TypeLink {
			// A hard link names its target by its path in the image.
			h.Linkname = strings.TrimPrefix(clean(h.Linkname), prefix)
		}
		if err := fn(rel, h, tr); err != nil {
			return err
		}
	}
}

// clean is name as a path from the image's root, without the leading /.
func clean(name string) string { return strings.TrimPrefix(path.Clean("/"+name), "/") }

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
		name := clean(h.Name)
		if name+"/" != prefix && !strings.HasPrefix(name, prefix) {
			return false, nil
		}
	}
}
