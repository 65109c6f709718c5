package sign

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// What cosign's tag schema stores, and how.
const (
	// SimpleSigningMediaType is the media type of a signature layer: a
	// simple-signing payload naming the signed manifest.
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// DSSEMediaType is the media type of an attestation layer: a DSSE
	// envelope of an in-toto statement.
	DSSEMediaType = "application/vnd.dsse.envelope.v1+json"
	// SignatureAnnotation holds a layer's base64 signature (empty on an
	// attestation, whose signature is inside the envelope).
	SignatureAnnotation = "dev.cosignproject.cosign/signature"
	// PredicateTypeAnnotation names an attestation layer's predicate type.
	PredicateTypeAnnotation = "predicateType"
	// InTotoPayloadType is the DSSE payload type of an in-toto statement.
	InTotoPayloadType = "application/vnd.in-toto+json"
	// StatementType is the in-toto statement version skiff writes.
	StatementType = "https://in-toto.io/Statement/v1"
	// PredicateSPDX is the predicate type of an SPDX SBOM (cosign's --type spdxjson).
	PredicateSPDX = "https://spdx.dev/Document"
	// PredicateSLSA is the predicate type of SLSA v1 provenance (cosign's --type slsaprovenance1).
	PredicateSLSA = "https://slsa.dev/provenance/v1"
	// signatureType is the critical.type of a cosign signature payload.
	signatureType = "cosign container image signature"
)

// SimpleSigning is the payload a signature signs: the containers
// "simple signing" format cosign uses.
type SimpleSigning struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]any `json:"optional"`
}

// SimpleSigningPayload is the payload naming d; it depends on d alone, so
// signing the same digest again gives the same payload.
func SimpleSigningPayload(d name.Digest) ([]byte, error) {
	var p SimpleSigning
	p.Critical.Identity.DockerReference = d.Context().Name()
	p.Critical.Image.DockerManifestDigest = d.DigestStr()
	p.Critical.Type = signatureType
	return json.Marshal(p)
}

// Statement is an in-toto statement about one manifest.
type Statement struct {
	Type          string            `json:"_type"`
	Subject       []StatementTarget `json:"subject"`
	PredicateType string            `json:"predicateType"`
	Predicate     json.RawMessage   `json:"predicate"`
}

// StatementTarget names what a statement is about.
type StatementTarget struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

func NewStatement(d name.Digest, predicateType string, predicate []byte) ([]byte, error) {
	h, err := HashOf(d)
	if err != nil {
		return nil, err
	}
	return json.Marshal(Statement{
		Type:          StatementType,
		Subject:       []StatementTarget{{Name: d.Context().Name(), Digest: map[string]string{h.Algorithm: h.Hex}}},
		PredicateType: predicateType,
		Predicate:     predicate,
	})
}

// SignBytes signs the SHA-256 of msg (ASN.1 DER, as cosign does).
func SignBytes(key *ecdsa.PrivateKey, msg []byte) ([]byte, error) {
	sum := sha256.Sum256(msg)
	return ecdsa.SignASN1(rand.Reader, key, sum[:])
}

func VerifyBytes(pub *ecdsa.PublicKey, msg, sig []byte) bool {
	sum := sha256.Sum256(msg)
	return ecdsa.VerifyASN1(pub, sum[:], sig)
}

// SignEnvelope wraps statement in a DSSE envelope signed with key.
func SignEnvelope(key *ecdsa.PrivateKey, stmt []byte) ([]byte, error) {
	sig, err := SignBytes(key, dsse.PAE(InTotoPayloadType, stmt))
	if err != nil {
		return nil, err
	}
	return json.Marshal(dsse.Envelope{
		PayloadType: InTotoPayloadType,
		Payload:     base64.StdEncoding.EncodeToString(stmt),
		Signatures:  []dsse.Signature{{Sig: base64.StdEncoding.EncodeToString(sig)}},
	})
}

// OpenEnvelope returns the statement of a DSSE envelope when one of its
// signatures verifies with pub.
func OpenEnvelope(pub *ecdsa.PublicKey, data []byte) ([]byte, error) {
	var env dsse.Envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("not a DSSE envelope: %w", err)
	}
	if env.PayloadType != InTotoPayloadType {
		return nil, fmt.Errorf("DSSE payload type %q, not %q", env.PayloadType, InTotoPayloadType)
	}
	stmt, err := env.DecodeB64Payload()
	if err != nil {
		return nil, fmt.Errorf("DSSE payload: %w", err)
	}
	pae := dsse.PAE(env.PayloadType, stmt)
	for _, s := range env.Signatures {
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err == nil && VerifyBytes(pub, pae, sig) {
			return stmt, nil
		}
	}
	return nil, errors.New("no signature of the envelope verifies with the key")
}

