// Package oci signs images in a registry and attaches attestations to
// them under cosign's tag schema ("sha256-<hex>.sig" and
// "sha256-<hex>.att" in the image's repository, which every registry
// stores), each signature also as an OCI 1.1 referrer, and verifies them:
// what `cosign verify --key` and `cosign verify-attestation --key` accept.
package oci

import (
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/skiffdev/skiff/internal/sign"
)

// SignatureArtifactType is the artifact type of a signature stored as an
// OCI 1.1 referrer of the manifest it signs (what `cosign verify
// --experimental-oci11` looks for).
const SignatureArtifactType = "application/vnd.dev.cosign.artifact.sig.v1+json"

// SignatureTag is the tag of the signatures of the manifest d:
// "sha256-<hex>.sig".
func SignatureTag(d name.Digest) (name.Tag, error) { return suffixTag(d, ".sig") }

// AttestationTag is the tag of the attestations of the manifest d:
// "sha256-<hex>.att".
func AttestationTag(d name.Digest) (name.Tag, error) { return suffixTag(d, ".att") }

func suffixTag(d name.Digest, suffix string) (name.Tag, error) {
	h, err := sign.HashOf(d)
	if err != nil {
		return name.Tag{}, err
	}
	return d.Context().Tag(h.Algorithm + "-" + h.Hex + suffix), nil
}

// Subject is a pushed image to sign and attest.
type Subject struct {
	// Digest is the pushed manifest or index, by digest.
	Digest name.Digest
	// Manifests are the platform manifests of an index (none for an
	// image): each is signed and attested too.
	Manifests []v1.Hash
	// SBOM is the SPDX JSON document of the image, or nil.
	SBOM []byte
	// Build is what the provenance records.
	Build sign.BuildFacts
}

// Result says what signing pushed.
type Result struct {
	// Signed lists the manifests signed, the subject's first.
	Signed []string `json:"signed"`
	// Attestations are the predicate types attached to each.
	Attestations []string `json:"attestations"`
	// Pushed counts the tags written: 0 when the registry had every
	// signature and attestation already.
	Pushed int `json:"pushed"`
}

// Signer signs images in a registry with a key. Keyless signing would be
// another implementation of the same call.
type Signer struct {
	Key *ecdsa.PrivateKey
	// Remote are the registry options (authentication, transport) of
	// every request; the context is added per call.
	Remote []remote.Option
}

// Sign signs the subject's manifests and attaches its attestations (the
// SBOM, the provenance), each signed with the key, under cosign's tag
// schema. What the registry already has (the same payload signed by the
// same key) is not pushed again. The attestations of a manifest are
// pushed before its signature, each tag in one manifest write after its
// blobs: a failure leaves no tag naming missing content, and a signature
// tag only once its attestations are there.
func (s *Signer) Sign(ctx context.Context, subj Subject) (*Result, error) {
	prov, err := sign.ProvenancePredicate(subj.Build)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	if subj.SBOM != nil {
		res.Attestations = append(res.Attestations, sign.PredicateSPDX)
	}
	res.Attestations = append(res.Attestations, sign.PredicateSLSA)
	digests := []name.Digest{subj.Digest}
	for _, h := range subj.Manifests {
		digests = append(digests, subj.Digest.Context().Digest(h.String()))
	}
	for _, d := range digests {
		var atts []attestation
		if subj.SBOM != nil {
			atts = append(atts, attestation{sign.PredicateSPDX, subj.SBOM})
		}
		atts = append(atts, attestation{sign.PredicateSLSA, prov})
		n, err := s.attest(ctx, d, atts)
		if err != nil {
			return nil, err
		}
		res.Pushed += n
		// The signature tag, then the referrer (docker-registry fails
		// concurrent uploads of one blob to a repository). A signature
		// new to the tag is new as a referrer too: no need to look.
		tagged, err := s.signOne(ctx, d)
		if err != nil {
			return nil, err
		}
		referred, err := s.refer(ctx, d, tagged == 0)
		if err != nil {
			return nil, err
		}
		res.Pushed += tagged + referred
		res.Signed = append(res.Signed, d.DigestStr())
	}
	return res, nil
}

