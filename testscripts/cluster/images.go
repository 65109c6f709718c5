package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// binaryImage describes an image holding one static binary on an empty base.
type binaryImage struct {
	Ref    string   // where to push, e.g. 127.0.0.1:5000/skiff-cluster/pause:v1
	Binary string   // path of the static binary on this machine
	Args   []string // the entrypoint's arguments (the binary is argv[0])
	User   string   // e.g. "65532"; empty for root
}

// buildImage makes the image: one layer with the binary at /<base name>.
func buildImage(bi binaryImage) (v1.Image, error) {
	bin, err := os.ReadFile(bi.Binary)
	if err != nil {
		return nil, err
	}
	target := path.Base(bi.Binary)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(0, 0)
	for _, dir := range []string{"tmp/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o1777, ModTime: mtime}); err != nil {
			return nil, err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: target, Mode: 0o755, Size: int64(len(bin)), ModTime: mtime}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	// Uncompressed: the registry is local, and gzip would take longer than
	// pushing (KEDA's operator alone is 170 MB).
	layer := static.NewLayer(buf.Bytes(), types.OCIUncompressedLayer)
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.AppendLayers(img, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = runtime.GOARCH
	cf.Config.Entrypoint = []string{"/" + target}
	cf.Config.Cmd = bi.Args
	cf.Config.User = bi.User
	cf.Config.Env = []string{"PATH=/"}
	return mutate.ConfigFile(img, cf)
}

// pushImage builds the image and pushes it over plain HTTP.
func pushImage(ctx context.Context, bi binaryImage) error {
	ref, err := name.ParseReference(bi.Ref, name.Insecure)
	if err != nil {
		return err
	}
	img, err := buildImage(bi)
	if err != nil {
		return fmt.Errorf("building image %s: %w", bi.Ref, err)
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("pushing %s: %w", bi.Ref, err)
	}
	return nil
}
