// Package oci signs images in a registry and attaches attestations to
// them under cosign's tag schema ("sha256-<hex>.sig" and
// "sha256-<hex>.att" in the image's repository, which every registry
// stores), each signature and the attestations also as OCI 1.1
// referrers, and verifies them:
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

// AttestationArtifactType is the artifact type of the attestations of a
// manifest stored as an OCI 1.1 referrer of it: one manifest whose layers
// are the DSSE envelopes of the attestation tag (the type cosign's
// library writes attestation referrers with).
const AttestationArtifactType = "application/vnd.in-toto+json"

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
		// Each tag, then its referrer (docker-registry fails concurrent
		// uploads of one blob to a repository). A signature new to the
		// tag is new as a referrer too: no need to look. Attestations are
		// looked for always: a damaged tag is repaired while the
		// referrer stands.
		n, err := s.attest(ctx, d, atts)
		if err != nil {
			return nil, err
		}
		ra, err := s.attestationsReferred(d, atts)
		if err != nil {
			return nil, err
		}
		attReferred, err := s.refer(ctx, d, AttestationArtifactType, ra, true)
		if err != nil {
			return nil, err
		}
		tagged, err := s.signOne(ctx, d)
		if err != nil {
			return nil, err
		}
		rs, err := s.signatureReferred(d)
		if err != nil {
			return nil, err
		}
		sigReferred, err := s.refer(ctx, d, SignatureArtifactType, rs, tagged == 0)
		if err != nil {
			return nil, err
		}
		res.Pushed += n + attReferred + tagged + sigReferred
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
		add, err := s.envelope(stmt, a.predicateType)
		if err != nil {
			return 0, err
		}
		if img, err = mutate.Append(img, add); err != nil {
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

// referred is one layer to keep in a referrer of some artifact type:
// has says whether a layer of an existing referrer manifest holds it
// already, add makes (and signs) it.
type referred struct {
	has func(img v1.Image, l v1.Descriptor) bool
	add func() (mutate.Addendum, error)
}

// refer makes sure the manifest d has, as OCI 1.1 referrers of
// artifactType (a manifest whose subject is d and whose config media type
// is artifactType), every layer of want. The registry's referrers API
// lists them; on a registry without that API, go-containerregistry adds
// them to the index of the referrers tag schema ("sha256-<hex>"). The
// layers no referrer holds yet are pushed in one manifest. It returns how
// many manifests it wrote (0 or 1). Unless look, it pushes every layer
// without looking at the referrers first.
func (s *Signer) refer(ctx context.Context, d name.Digest, artifactType string, want []referred, look bool) (int, error) {
	opts := s.opts(ctx)
	missing := want
	if look {
		idx, err := remote.Referrers(d, append(opts, remote.WithFilter("artifactType", artifactType))...)
		if err != nil {
			return 0, fmt.Errorf("listing the referrers of %s: %w", d, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return 0, err
		}
		for _, desc := range im.Manifests {
			if len(missing) == 0 {
				break
			}
			if desc.ArtifactType != artifactType {
				continue
			}
			img, err := remote.Image(d.Context().Digest(desc.Digest.String()), opts...)
			if err != nil {
				continue // gone or damaged: not one of ours
			}
			m, err := img.Manifest()
			if err != nil {
				continue
			}
			missing = without(missing, img, m.Layers)
		}
	}
	if len(missing) == 0 {
		return 0, nil
	}
	subject, err := remote.Head(d, opts...)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", d, err)
	}
	img := mutate.ConfigMediaType(emptySigImage(), types.MediaType(artifactType))
	for _, r := range missing {
		add, err := r.add()
		if err != nil {
			return 0, err
		}
		if img, err = mutate.Append(img, add); err != nil {
			return 0, err
		}
	}
	ref := mutate.Subject(img, v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}).(v1.Image)
	h, err := ref.Digest()
	if err != nil {
		return 0, err
	}
	if err := remote.Write(d.Context().Digest(h.String()), ref, opts...); err != nil {
		return 0, fmt.Errorf("pushing the %s referrer of %s: %w", artifactType, d, err)
	}
	return 1, nil
}

// without returns the layers of want that none of the layers ls of img
// holds.
func without(want []referred, img v1.Image, ls []v1.Descriptor) []referred {
	var rest []referred
	for _, r := range want {
		held := false
		for _, l := range ls {
			if r.has(img, l) {
				held = true
				break
			}
		}
		if !held {
			rest = append(rest, r)
		}
	}
	return rest
}

// signatureReferred is the simple-signing layer of d, signed by the key,
// as the signature tag holds it.
func (s *Signer) signatureReferred(d name.Digest) ([]referred, error) {
	payload, err := sign.SimpleSigningPayload(d)
	if err != nil {
		return nil, err
	}
	layer := static.NewLayer(payload, sign.SimpleSigningMediaType)
	want, err := layer.Digest()
	if err != nil {
		return nil, err
	}
	pub := &s.Key.PublicKey
	return []referred{{
		has: func(_ v1.Image, l v1.Descriptor) bool {
			return signedBy(&v1.Manifest{Layers: []v1.Descriptor{l}}, want, payload, pub)
		},
		add: func() (mutate.Addendum, error) {
			sig, err := sign.SignBytes(s.Key, payload)
			if err != nil {
				return mutate.Addendum{}, err
			}
			return mutate.Addendum{Layer: layer, Annotations: map[string]string{
				sign.SignatureAnnotation: base64.StdEncoding.EncodeToString(sig),
			}}, nil
		},
	}}, nil
}

// attestationsReferred are the DSSE layers of the statements about d,
// each signed by the key, as the attestation tag holds them.
func (s *Signer) attestationsReferred(d name.Digest, atts []attestation) ([]referred, error) {
	pub := &s.Key.PublicKey
	var rs []referred
	for _, a := range atts {
		stmt, err := sign.NewStatement(d, a.predicateType, a.predicate)
		if err != nil {
			return nil, err
		}
		rs = append(rs, referred{
			has: func(img v1.Image, l v1.Descriptor) bool {
				if l.MediaType != sign.DSSEMediaType || l.Annotations[sign.PredicateTypeAnnotation] != a.predicateType {
					return false
				}
				got, err := layerStatement(img, l.Digest, pub)
				return err == nil && string(got) == string(stmt)
			},
			add: func() (mutate.Addendum, error) { return s.envelope(stmt, a.predicateType) },
		})
	}
	return rs, nil
}

// envelope is the DSSE layer of stmt signed by the key.
func (s *Signer) envelope(stmt []byte, predicateType string) (mutate.Addendum, error) {
	env, err := sign.SignEnvelope(s.Key, stmt)
	if err != nil {
		return mutate.Addendum{}, err
	}
	return mutate.Addendum{Layer: static.NewLayer(env, sign.DSSEMediaType), Annotations: map[string]string{
		sign.SignatureAnnotation: "", sign.PredicateTypeAnnotation: predicateType,
	}}, nil
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