type attestation struct {
	predicateType string
	predicate     []byte
}

func (s *Signer) opts(ctx context.Context) []remote.Option {
	return append(append([]remote.Option{}, s.Remote...), remote.WithContext(ctx))
}

// signOne makes sure the signature tag of d holds a signature of d by the
// key; it returns how many tags it wrote.
func (s *Signer) signOne(ctx context.Context, d name.Digest) (int, error) {
	payload, err := sign.SimpleSigningPayload(d)
	if err != nil {
		return 0, err
	}
	tag, err := SignatureTag(d)
	if err != nil {
		return 0, err
	}
	img, err := fetch(ctx, tag, s.opts(ctx))
	if err != nil {
		return 0, err
	}
	pub := &s.Key.PublicKey
	layer := static.NewLayer(payload, sign.SimpleSigningMediaType)
	want, err := layer.Digest()
	if err != nil {
		return 0, err
	}
	if img != nil {
		m, err := img.Manifest()
		if err != nil {
			return 0, fmt.Errorf("reading %s: %w", tag, err)
		}
		for _, l := range m.Layers {
			// The digest names the payload: the same bytes, so only the
			// signature needs checking.
			if l.Digest != want {
				continue
			}
			if sig, err := base64.StdEncoding.DecodeString(l.Annotations[sign.SignatureAnnotation]); err == nil && sign.VerifyBytes(pub, payload, sig) {
				return 0, nil
			}
		}
	} else {
		img = emptySigImage()
	}
	sig, err := sign.SignBytes(s.Key, payload)
	if err != nil {
		return 0, err
	}
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, Annotations: map[string]string{
		sign.SignatureAnnotation: base64.StdEncoding.EncodeToString(sig),
	}})
	if err != nil {
		return 0, err
	}
	if err := remote.Write(tag, img, s.opts(ctx)...); err != nil {
		return 0, fmt.Errorf("pushing the signature %s: %w", tag, err)
	}
	return 1, nil
}

// attest makes sure the attestation tag of d holds each statement about
// d, signed by the key; it returns how many tags it wrote (0 or 1).
func (s *Signer) attest(ctx context.Context, d name.Digest, atts []attestation) (int, error) {
	tag, err := AttestationTag(d)
	if err != nil {
		return 0, err
	}
	img, err := fetch(ctx, tag, s.opts(ctx))
	if err != nil {
		return 0, err
	}
	have := map[string]bool{} // statements signed by the key already there
	if img != nil {
		m, err := img.Manifest()
		if err != nil {
			return 0, fmt.Errorf("reading %s: %w", tag, err)
		}
		for _, l := range m.Layers {
			if l.MediaType != sign.DSSEMediaType || !wanted(atts, l.Annotations[sign.PredicateTypeAnnotation]) {
				continue
			}
			stmt, err := layerStatement(img, l.Digest, &s.Key.PublicKey)
			if err != nil {
				continue // another key's, or damaged: not ours
			}
			have[string(stmt)] = true
		}
	} else {
		img = emptySigImage()
	}
	added := false
	for _, a := range atts {
		stmt, err := sign.NewStatement(d, a.predicateType, a.predicate)
		if err != nil {
			return 0, err
		}
		if have[string(stmt)] {
			continue
		}
		env, err := sign.SignEnvelope(s.Key, stmt)
		if err != nil {
			return 0, err
		}
		img, err = mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(env, sign.DSSEMediaType), Annotations: map[string]string{
			sign.SignatureAnnotation: "", sign.PredicateTypeAnnotation: a.predicateType,
		}})
		if err != nil {
			return 0, err
		}
		added = true
	}
	if !added {
		return 0, nil
	}
	if err := remote.Write(tag, img, s.opts(ctx)...); err != nil {
		return 0, fmt.Errorf("pushing the attestations %s: %w", tag, err)
	}
	return 1, nil
}

func wanted(atts []attestation, predicateType string) bool {
	for _, a := range atts {
		if a.predicateType == predicateType {
			return true
		}
	}
	return false
}

