package build

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
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

// Subject is what an SBOM describes: an image, or a release binary.
type Subject struct {
	// Name names the document and the subject, e.g. "shop/orders".
	Name string
	// ID is the subject's SPDX id, e.g. "SPDXRef-Image".
	ID      string
	Version string
	// SHA256 is the hex digest of the subject.
	SHA256 string
	// Purpose is SPDX's primary package purpose: CONTAINER, APPLICATION, ...
	Purpose string
	PURL    string
	// Created is the creation time written into the document; use a fixed
	// time (the build's epoch) for reproducible documents.
	Created time.Time
	// Tool is the skiff version that wrote the document.
	Tool string
	// Base is what the subject descends from (a base image), if anything.
	Base *Package
}

// SPDX writes the SPDX 2.3 JSON document of a subject made of pkgs. It
// depends only on its inputs: the document namespace is derived from the
// content, not from a random id.
func SPDX(sub Subject, pkgs []Package) ([]byte, error) {
	tool := sub.Tool
	if tool == "" {
		tool = "dev"
	}
	doc := spdxDoc{
		SPDXVersion: "SPDX-2.3",
		DataLicense: "CC0-1.0",
		SPDXID:      "SPDXRef-DOCUMENT",
		Name:        sub.Name,
		CreationInfo: spdxCreation{
			Created:  sub.Created.UTC().Format(time.RFC3339),
			Creators: []string{"Tool: skiff-" + tool},
		},
	}
	main := spdxPackage{
		SPDXID: sub.ID, Name: path.Base(sub.Name), VersionInfo: sub.Version,
		DownloadLocation: "NOASSERTION", PrimaryPurpose: sub.Purpose,
	}
	if sub.SHA256 != "" {
		main.Checksums = []spdxSum{{Algorithm: "SHA256", Value: sub.SHA256}}
	}
	if sub.PURL != "" {
		main.ExternalRefs = []spdxExtRefs{{"PACKAGE-MANAGER", "purl", sub.PURL}}
	}
	doc.Packages = append(doc.Packages, main)
	doc.Relationships = append(doc.Relationships, spdxRelations{"SPDXRef-DOCUMENT", "DESCRIBES", main.SPDXID})
	if b := sub.Base; b != nil {
		base := spdxPackage{SPDXID: "SPDXRef-Base", Name: b.Name, VersionInfo: b.Version,
			DownloadLocation: "NOASSERTION", PrimaryPurpose: "CONTAINER"}
		doc.Packages = append(doc.Packages, base)
		doc.Relationships = append(doc.Relationships, spdxRelations{main.SPDXID, "DESCENDANT_OF", base.SPDXID})
	}
	sorted := append([]Package(nil), pkgs...)
	sort.Slice(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		return a.PURL > b.PURL // of duplicates, the one with a PURL is kept
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
		doc.Relationships = append(doc.Relationships, spdxRelations{main.SPDXID, "CONTAINS", id})
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	doc.DocumentNamespace = fmt.Sprintf("https://spdx.org/spdxdocs/skiff/%s-%s", sub.Name, hex.EncodeToString(sum[:16]))
	return json.MarshalIndent(doc, "", "  ")
}

// sbom writes the SPDX document of an image artifact.
func sbom(req Request, a *Artifact, pkgs []Package, version string) ([]byte, error) {
	d, err := a.Digest()
	if err != nil {
		return nil, err
	}
	sub := Subject{
		Name: req.Project + "/" + req.Workload.Name, ID: "SPDXRef-Image", Version: d.String(), SHA256: d.Hex,
		Purpose: "CONTAINER", PURL: "pkg:oci/" + req.Workload.Name + "@" + d.String(), Created: req.Epoch, Tool: version,
	}
	if a.Base.Ref != Scratch {
		sub.Base = &Package{Name: a.Base.Ref, Version: a.Base.Digest}
	}
	return SPDX(sub, pkgs)
}
