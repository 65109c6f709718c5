// Package devsync moves a new version of a workload's app folder into
// its running pods, for skiff dev: the difference between the files of
// the image the pod runs and those of the image just built (Diff, a
// Patch), written as one tar stream (WritePatch), applied in the pod
// (Apply) by a Supervisor that restarts the workload's process on it and
// puts the old files back when the new version does not get ready. It is
// linked into skiff-relay, so it reads folders through Folder: an image's
// (package devsync/imagedir) on skiff dev's side.
package devsync

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
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

// Folder is an app folder, read in order: Walk calls fn for each entry
// with its path relative to the folder (a hard link's target too), its
// header and a file's content. imagedir.Folder is an image's.
type Folder interface {
	Walk(fn func(rel string, h *tar.Header, r io.Reader) error) error
}

// TreeOf reads the entries of f.
func TreeOf(f Folder) (Tree, error) {
	t := Tree{}
	err := f.Walk(func(rel string, h *tar.Header, r io.Reader) error {
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
// the entries to put, with their content, from f.
func WritePatch(w io.Writer, f Folder, p Patch) error {
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
	err = f.Walk(func(rel string, h *tar.Header, r io.Reader) error {
		if !put[rel] {
			return nil
		}
		delete(put, rel)
		hdr := &tar.Header{Name: rel, Mode: h.Mode & 0o7777, Typeflag: h.Typeflag, Linkname: h.Linkname}
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
		return fmt.Errorf("%d entries of the patch are not in the folder", len(put))
	}
	return tw.Close()
}