// layerStatement reads the DSSE layer h of img and returns its statement
// when the envelope's signature verifies with pub.
func layerStatement(img v1.Image, h v1.Hash, pub *ecdsa.PublicKey) ([]byte, error) {
	l, err := img.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	b, err := readLayer(l)
	if err != nil {
		return nil, err
	}
	return sign.OpenEnvelope(pub, b)
}

// emptySigImage is the image cosign starts its signature and attestation
// images from: an OCI manifest with an empty config.
func emptySigImage() v1.Image {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	return mutate.ConfigMediaType(img, types.OCIConfigJSON)
}

// fetch reads the image a tag names, or nil when the tag does not exist.
func fetch(ctx context.Context, tag name.Tag, opts []remote.Option) (v1.Image, error) {
	img, err := remote.Image(tag, opts...)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", tag, err)
	}
	return img, nil
}

func isNotFound(err error) bool {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return false
	}
	if terr.StatusCode == http.StatusNotFound {
		return true
	}
	for _, e := range terr.Errors {
		if e.Code == transport.ManifestUnknownErrorCode || e.Code == transport.NameUnknownErrorCode {
			return true
		}
	}
	return false
}

// refer makes sure the manifest d has, as an OCI 1.1 referrer, a
// signature of it by the key: a manifest of artifact type
// SignatureArtifactType whose subject is d, holding the same
// simple-signing layer as the signature tag. The registry's referrers API
// lists it; on a registry without that API, go-containerregistry adds it
// to the index of the referrers tag schema ("sha256-<hex>"). It returns
// how many manifests it wrote (0 or 1). Unless look, it pushes without
// looking for one first.
func (s *Signer) refer(ctx context.Context, d name.Digest, look bool) (int, error) {
	payload, err := sign.SimpleSigningPayload(d)
	if err != nil {
		return 0, err
	}
	layer := static.NewLayer(payload, sign.SimpleSigningMediaType)
	want, err := layer.Digest()
	if err != nil {
		return 0, err
	}
	opts := s.opts(ctx)
	var found []v1.Descriptor
	if look {
		idx, err := remote.Referrers(d, append(opts, remote.WithFilter("artifactType", SignatureArtifactType))...)
		if err != nil {
			return 0, fmt.Errorf("listing the referrers of %s: %w", d, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return 0, err
		}
		found = im.Manifests
	}
	for _, desc := range found {
		if desc.ArtifactType != SignatureArtifactType {
			continue
		}
		img, err := remote.Image(d.Context().Digest(desc.Digest.String()), opts...)
		if err != nil {
			continue
		}
		if m, err := img.Manifest(); err == nil && signedBy(m, want, payload, &s.Key.PublicKey) {
			return 0, nil
		}
	}
	subject, err := remote.Head(d, opts...)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", d, err)
	}
	sig, err := sign.SignBytes(s.Key, payload)
	if err != nil {
		return 0, err
	}
	img := mutate.ConfigMediaType(emptySigImage(), SignatureArtifactType)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, Annotations: map[string]string{
		sign.SignatureAnnotation: base64.StdEncoding.EncodeToString(sig),
	}})
	if err != nil {
		return 0, err
	}
	ref := mutate.Subject(img, v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}).(v1.Image)
	h, err := ref.Digest()
	if err != nil {
		return 0, err
	}
	if err := remote.Write(d.Context().Digest(h.String()), ref, opts...); err != nil {
		return 0, fmt.Errorf("pushing the signature of %s as a referrer: %w", d, err)
	}
	return 1, nil
}

// signedBy says whether m has the simple-signing layer want (payload)
// signed by pub.
func signedBy(m *v1.Manifest, want v1.Hash, payload []byte, pub *ecdsa.PublicKey) bool {
	for _, l := range m.Layers {
		if l.Digest != want {
			continue
		}
		if sig, err := base64.StdEncoding.DecodeString(l.Annotations[sign.SignatureAnnotation]); err == nil && sign.VerifyBytes(pub, payload, sig) {
			return true
		}
	}
	return false
}
