package publish

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/skiffdev/skiff/internal/publish/publishtest"
)

func TestLayoutReportsWhatItAlreadyHad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	p := &Layout{Dir: dir}
	a := publishtest.Artifact(t)
	d, _ := a.Digest()
	res, err := p.Publish(context.Background(), a, "hello", "latest")
	must(t, err)
	if !res.Uploaded || res.Reference != "oci:"+dir+":hello:latest" || res.Digest != d.String() {
		t.Fatalf("first publish: %+v; want uploaded, reference oci:DIR:hello:latest (skopeo's syntax) and the digest apart", res)
	}
	res, err = p.Publish(context.Background(), a, "hello", "latest")
	must(t, err)
	if res.Uploaded || res.SBOM != "oci:"+dir+":hello:"+SBOMTag(d) {
		t.Fatalf("the same artifact again: %+v; want uploaded=false and the SBOM reference", res)
	}
	res, err = p.Publish(context.Background(), a, "hello", "v2")
	must(t, err)
	if !res.Uploaded {
		t.Fatal("a new tag was reported as already there")
	}
}

func TestTarballReferenceUploadedAndSBOMAfterClose(t *testing.T) {
	file := filepath.Join(t.TempDir(), "app.tar")
	a := publishtest.Artifact(t)
	// An OCI manifest, as skiff builds: the tarball keeps none of it.
	a.Image = mutate.MediaType(a.Image, types.OCIManifestSchema1)
	publish := func() *Result {
		t.Helper()
		p := &Tarball{File: file, Prefix: "registry.example/team"}
		res, err := p.Publish(context.Background(), a, "hello", "v1")
		must(t, err)
		want := filepath.Join(filepath.Dir(file), "app-hello.spdx.json")
		if res.SBOM != want || res.SBOM != SBOMFile(file, "hello") {
			t.Fatalf("SBOM file %s, want %s", res.SBOM, want)
		}
		if _, err := os.Stat(res.SBOM); !errors.Is(err, fs.ErrNotExist) {
			must(t, os.Remove(res.SBOM))
			t.Fatal("the SBOM was written before the tarball, by Publish")
		}
		must(t, p.Close())
		if data, err := os.ReadFile(res.SBOM); err != nil || !strings.Contains(string(data), "SPDX-2.3") {
			t.Fatalf("SBOM after Close: %v", err)
		}
		must(t, os.Remove(res.SBOM))
		return res
	}
	res := publish()
	if res.Reference != "docker-archive:"+file+":registry.example/team/hello:v1" || !res.Uploaded {
		t.Fatalf("first write: %+v; want docker-archive:FILE:NAME:TAG, uploaded", res)
	}
	if res = publish(); res.Uploaded {
		t.Fatalf("the tarball already held the image under the tag: %+v", res)
	}
}
