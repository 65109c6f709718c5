package oci

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"

	"github.com/skiffdev/skiff/internal/sign"
)

// countingRegistry is ggcr's in-memory registry that counts the writes
// (PUT, POST, PATCH) it is sent.
func countingRegistry(t testing.TB) (host string, writes *atomic.Int64) {
	t.Helper()
	writes = &atomic.Int64{}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writes.Add(1)
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), writes
}

func testKey(t testing.TB) *sign.KeyPair {
	t.Helper()
	kp, err := sign.Generate([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func pushRandom(t testing.TB, host string) name.Digest {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host+"/shop/orders:latest", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return ref.Context().Digest(d.String())
}

const spdx = `{"spdxVersion":"SPDX-2.3","packages":[{"name":"a"},{"name":"b"},{"name":"c"}]}`

func subject(d name.Digest) Subject {
	return Subject{Digest: d, SBOM: []byte(spdx), Build: sign.BuildFacts{
		SkiffVersion: "1.2.3", Workload: "orders", Lang: "go", Kind: "service", Platforms: []string{"linux/amd64"},
		Revision: "0123456789abcdef0123456789abcdef01234567", Source: "https://example.org/shop.git",
		Lockfiles: map[string]string{"go.sum": strings.Repeat("ab", 32)},
	}}
}

func signerVerifier(t testing.TB, kp *sign.KeyPair) (*Signer, *Verifier) {
	t.Helper()
	priv, err := sign.ParsePrivateKey(kp.Private, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := sign.ParsePublicKey(kp.Public)
	if err != nil {
		t.Fatal(err)
	}
	return &Signer{Key: priv}, &Verifier{Key: pub}
}

func TestSignThenVerify(t *testing.T) {
	ctx := context.Background()
	host, writes := countingRegistry(t)
	d := pushRandom(t, host)
	s, v := signerVerifier(t, testKey(t))

	res, err := s.Sign(ctx, subject(d))
	if err != nil {
		t.Fatal(err)
	}
	if res.Pushed != 4 || len(res.Signed) != 1 || res.Signed[0] != d.DigestStr() {
		t.Fatalf("first signing: %+v, want 2 tags and 2 referrers pushed for %s", res, d.DigestStr())
	}
	// The attestations are one OCI 1.1 referrer of the image too: the SBOM
	// and the provenance about d, each signed by the key.
	aidx, err := remote.Referrers(d, remote.WithFilter("artifactType", AttestationArtifactType))
	if err != nil {
		t.Fatal(err)
	}
	aim, _ := aidx.IndexManifest()
	if len(aim.Manifests) != 1 || aim.Manifests[0].ArtifactType != AttestationArtifactType {
		t.Fatalf("referrers %+v, want one of type %s", aim.Manifests, AttestationArtifactType)
	}
	attImg, err := remote.Image(d.Context().Digest(aim.Manifests[0].Digest.String()))
	if err != nil {
		t.Fatal(err)
	}
	am, _ := attImg.Manifest()
	if am.Subject == nil || am.Subject.Digest.String() != d.DigestStr() {
		t.Fatalf("attestation referrer subject %+v, want %s", am.Subject, d.DigestStr())
	}
	var predicates []string
	for _, l := range am.Layers {
		stmt, err := layerStatement(attImg, l.Digest, v.Key)
		if err != nil || l.MediaType != sign.DSSEMediaType {
			t.Fatalf("attestation referrer layer %+v: %v", l, err)
		}
		var st struct {
			PredicateType string `json:"predicateType"`
			Subject       []struct {
				Digest map[string]string `json:"digest"`
			} `json:"subject"`
		}
		if err := json.Unmarshal(stmt, &st); err != nil || len(st.Subject) != 1 || "sha256:"+st.Subject[0].Digest["sha256"] != d.DigestStr() ||
			st.PredicateType != l.Annotations[sign.PredicateTypeAnnotation] {
			t.Fatalf("statement %s (%v) is not about %s", stmt, err, d.DigestStr())
		}
		predicates = append(predicates, st.PredicateType)
	}
	if strings.Join(predicates, " ") != sign.PredicateSPDX+" "+sign.PredicateSLSA {
		t.Fatalf("attested %v, want the SBOM and the provenance", predicates)
	}
	// The signature is an OCI 1.1 referrer of the image too.
	idx, err := remote.Referrers(d, remote.WithFilter("artifactType", SignatureArtifactType))
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 1 {
		t.Fatalf("referrers %+v, want one signature", im.Manifests)
	}
	refImg, err := remote.Image(d.Context().Digest(im.Manifests[0].Digest.String()))
	if err != nil {
		t.Fatal(err)
	}
	rm, _ := refImg.Manifest()
	payload, _ := sign.SimpleSigningPayload(d)
	want, _ := static.NewLayer(payload, sign.SimpleSigningMediaType).Digest()
	if rm.Subject == nil || rm.Subject.Digest.String() != d.DigestStr() || !signedBy(rm, want, payload, v.Key) {
		t.Fatalf("the referrer %+v does not hold a signature of %s by the key", rm, d.DigestStr())
	}
	got, err := v.Verify(ctx, d.Context().Tag("latest"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != d.DigestStr() || got.Commit != "0123456789abcdef0123456789abcdef01234567" ||
		!got.SBOM || got.Packages != 3 || got.Workload != "orders" || got.Signer != sign.Fingerprint(v.Key) {
		t.Fatalf("verified %+v", got)
	}

	// Signing the same digest again writes nothing at all.
	before := writes.Load()
	res, err = s.Sign(ctx, subject(d))
	if err != nil {
		t.Fatal(err)
	}
	if res.Pushed != 0 || writes.Load() != before {
		t.Fatalf("signing again pushed %d tags, %d writes", res.Pushed, writes.Load()-before)
	}
}

func TestVerifyRefuses(t *testing.T) {
	ctx := context.Background()
	host, _ := countingRegistry(t)
	s, v := signerVerifier(t, testKey(t))

	unsigned := pushRandom(t, host)
	_, err := v.Verify(ctx, unsigned)
	var verr *sign.VerifyError
	if !errors.As(err, &verr) || !strings.Contains(verr.Reason, "not signed") {
		t.Fatalf("unsigned image: %v", err)
	}

	// Signed by another key.
	d := pushRandom(t, host)
	other, _ := signerVerifier(t, testKey(t))
	if _, err := other.Sign(ctx, subject(d)); err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(ctx, d)
	if !errors.As(err, &verr) || !strings.Contains(verr.Reason, "no signature in sha256-") {
		t.Fatalf("another key's signature: %v", err)
	}

	// A signature whose payload names another digest, signed by the key:
	// copying a valid signature onto another image does not verify it.
	if _, err := s.Sign(ctx, subject(unsigned)); err != nil {
		t.Fatal(err)
	}
	src, _ := SignatureTag(unsigned)
	dst, _ := SignatureTag(d)
	img, err := remote.Image(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(dst, img); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, d); !errors.As(err, &verr) {
		t.Fatalf("a signature of another digest: %v", err)
	}
}

func TestVerifyTamperedAttestation(t *testing.T) {
	ctx := context.Background()
	host, _ := countingRegistry(t)
	s, v := signerVerifier(t, testKey(t))
	d := pushRandom(t, host)
	if _, err := s.Sign(ctx, subject(d)); err != nil {
		t.Fatal(err)
	}
	// Replace the attestations by envelopes whose statement was changed
	// after signing.
	tag, _ := AttestationTag(d)
	img, err := remote.Image(tag)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := img.Manifest()
	out := emptySigImage()
	for _, l := range m.Layers {
		layer, _ := img.LayerByDigest(l.Digest)
		b, _ := readLayer(layer)
		var env map[string]any
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatal(err)
		}
		env["payload"] = strings.Replace(env["payload"].(string), "A", "B", 1)
		b, _ = json.Marshal(env)
		out, _ = mutate.Append(out, mutate.Addendum{Layer: static.NewLayer(b, sign.DSSEMediaType), Annotations: l.Annotations})
	}
	if err := remote.Write(tag, out); err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(ctx, d)
	var verr *sign.VerifyError
	if !errors.As(err, &verr) || !strings.Contains(verr.Reason, "no SLSA provenance") {
		t.Fatalf("tampered attestations: %v", err)
	}
	// Signing again repairs it: the damaged layers are not ours, ours are appended.
	res, err := s.Sign(ctx, subject(d))
	if err != nil || res.Pushed != 1 {
		t.Fatalf("signing again: %+v, %v", res, err)
	}
	if _, err := v.Verify(ctx, d); err != nil {
		t.Fatal(err)
	}
}

func TestSignIndexSignsEachManifest(t *testing.T) {
	ctx := context.Background()
	host, _ := countingRegistry(t)
	s, v := signerVerifier(t, testKey(t))
	idx, err := random.Index(64, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(host+"/shop/orders:multi", name.Insecure)
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	dig, _ := idx.Digest()
	im, _ := idx.IndexManifest()
	var children []v1.Hash
	for _, m := range im.Manifests {
		children = append(children, m.Digest)
	}
	d := ref.Context().Digest(dig.String())
	res, err := s.Sign(ctx, Subject{Digest: d, Manifests: children, Build: subject(d).Build})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Signed) != 3 || res.Pushed != 12 {
		t.Fatalf("index: %+v, want 3 manifests signed and attested", res)
	}
	for _, h := range append([]v1.Hash{dig}, children...) {
		got, err := v.Verify(ctx, ref.Context().Digest(h.String()))
		if err != nil {
			t.Fatalf("%s: %v", h, err)
		}
		if got.SBOM {
			t.Errorf("%s: SBOM reported, none was attested", h)
		}
	}
}

// TestFailedPushLeavesNoTag: when the registry refuses part of a
// signing (an attestation blob, or the attestation tag itself), no
// signature or attestation tag names missing content, and no signature
// tag exists without its attestations; signing again completes it.
func TestFailedPushLeavesNoTag(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func(r *http.Request) bool
	}{
		{"attestation-blob", func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/blobs/") }},
		{"attestation-tag", func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, ".att") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
			var failing atomic.Bool
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if failing.Load() && r.Method != http.MethodGet && r.Method != http.MethodHead && tc.fail(r) {
					http.Error(w, "quota exceeded", http.StatusBadRequest)
					return
				}
				reg.ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)
			d := pushRandom(t, strings.TrimPrefix(srv.URL, "http://"))
			s, v := signerVerifier(t, testKey(t))

			failing.Store(true)
			if _, err := s.Sign(ctx, subject(d)); err == nil || !strings.Contains(err.Error(), "pushing the attestations") {
				t.Fatalf("Sign with the registry refusing: %v", err)
			}
			for _, tagOf := range []func(name.Digest) (name.Tag, error){SignatureTag, AttestationTag} {
				tag, _ := tagOf(d)
				if _, err := remote.Head(tag); !isNotFound(err) {
					t.Errorf("%s exists after the failed push (%v)", tag.TagStr(), err)
				}
			}
			failing.Store(false)
			if res, err := s.Sign(ctx, subject(d)); err != nil || res.Pushed != 4 {
				t.Fatalf("signing again: %+v, %v", res, err)
			}
			if _, err := v.Verify(ctx, d); err != nil {
				t.Fatal(err)
			}
		})
	}
}