// BuildFacts is what the provenance of an image records about its build.
type BuildFacts struct {
	// SkiffVersion is the builder's version.
	SkiffVersion string
	Workload     string
	Kind         string
	Lang         string
	Platforms    []string
	// Base is the base image reference and BaseDigest its digest.
	Base       string
	BaseDigest string
	// Revision is the git commit of the sources ("…-dirty" with local
	// changes), Source the repository's URL; both empty outside git.
	Revision string
	Source   string
	// Inputs is the digest of every input of the build (sources,
	// toolchain, base, platforms): skiff's build cache key.
	Inputs string
	// Lockfiles maps a dependency lock file (go.sum, package-lock.json,
	// ...) to its SHA-256, hex.
	Lockfiles map[string]string
}

// BuildType is the SLSA build type of an image skiff built.
const BuildType = "https://github.com/skiffdev/skiff/blob/main/docs/supply-chain.md#build-type-v1"

// BuilderID identifies skiff as the builder.
const BuilderID = "https://github.com/skiffdev/skiff"

// Provenance is a SLSA v1 provenance predicate.
type Provenance struct {
	BuildDefinition struct {
		BuildType            string               `json:"buildType"`
		ExternalParameters   map[string]any       `json:"externalParameters"`
		ResolvedDependencies []ResourceDescriptor `json:"resolvedDependencies,omitempty"`
	} `json:"buildDefinition"`
	RunDetails struct {
		Builder struct {
			ID      string            `json:"id"`
			Version map[string]string `json:"version,omitempty"`
		} `json:"builder"`
	} `json:"runDetails"`
}

// ResourceDescriptor is an SLSA resource: a dependency of the build.
type ResourceDescriptor struct {
	URI    string            `json:"uri,omitempty"`
	Name   string            `json:"name,omitempty"`
	Digest map[string]string `json:"digest"`
}

// ProvenancePredicate is the SLSA v1 predicate of f. It holds no time stamp: the
// same build gives the same bytes, so a rebuild attests nothing new.
func ProvenancePredicate(f BuildFacts) ([]byte, error) {
	var p Provenance
	p.BuildDefinition.BuildType = BuildType
	p.BuildDefinition.ExternalParameters = map[string]any{
		"workload": f.Workload, "kind": f.Kind, "lang": f.Lang, "platforms": f.Platforms, "base": f.Base,
	}
	deps := []ResourceDescriptor{}
	if f.Revision != "" {
		uri := "git+" + f.Source
		if f.Source == "" {
			uri = ""
		}
		deps = append(deps, ResourceDescriptor{URI: uri, Name: "source", Digest: map[string]string{"gitCommit": f.Revision}})
	}
	if f.Inputs != "" {
		deps = append(deps, ResourceDescriptor{Name: "skiff-build-inputs", Digest: map[string]string{"sha256": f.Inputs}})
	}
	if f.BaseDigest != "" {
		if h, err := ParseHash(f.BaseDigest); err == nil {
			deps = append(deps, ResourceDescriptor{URI: "oci://" + f.Base, Name: "base", Digest: map[string]string{h.Algorithm: h.Hex}})
		}
	}
	names := make([]string, 0, len(f.Lockfiles))
	for n := range f.Lockfiles {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		deps = append(deps, ResourceDescriptor{Name: n, Digest: map[string]string{"sha256": f.Lockfiles[n]}})
	}
	p.BuildDefinition.ResolvedDependencies = deps
	p.RunDetails.Builder.ID = BuilderID
	if f.SkiffVersion != "" {
		p.RunDetails.Builder.Version = map[string]string{"skiff": f.SkiffVersion}
	}
	return json.Marshal(p)
}

// lockfileNames are the dependency lock files whose digests the
// provenance records when a workload folder has them.
var lockfileNames = []string{"go.sum", "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml",
	"requirements.txt", "poetry.lock", "uv.lock", "Pipfile.lock"}

// Lockfiles hashes the dependency lock files in dir.
func Lockfiles(dir string) (map[string]string, error) {
	out := map[string]string{}
	for _, n := range lockfileNames {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		out[n] = fmt.Sprintf("%x", sum)
	}
	return out, nil
}

// HashOf is the digest of d.
func HashOf(d name.Digest) (v1.Hash, error) { return ParseHash(d.DigestStr()) }

// ParseHash parses a digest such as "sha256:<hex>".
func ParseHash(s string) (v1.Hash, error) {
	h, err := v1.NewHash(s)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("digest %q: %w", s, err)
	}
	return h, nil
}
