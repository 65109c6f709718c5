package build

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"time"
)

// SBOMMediaType is the media type of the SPDX JSON documents skiff writes.
const SBOMMediaType = "text/spdx+json"

// Package is one component recorded in the SBOM.
type Package struct {
	Name    string
	Version string
	// PURL is the package URL (pkg:golang/..., pkg:npm/..., pkg:pypi/...).
	PURL string
}

type spdxDoc struct {
	SPDXVersion       string          `json:"spdxVersion"`
	DataLicense       string          `json:"dataLicense"`
	SPDXID            string          `json:"SPDXID"`
	Name              string          `json:"name"`
	DocumentNamespace string          `json:"documentNamespace"`
	CreationInfo      spdxCreation    `json:"creationInfo"`
	Packages          []spdxPackage   `json:"packages"`
	Relationships     []spdxRelations `json:"relationships"`
}

type spdxCreation struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	SPDXID           string        `json:"SPDXID"`
	Name             string        `json:"name"`
	VersionInfo      string        `json:"versionInfo,omitempty"`
	DownloadLocation string        `json:"downloadLocation"`
	FilesAnalyzed    bool          `json:"filesAnalyzed"`
	PrimaryPurpose   string        `json:"primaryPackagePurpose,omitempty"`
	Checksums        []spdxSum     `json:"checksums,omitempty"`
	ExternalRefs     []spdxExtRefs `json:"externalRefs,omitempty"`
}

type spdxSum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"checksumValue"`
}

type spdxExtRefs struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
}

type spdxRelations struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

var spdxIDUnsafe = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

// sbom writes the SPDX 2.3 JSON document of an artifact. It depends only
// on its inputs: the document namespace is derived from the content, and
// the creation time is the build's epoch.
func sbom(req Request, a *Artifact, pkgs []Package, version string) ([]byte, error) {
	d, err := a.Digest()
	if err != nil {
		return nil, err
	}
	if version == "" {
		version = "dev"
	}
	doc := spdxDoc{
		SPDXVersion: "SPDX-2.3",
		DataLicense: "CC0-1.0",
		SPDXID:      "SPDXRef-DOCUMENT",
		Name:        req.Project + "/" + req.Workload.Name,
		CreationInfo: spdxCreation{
			Created:  req.Epoch.UTC().Format(time.RFC3339),
			Creators: []string{"Tool: skiff-" + version},
		},
	}
	image := spdxPackage{
		SPDXID: "SPDXRef-Image", Name: req.Workload.Name, VersionInfo: d.String(),
		DownloadLocation: "NOASSERTION", PrimaryPurpose: "CONTAINER",
		Checksums:    []spdxSum{{Algorithm: "SHA256", Value: d.Hex}},
		ExternalRefs: []spdxExtRefs{{"PACKAGE-MANAGER", "purl", "pkg:oci/" + req.Workload.Name + "@" + d.String()}},
	}
	doc.Packages = append(doc.Packages, image)
	doc.Relationships = append(doc.Relationships, spdxRelations{"SPDXRef-DOCUMENT", "DESCRIBES", image.SPDXID})
	if a.Base.Ref != Scratch {
		base := spdxPackage{SPDXID: "SPDXRef-Base", Name: a.Base.Ref, VersionInfo: a.Base.Digest,
			DownloadLocation: "NOASSERTION", PrimaryPurpose: "CONTAINER"}
		doc.Packages = append(doc.Packages, base)
		doc.Relationships = append(doc.Relationships, spdxRelations{image.SPDXID, "DESCENDANT_OF", base.SPDXID})
	}
	sorted := append([]Package(nil), pkgs...)
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].Name != sorted[j].Name {
			return sorted[i].Name < sorted[j].Name
		}
		return sorted[i].Version < sorted[j].Version
	})
	seen := map[string]bool{}
	for _, p := range sorted {
		id := "SPDXRef-Package-" + spdxIDUnsafe.ReplaceAllString(p.Name+"-"+p.Version, "-")
		if seen[id] {
			continue
		}
		seen[id] = true
		sp := spdxPackage{SPDXID: id, Name: p.Name, VersionInfo: p.Version, DownloadLocation: "NOASSERTION", PrimaryPurpose: "LIBRARY"}
		if p.PURL != "" {
			sp.ExternalRefs = []spdxExtRefs{{"PACKAGE-MANAGER", "purl", p.PURL}}
		}
		doc.Packages = append(doc.Packages, sp)
		doc.Relationships = append(doc.Relationships, spdxRelations{image.SPDXID, "CONTAINS", id})
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	doc.DocumentNamespace = fmt.Sprintf("https://spdx.org/spdxdocs/skiff/%s/%s-%s", req.Project, req.Workload.Name, hex.EncodeToString(sum[:16]))
	return json.MarshalIndent(doc, "", "  ")
}
