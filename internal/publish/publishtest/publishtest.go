// Package publishtest has the fixtures the tests of package publish and
// its registry client share (tests only).
package publishtest

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/skiffdev/skiff/internal/build"
)

// Ref parses s as an image reference, failing t when it is not one.
func Ref(t testing.TB, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Artifact is a build's output as publishing takes it: a random
// single-platform image (two layers) with an SPDX SBOM.
func Artifact(t testing.TB) *build.Artifact {
	t.Helper()
	img, err := random.Image(256, 2)
	if err != nil {
		t.Fatal(err)
	}
	return &build.Artifact{Image: img, Platforms: []string{"linux/amd64"}, SBOM: []byte(`{"spdxVersion":"SPDX-2.3"}`)}
}
