package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Owners of the files skiff writes into images.
const (
	RootID    = 0
	NonRootID = 65532
)

// entry is one file, folder or symlink of a layer.
type entry struct {
	Path     string // absolute path in the image, slash separated, no trailing slash
	Mode     fs.FileMode
	Data     []byte // contents of a regular file read into memory
	Src      string // or a host file to read the contents from
	Link     string // symlink target
	UID, GID int
}

// layerWriter collects the entries of a layer and writes them as a
// reproducible tarball: sorted, with fixed times, owners and modes, and the
// missing parent folders added.
type layerWriter struct {
	entries map[string]*entry
	epoch   time.Time
}

func newLayerWriter(epoch time.Time) *layerWriter {
	return &layerWriter{entries: map[string]*entry{}, epoch: epoch}
}

// File adds a regular file with the given contents.
func (w *layerWriter) File(p string, data []byte, mode fs.FileMode) {
	w.add(&entry{Path: p, Data: data, Mode: normMode(mode)})
}

// HostFile adds a regular file whose contents are read from src when the
// layer is written.
func (w *layerWriter) HostFile(p, src string, mode fs.FileMode) {
	w.add(&entry{Path: p, Src: src, Mode: normMode(mode)})
}

// Dir adds a folder. The setuid, setgid and sticky bits of mode are kept
// (a sticky /tmp).
func (w *layerWriter) Dir(p string, mode fs.FileMode, uid, gid int) {
	w.add(&entry{Path: p, Mode: fs.ModeDir | mode&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky), UID: uid, GID: gid})
}

// Symlink adds a symbolic link.
func (w *layerWriter) Symlink(p, target string) {
	w.add(&entry{Path: p, Link: target, Mode: fs.ModeSymlink | 0o777})
}

func (w *layerWriter) add(e *entry) {
	e.Path = path.Clean("/" + e.Path)
	w.entries[e.Path] = e
}

// Tree adds the folder src of the host at dst, skipping what skip says.
// Owners become root and modes are normalised: folders 0755, files 0644 or
// 0755 when the host file is executable. Special files are refused.
func (w *layerWriter) Tree(dst, src string, skip skipFunc) error {
	return walkSource(src, skip, func(p, rel string, d fs.DirEntry) error {
		if rel == "." {
			return nil
		}
		target := path.Join(dst, rel)
		switch t := d.Type(); {
		case t.IsDir():
			w.Dir(target, 0o755, RootID, RootID)
		case t&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			w.Symlink(target, link)
		default:
			info, err := d.Info()
			if err != nil {
				return err
			}
			w.HostFile(target, p, info.Mode())
		}
		return nil
	})
}

func normMode(m fs.FileMode) fs.FileMode {
	if m&0o111 != 0 {
		return 0o755
	}
	return 0o644
}

// tarMode is the Unix mode of a tar header: the permissions and the
// setuid (04000), setgid (02000) and sticky (01000) bits.
func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

// Empty reports whether nothing was added.
func (w *layerWriter) Empty() bool { return len(w.entries) == 0 }

// Tar writes the uncompressed tarball.
func (w *layerWriter) Tar(out io.Writer) error {
	// Add every missing parent folder, owned by root.
	for p := range w.entries {
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if _, ok := w.entries[d]; !ok {
				w.entries[d] = &entry{Path: d, Mode: fs.ModeDir | 0o755}
			}
		}
	}
	paths := make([]string, 0, len(w.entries))
	for p := range w.entries {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	tw := tar.NewWriter(out)
	for _, p := range paths {
		e := w.entries[p]
		hdr := &tar.Header{
			Name:    strings.TrimPrefix(p, "/"),
			Mode:    tarMode(e.Mode),
			Uid:     e.UID,
			Gid:     e.GID,
			ModTime: w.epoch,
			Format:  tar.FormatPAX,
		}
		var data []byte
		switch {
		case e.Mode.IsDir():
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		case e.Mode&fs.ModeSymlink != 0:
			hdr.Typeflag = tar.TypeSymlink
			hdr.Linkname = e.Link
		default:
			hdr.Typeflag = tar.TypeReg
			data = e.Data
			if e.Src != "" {
				var err error
				if data, err = os.ReadFile(e.Src); err != nil {
					return err
				}
			}
			hdr.Size = int64(len(data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("writing %s into the layer: %w", p, err)
		}
		if _, err := tw.Write(data); err != nil {
			return fmt.Errorf("writing %s into the layer: %w", p, err)
		}
	}
	return tw.Close()
}

// Layer writes the tarball, compresses it and returns it as a layer held in
// memory, with the given media type.
func (w *layerWriter) Layer(mt types.MediaType) (v1.Layer, error) {
	var raw bytes.Buffer
	if err := w.Tar(&raw); err != nil {
		return nil, err
	}
	return newMemLayer(raw.Bytes(), mt)
}

// memLayer is a gzip-compressed layer held in memory. Compression uses a
// fixed level so the same tarball always gives the same digest.
type memLayer struct {
	compressed []byte
	raw        []byte
	digest     v1.Hash
	diffID     v1.Hash
	mt         types.MediaType
}

func newMemLayer(raw []byte, mt types.MediaType) (*memLayer, error) {
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return &memLayer{compressed: gz.Bytes(), raw: raw, digest: sha(gz.Bytes()), diffID: sha(raw), mt: mt}, nil
}

func sha(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

func (l *memLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *memLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *memLayer) Size() (int64, error)                { return int64(len(l.compressed)), nil }
func (l *memLayer) MediaType() (types.MediaType, error) { return l.mt, nil }
func (l *memLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.compressed)), nil
}
func (l *memLayer) Uncompressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.raw)), nil
}
