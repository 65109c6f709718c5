package oci

import (
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/skiffdev/skiff/internal/sign"
)

// maxLayer bounds what is read of one signature or attestation layer.
const maxLayer = 64 << 20

func readLayer(l v1.Layer) ([]byte, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxLayer+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxLayer {
		return nil, fmt.Errorf("layer larger than %d bytes", maxLayer)
	}
	return b, nil
}

// Verifier checks signatures and attestations against a public key.
type Verifier struct {
	Key    *ecdsa.PublicKey
	Remote []remote.Option
}

func (v *Verifier) opts(ctx context.Context) []remote.Option {
	return append(append([]remote.Option{}, v.Remote...), remote.WithContext(ctx))
}

// Verify checks that the manifest ref names (a tag is resolved to its
// digest first) is signed by the key and has SLSA provenance attested by
// it; an attested SPDX SBOM is reported. A *sign.VerifyError says what is missing or
// wrong.
func (v *Verifier) Verify(ctx context.Context, ref name.Reference) (*sign.Verified, error) {
	d, ok := ref.(name.Digest)
	if !ok {
		desc, err := remote.Head(ref, v.opts(ctx)...)
		if err != nil {
			if isNotFound(err) {
				return nil, &sign.VerifyError{Image: ref.String(), Reason: "no such image in the registry"}
			}
			return nil, fmt.Errorf("resolving %s: %w", ref, err)
		}
		d = ref.Context().Digest(desc.Digest.String())
	}
	out := &sign.Verified{Image: ref.String(), Digest: d.DigestStr(), Signer: sign.Fingerprint(v.Key)}
	fail := func(format string, args ...any) error {
		return &sign.VerifyError{Image: ref.String(), Reason: fmt.Sprintf(format, args...)}
	}
	if err := v.signature(ctx, d); err != nil {
		if e, ok := err.(*sign.VerifyError); ok {
			return nil, fail("%s", e.Reason)
		}
		return nil, err
	}
	tag, err := AttestationTag(d)
	if err != nil {
		return nil, err
	}
	img, err := fetch(ctx, tag, v.opts(ctx))
	if err != nil {
		return nil, err
	}
	if img == nil {
		return nil, fail("no attestations (no %s tag); sign it again with skiff, which attaches the SBOM and provenance", tag.TagStr())
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", tag, err)
	}
	h, err := sign.HashOf(d)
	if err != nil {
		return nil, err
	}
	prov := false
	for _, l := range m.Layers {
		if l.MediaType != sign.DSSEMediaType {
			continue
		}
		raw, err := layerStatement(img, l.Digest, v.Key)
		if err != nil {
			continue
		}
		var st sign.Statement
		if json.Unmarshal(raw, &st) != nil || !about(st, h) {
			continue
		}
		switch st.PredicateType {
		case sign.PredicateSLSA:
			var p sign.Provenance
			if json.Unmarshal(st.Predicate, &p) != nil {
				continue
			}
			prov = true
			if w, ok := p.BuildDefinition.ExternalParameters["workload"].(string); ok {
				out.Workload = w
			}
			for _, dep := range p.BuildDefinition.ResolvedDependencies {
				if c := dep.Digest["gitCommit"]; c != "" {
					out.Commit = c
					out.Source = dep.URI
				}
			}
		case sign.PredicateSPDX:
			var doc struct {
				Packages []json.RawMessage `json:"packages"`
			}
			if json.Unmarshal(st.Predicate, &doc) != nil {
				continue
			}
			out.SBOM, out.Packages = true, len(doc.Packages)
		}
	}
	if !prov {
		return nil, fail("no SLSA provenance attested by key %s for %s in %s", out.Signer, d.DigestStr(), tag.TagStr())
	}
	return out, nil
}

// signature checks that d has a signature by the key naming d.
func (v *Verifier) signature(ctx context.Context, d name.Digest) error {
	tag, err := SignatureTag(d)
	if err != nil {
		return err
	}
	img, err := fetch(ctx, tag, v.opts(ctx))
	if err != nil {
		return err
	}
	if img == nil {
		return &sign.VerifyError{Reason: fmt.Sprintf("not signed (no %s tag); sign it with `skiff build --push --sign` or signing: in skiff.yaml", tag.TagStr())}
	}
	m, err := img.Manifest()
	if err != nil {
		return fmt.Errorf("reading %s: %w", tag, err)
	}
	for _, l := range m.Layers {
		if l.MediaType != sign.SimpleSigningMediaType {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(l.Annotations[sign.SignatureAnnotation])
		if err != nil {
			continue
		}
		layer, err := img.LayerByDigest(l.Digest)
		if err != nil {
			continue
		}
		payload, err := readLayer(layer)
		if err != nil || !sign.VerifyBytes(v.Key, payload, sig) {
			continue
		}
		var ss sign.SimpleSigning
		if json.Unmarshal(payload, &ss) != nil {
			continue
		}
		if ss.Critical.Image.DockerManifestDigest == d.DigestStr() {
			return nil
		}
	}
	return &sign.VerifyError{Reason: fmt.Sprintf("no signature in %s verifies with key %s", tag.TagStr(), sign.Fingerprint(v.Key))}
}

func about(st sign.Statement, h v1.Hash) bool {
	for _, s := range st.Subject {
		if s.Digest[h.Algorithm] == h.Hex {
			return true
		}
	}
	return false
}
