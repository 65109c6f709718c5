// Package publish puts built images somewhere: a registry, an OCI image
// layout folder, or a tarball that `docker load` and skopeo read. It also
// holds the local build cache, an OCI layout in the user's cache folder.
package publish

import (
	"context"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/skiffdev/skiff/internal/build"
)

// Interface stores built artifacts. Publish may be called from several
// goroutines at once.
type Interface interface {
	// Publish stores a under the image name (a repository path such as
	// "shop/orders") and tag, and returns where it went.
	Publish(ctx context.Context, a *build.Artifact, name, tag string) (*Result, error)
	// Close finishes what Publish started (the tarball is written here).
	Close() error
}

// Result says where an artifact went.
type Result struct {
	// Reference is where the artifact went, in the syntax of skopeo and the
	// containers tools: REGISTRY/NAME:TAG@DIGEST for a registry,
	// oci:DIR:NAME:TAG for a layout, docker-archive:FILE:NAME:TAG for a
	// tarball.
	Reference string `json:"reference"`
	// Digest is the manifest digest.
	Digest string `json:"digest"`
	// SBOM is where the SBOM went (a reference or a file), if anywhere.
	SBOM string `json:"sbom,omitempty"`
	// Uploaded is false when the destination already had everything.
	Uploaded bool `json:"uploaded"`
}

// SBOMTag is the tag under which the SBOM of the manifest with digest d is
// stored, following cosign's convention: "sha256-<hex>.sbom".
func SBOMTag(d v1.Hash) string {
	return d.Algorithm + "-" + d.Hex + ".sbom"
}

// SBOMImage wraps an SPDX document in an image the way `cosign attach
// sbom` does: one layer of media type text/spdx+json.
func SBOMImage(doc []byte) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	return mutate.AppendLayers(img, static.NewLayer(doc, build.SBOMMediaType))
}

// ImageName is the image name of a workload under a registry prefix, e.g.
// "registry.example.com/team" and "orders" give "registry.example.com/team/orders".
func ImageName(prefix, workload string) string {
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix == "" {
		return workload
	}
	return prefix + "/" + workload
}

// ParseDest parses a --dest value: "oci:DIR", "tar:FILE" or "registry".
func ParseDest(s string) (kind, path string, err error) {
	if s == "registry" {
		return "registry", "", nil
	}
	kind, path, ok := strings.Cut(s, ":")
	if !ok || path == "" || (kind != "oci" && kind != "tar") {
		return "", "", fmt.Errorf("--dest %q is not a destination; use oci:DIR, tar:FILE or registry", s)
	}
	return kind, path, nil
}

// PlainHTTPError says a registry would be reached over plain HTTP, which
// was not allowed for its host.
type PlainHTTPError struct{ Host string }

func (e *PlainHTTPError) Error() string {
	return fmt.Sprintf("refusing plain HTTP to %s, which was not allowed as an insecure registry", e.Host)
}
