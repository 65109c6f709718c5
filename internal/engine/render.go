package engine

import (
	"strings"

	"github.com/skiffdev/skiff/internal/project"
)

// RenderConfig is what a render of releases reads.
type RenderConfig struct {
	// Project is resolved for the environment; Root is the folder of
	// skiff.yaml (a workload's own chart/ is there).
	Project *project.Project
	Root    string
	// Workloads are rendered in this order.
	Workloads []project.Workload
	// Images are the workloads' images, by name.
	Images map[string]string
	// Overrides are the user's chart values (-f, --set).
	Overrides map[string]any
}

// Rendered is the YAML of one workload's release.
type Rendered struct {
	Workload string
	Release  string
	// YAML is the manifests in Helm's install order, with a comment saying
	// what they are.
	YAML string
}

// ShortDigest splits an image reference by digest into what comes before
// "@sha256:" and the digest's first 12 hex digits; ok is false when ref
// has no digest.
func ShortDigest(ref string) (repo, short string, ok bool) {
	i := strings.Index(ref, "@sha256:")
	if i < 0 {
		return ref, "", false
	}
	d := ref[i+len("@sha256:"):]
	return ref[:i], d[:min(12, len(d))], true
}
