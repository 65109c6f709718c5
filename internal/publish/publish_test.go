package publish

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/skiffdev/skiff/internal/build"
	"github.com/skiffdev/skiff/internal/publish/publishtest"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestLayoutReplacesTheTag(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	p := &Layout{Dir: dir}
	a1, a2 := publishtest.Artifact(t), publishtest.Artifact(t)
	_, err := p.Publish(context.Background(), a1, "hello", "latest")
	must(t, err)
	res, err := p.Publish(context.Background(), a2, "hello", "latest")
	must(t, err)
	lp, err := layout.FromPath(dir)
	must(t, err)
	idx, err := lp.ImageIndex()
	must(t, err)
	im, err := idx.IndexManifest()
	must(t, err)
	d2, _ := a2.Digest()
	names := map[string]v1.Hash{}
	for _, m := range im.Manifests {
		names[m.Annotations[RefNameAnnotation]] = m.Digest
	}
	if len(names) != 2 || names["hello:latest"] != d2 || res.SBOM == "" {
		t.Fatalf("index.json names %v, want hello:latest -> %s and its SBOM", names, d2)
	}
	if _, ok := names["hello:"+SBOMTag(d2)]; !ok {
		t.Fatalf("no SBOM entry in %v", names)
	}
}

func TestLayoutRefusesAForeignFolder(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644))
	_, err := (&Layout{Dir: dir}).Publish(context.Background(), publishtest.Artifact(t), "hello", "latest")
	if err == nil || !strings.Contains(err.Error(), "not an OCI image layout") {
		t.Fatalf("got %v", err)
	}
}

func TestTarballWritesADockerArchive(t *testing.T) {
	file := filepath.Join(t.TempDir(), "img.tar")
	p := &Tarball{File: file, Prefix: "registry.example/team"}
	a := publishtest.Artifact(t)
	res, err := p.Publish(context.Background(), a, "hello", "v1")
	must(t, err)
	must(t, p.Close())
	tag, _ := name.NewTag("registry.example/team/hello:v1")
	img, err := tarball.ImageFromPath(file, &tag)
	must(t, err)
	got, _ := img.Digest()
	want, _ := a.Digest()
	if got != want {
		t.Fatalf("tarball image %s, want %s", got, want)
	}
	if data, err := os.ReadFile(res.SBOM); err != nil || !strings.Contains(string(data), "SPDX-2.3") {
		t.Fatalf("SBOM next to the tarball: %v", err)
	}
	idx, err := random.Index(64, 1, 2)
	must(t, err)
	if _, err := p.Publish(context.Background(), &build.Artifact{Index: idx}, "multi", "v1"); err == nil {
		t.Fatal("an index was accepted into a tarball")
	}
}

func TestCacheRoundTrip(t *testing.T) {
	c := &Cache{Dir: t.TempDir()}
	ctx := context.Background()
	if a, err := c.Get(ctx, "k"); a != nil || err != nil {
		t.Fatalf("empty cache: %v %v", a, err)
	}
	idx, err := random.Index(64, 1, 2)
	must(t, err)
	in := &build.Artifact{Index: idx, Platforms: []string{"linux/amd64", "linux/arm64"}, SBOM: []byte("{}"),
		Base: build.BaseInfo{Ref: "scratch", Digest: "sha256:00"}}
	must(t, c.Put(ctx, "k", in))
	out, err := c.Get(ctx, "k")
	must(t, err)
	if out == nil || out.Index == nil || string(out.SBOM) != "{}" || out.Base != in.Base {
		t.Fatalf("got %+v", out)
	}
	dIn, _ := in.Digest()
	dOut, _ := out.Digest()
	if dIn != dOut {
		t.Fatalf("digest %s, want %s", dOut, dIn)
	}
}

// A file that is not an image tarball (nor an SBOM, next to it) is left as
// it was, unless Force.
func TestTarballRefusesAForeignFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "notes.tar")
	must(t, os.WriteFile(file, []byte("my notes"), 0o644))
	_, err := (&Tarball{File: file}).Publish(context.Background(), publishtest.Artifact(t), "hello", "v1")
	var foreign *ForeignFileError
	if !errors.As(err, &foreign) || foreign.File != file {
		t.Fatalf("got %v, want a ForeignFileError for %s", err, file)
	}
	if data, _ := os.ReadFile(file); string(data) != "my notes" {
		t.Fatalf("the file was changed: %q", data)
	}

	// An image tarball is replaced; so is an SBOM skiff wrote. Not a
	// foreign file where the SBOM goes.
	good := filepath.Join(dir, "img.tar")
	p := &Tarball{File: good}
	_, err = p.Publish(context.Background(), publishtest.Artifact(t), "hello", "v1")
	must(t, err)
	must(t, p.Close())
	p = &Tarball{File: good}
	_, err = p.Publish(context.Background(), publishtest.Artifact(t), "hello", "v2")
	must(t, err)
	must(t, os.WriteFile(SBOMFile(good, "hello"), []byte("mine"), 0o644))
	_, err = (&Tarball{File: good}).Publish(context.Background(), publishtest.Artifact(t), "hello", "v3")
	if !errors.As(err, &foreign) || foreign.File != SBOMFile(good, "hello") {
		t.Fatalf("got %v, want a ForeignFileError for the SBOM file", err)
	}

	p = &Tarball{File: file, Force: true}
	_, err = p.Publish(context.Background(), publishtest.Artifact(t), "hello", "v1")
	must(t, err)
	must(t, p.Close())
}
