//go:build e2e

package e2e

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// signEnv is what the signing tests share: a registry, skiff, the cosign
// CLI, and a project whose skiff.yaml signs and verifies with a fresh key.
type signEnv struct {
	*env
	cosign string
	dir    string   // the project
	extra  []string // SKIFF_SIGNING_PASSWORD and the cache
}

const signPassword = "e2e-signing-password"

// TestSign proves that what skiff signs, cosign verifies: the signature
// and the SPDX and SLSA attestations of each pushed manifest, with the
// real cosign CLI (testscripts/tools/cosign, $SKIFF_TEST_COSIGN) against
// Debian's docker-registry, which has no referrers API.
func TestSign(t *testing.T) {
	need(t, "docker-registry", "skopeo", "go", "git")
	cosign := os.Getenv("SKIFF_TEST_COSIGN")
	if cosign == "" {
		t.Fatal("SKIFF_TEST_COSIGN is not set; build cosign with `bash testscripts/tools/cosign/build.sh` and set it to the path it prints")
	}
	e := &env{skiff: buildSkiff(t, t.TempDir())}
	e.registry = startRegistry(t)
	s := &signEnv{env: e, cosign: cosign}
	s.dir = e.newProject(t, "function", "go", "hello", e.registry+"/e2e")
	s.extra = append(cacheEnv(t), "SKIFF_SIGNING_PASSWORD="+signPassword, "COSIGN_PASSWORD="+signPassword)
	mustRun(t, s.dir, s.extra, e.skiff, "keys", "generate")
	appendFile(t, filepath.Join(s.dir, "skiff.yaml"), "signing: {key: skiff.key}\nverify: {key: skiff.pub}\n")
	// A git repository: the provenance records the commit.
	for _, args := range [][]string{{"init", "-q"}, {"add", "."}, {"-c", "user.email=e2e@example.org", "-c", "user.name=e2e", "commit", "-q", "-m", "e2e"}} {
		mustRun(t, s.dir, nil, "git", args...)
	}

	t.Run("cosign-verifies", s.testCosignVerifies)
	t.Run("rebuild-pushes-nothing", s.testRebuildPushesNothing)
	t.Run("index", s.testIndex)
	t.Run("unsigned-and-tampered", s.testUnsignedAndTampered)
	t.Run("cosign-signs-with-skiffs-key", s.testCosignUsesKey)
}

// build runs `skiff build --push -o json ARGS` and returns the results and
// the events (JSON lines on stderr).
func (s *signEnv) build(t *testing.T, args ...string) ([]result, []map[string]any) {
	t.Helper()
	out, errOut, code := run(t, s.dir, s.extra, s.skiff, append([]string{"build", "--push", "-o", "json"}, args...)...)
	if code != 0 {
		t.Fatalf("skiff build: exit %d\n%s", code, errOut)
	}
	var res []result
	must(t, json.Unmarshal([]byte(out), &res))
	var events []map[string]any
	sc := bufio.NewScanner(strings.NewReader(errOut))
	for sc.Scan() {
		var ev map[string]any
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev["event"] != nil {
			events = append(events, ev)
		}
	}
	return res, events
}

func signedEvent(t *testing.T, events []map[string]any) map[string]any {
	t.Helper()
	for _, ev := range events {
		if ev["event"] == "signed" {
			return ev
		}
	}
	t.Fatalf("no signed event in %v", events)
	return nil
}

// cosign runs the cosign CLI offline: no transparency log, plain HTTP to
// the loopback registry.
func (s *signEnv) cosignRun(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return run(t, s.dir, s.extra, s.cosign, args...)
}

func (s *signEnv) cosignVerify(t *testing.T, ref string) (string, int) {
	t.Helper()
	out, errOut, code := s.cosignRun(t, "verify", "--key", "skiff.pub", "--insecure-ignore-tlog", "--allow-http-registry", ref)
	return out + errOut, code
}

func (s *signEnv) cosignVerifyAttestation(t *testing.T, ref, typ string) (string, int) {
	t.Helper()
	out, errOut, code := s.cosignRun(t, "verify-attestation", "--key", "skiff.pub", "--insecure-ignore-tlog", "--allow-http-registry", "--type", typ, ref)
	return out + errOut, code
}

// statements decodes the in-toto statements of the DSSE envelopes cosign
// verify-attestation prints, one a line.
func statements(t *testing.T, out string) []map[string]any {
	t.Helper()
	var sts []map[string]any
	for _, line := range strings.Split(out, "\n") {
		var env struct{ Payload string }
		if json.Unmarshal([]byte(line), &env) != nil || env.Payload == "" {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(env.Payload)
		must(t, err)
		var st map[string]any
		must(t, json.Unmarshal(b, &st))
		sts = append(sts, st)
	}
	return sts
}

func (s *signEnv) testCosignVerifies(t *testing.T) {
	res, events := s.build(t)
	ev := signedEvent(t, events)
	t.Logf("signing %s took %vs", res[0].Reference, ev["seconds"])
	ref := s.registry + "/e2e/hello@" + res[0].Digest

	out, code := s.cosignVerify(t, ref)
	if code != 0 || !strings.Contains(out, `"docker-manifest-digest":"`+res[0].Digest+`"`) {
		t.Fatalf("cosign verify: exit %d\n%s", code, out)
	}
	// The signature is an OCI 1.1 referrer too: docker-registry has no
	// referrers API, so it is listed under the referrers tag schema.
	out, errOut, code := s.cosignRun(t, "verify", "--key", "skiff.pub", "--insecure-ignore-tlog", "--allow-http-registry", "--experimental-oci11", ref)
	if code != 0 || !strings.Contains(out, `"docker-manifest-digest":"`+res[0].Digest+`"`) {
		t.Fatalf("cosign verify --experimental-oci11: exit %d\n%s%s", code, out, errOut)
	}
	// The signature and the attestations are both listed as referrers of
	// the digest, each with its artifact type. (cosign v3.1.3's
	// verify-attestation accepts --experimental-oci11 but reads only the
	// ".att" tag, so ggcr is what checks the attestation referrer.)
	d, err := name.NewDigest(ref, name.Insecure)
	must(t, err)
	idx, err := remote.Referrers(d)
	must(t, err)
	im, err := idx.IndexManifest()
	must(t, err)
	var types []string
	for _, m := range im.Manifests {
		types = append(types, m.ArtifactType)
	}
	slices.Sort(types)
	if strings.Join(types, " ") != "application/vnd.dev.cosign.artifact.sig.v1+json application/vnd.in-toto+json" {
		t.Fatalf("the referrers of %s have the artifact types %v, want one signature and one in-toto", ref, types)
	}
	out, code = s.cosignVerifyAttestation(t, ref, "spdxjson")
	if code != 0 {
		t.Fatalf("cosign verify-attestation --type spdxjson: exit %d\n%s", code, out)
	}
	var sbom map[string]any
	for _, st := range statements(t, out) {
		if st["predicateType"] == "https://spdx.dev/Document" {
			sbom = st["predicate"].(map[string]any)
		}
	}
	if sbom == nil || sbom["spdxVersion"] != "SPDX-2.3" || len(sbom["packages"].([]any)) == 0 {
		t.Fatalf("the SPDX statement cosign verified: %v", sbom)
	}
	out, code = s.cosignVerifyAttestation(t, ref, "slsaprovenance1")
	if code != 0 {
		t.Fatalf("cosign verify-attestation --type slsaprovenance1: exit %d\n%s", code, out)
	}
	commit := strings.TrimSpace(mustRun(t, s.dir, nil, "git", "rev-parse", "HEAD"))
	var prov string
	for _, st := range statements(t, out) {
		if st["predicateType"] == "https://slsa.dev/provenance/v1" {
			b, _ := json.Marshal(st)
			prov = string(b)
		}
	}
	wants := []string{`"gitCommit":"` + commit + `"`, `"workload":"hello"`, `"id":"https://github.com/skiffdev/skiff"`}
	if _, err := os.Stat(filepath.Join(s.dir, "hello", "go.sum")); err == nil {
		wants = append(wants, `"name":"go.sum"`) // a workload without dependencies has none
	}
	for _, want := range wants {
		if !strings.Contains(prov, want) {
			t.Errorf("the provenance cosign verified lacks %s:\n%s", want, prov)
		}
	}

	// skiff verify agrees, and says what it verified.
	vout := mustRun(t, s.dir, s.extra, s.skiff, "verify", "-o", "json")
	var vs []struct {
		Digest, Signer, Commit string
		SBOM                   bool
		Packages               int
	}
	must(t, json.Unmarshal([]byte(vout), &vs))
	if len(vs) != 1 || vs[0].Digest != res[0].Digest || vs[0].Commit != commit || !vs[0].SBOM || vs[0].Packages != len(sbom["packages"].([]any)) {
		t.Fatalf("skiff verify: %s", vout)
	}

	// skopeo and ggcr see the signature and attestation tags.
	tags := mustRun(t, "", nil, "skopeo", "list-tags", "--tls-verify=false", "docker://"+s.registry+"/e2e/hello")
	prefix := strings.Replace(res[0].Digest, ":", "-", 1)
	for _, suffix := range []string{".sig", ".att", ".sbom", ""} {
		if !strings.Contains(tags, prefix+suffix) {
			t.Errorf("skopeo does not list %s%s:\n%s", prefix, suffix, tags)
		}
	}
	repo, err := name.NewRepository(s.registry+"/e2e/hello", name.Insecure)
	must(t, err)
	ggcr, err := remote.List(repo)
	must(t, err)
	if !slices.Contains(ggcr, prefix+".sig") || !slices.Contains(ggcr, prefix+".att") || !slices.Contains(ggcr, prefix) {
		t.Errorf("ggcr lists %v", ggcr)
	}
}

// tagDigests reads the digests of the signature and attestation tags of
// digest d.
func (s *signEnv) tagDigests(t *testing.T, d string) [2]string {
	t.Helper()
	prefix := s.registry + "/e2e/hello:" + strings.Replace(d, ":", "-", 1)
	return [2]string{skopeoDigest(t, prefix+".sig"), skopeoDigest(t, prefix+".att")}
}

func (s *signEnv) testRebuildPushesNothing(t *testing.T) {
	res, _ := s.build(t)
	before := s.tagDigests(t, res[0].Digest)
	again, events := s.build(t, "--no-cache")
	if again[0].Digest != res[0].Digest {
		t.Fatalf("the unchanged source built %s, then %s", res[0].Digest, again[0].Digest)
	}
	if ev := signedEvent(t, events); ev["detail"].(map[string]any)["uploaded"] == true {
		t.Errorf("signing the same digest again pushed: %v", ev)
	}
	if after := s.tagDigests(t, res[0].Digest); after != before || after[0] == "" {
		t.Errorf("the signature and attestation tags moved: %v, then %v", before, after)
	}
}

func (s *signEnv) testIndex(t *testing.T) {
	res, events := s.build(t, "--platform", "linux/amd64,linux/arm64", "--tag", "multi")
	if !strings.Contains(signedEvent(t, events)["detail"].(map[string]any)["message"].(string), "3 manifests signed") {
		t.Errorf("signed event: %v", events)
	}
	raw := mustRun(t, "", nil, "skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+s.registry+"/e2e/hello@"+res[0].Digest)
	var idx struct{ Manifests []struct{ Digest string } }
	must(t, json.Unmarshal([]byte(raw), &idx))
	if len(idx.Manifests) != 2 {
		t.Fatalf("index %s", raw)
	}
	for _, d := range []string{res[0].Digest, idx.Manifests[0].Digest, idx.Manifests[1].Digest} {
		ref := s.registry + "/e2e/hello@" + d
		if out, code := s.cosignVerify(t, ref); code != 0 {
			t.Errorf("cosign verify %s: exit %d\n%s", ref, code, out)
		}
		if out, code := s.cosignVerifyAttestation(t, ref, "slsaprovenance1"); code != 0 {
			t.Errorf("cosign verify-attestation %s: exit %d\n%s", ref, code, out)
		}
	}
}

// pushRandom pushes an image skiff never signed to the project's repository.
func (s *signEnv) pushRandom(t *testing.T, tag string) string {
	t.Helper()
	img, err := random.Image(256, 1)
	must(t, err)
	ref, err := name.ParseReference(s.registry+"/e2e/hello:"+tag, name.Insecure)
	must(t, err)
	must(t, remote.Write(ref, img))
	d, err := img.Digest()
	must(t, err)
	return s.registry + "/e2e/hello@" + d.String()
}

func (s *signEnv) testUnsignedAndTampered(t *testing.T) {
	signed, _ := s.build(t)
	unsigned := s.pushRandom(t, "unsigned")
	checkRefused := func(t *testing.T, ref, why string) {
		t.Helper()
		if out, code := s.cosignVerify(t, ref); code == 0 {
			t.Errorf("cosign verify accepted %s:\n%s", ref, out)
		}
		if out, code := s.cosignVerifyAttestation(t, ref, "slsaprovenance1"); code == 0 {
			t.Errorf("cosign verify-attestation accepted %s:\n%s", ref, out)
		}
		_, errOut, code := run(t, s.dir, s.extra, s.skiff, "verify", ref)
		if code != 1 || !strings.Contains(errOut, ref+" does not verify: "+why) {
			t.Errorf("skiff verify %s: exit %d, want 1 naming it and %q:\n%s", ref, code, why, errOut)
		}
	}
	t.Run("unsigned", func(t *testing.T) { checkRefused(t, unsigned, "not signed") })

	// The signature and attestations of the signed image copied onto
	// another one: signed by the key, but about another digest.
	t.Run("copied-signature", func(t *testing.T) {
		copied := s.pushRandom(t, "copied")
		from := s.registry + "/e2e/hello:" + strings.Replace(signed[0].Digest, ":", "-", 1)
		to := s.registry + "/e2e/hello:" + strings.Replace(strings.SplitN(copied, "@", 2)[1], ":", "-", 1)
		for _, suffix := range []string{".sig", ".att"} {
			mustRun(t, "", nil, "skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false", "docker://"+from+suffix, "docker://"+to+suffix)
		}
		checkRefused(t, copied, "no signature in")
	})

	// An image signed with another key.
	t.Run("other-key", func(t *testing.T) {
		other := s.pushRandom(t, "other")
		dir := t.TempDir()
		mustRun(t, dir, s.extra, s.skiff, "keys", "generate")
		if _, errOut, code := s.cosignRun(t, "sign", "--key", filepath.Join(dir, "skiff.key"), "--tlog-upload=false", "--use-signing-config=false",
			"--new-bundle-format=false", "--allow-http-registry", "--yes", other); code != 0 {
			t.Fatalf("cosign sign: exit %d\n%s", code, errOut)
		}
		checkRefused(t, other, "no signature in")
	})

	// deploy's gate sees the same: `skiff verify` is what it runs; the
	// cluster e2e is not part of this test.
	if _, errOut, code := run(t, s.dir, s.extra, s.skiff, "verify", unsigned, signed[0].Reference); code != 1 || !strings.Contains(errOut, "1 of 2 images do not verify") {
		t.Errorf("skiff verify of a signed and an unsigned image: exit %d\n%s", code, errOut)
	}
}

// testCosignUsesKey: skiff's key pair is cosign's format: cosign derives
// the same public key from the private one, and signs with it.
func (s *signEnv) testCosignUsesKey(t *testing.T) {
	out, errOut, code := s.cosignRun(t, "public-key", "--key", "skiff.key")
	pub, err := os.ReadFile(filepath.Join(s.dir, "skiff.pub"))
	must(t, err)
	if code != 0 || out != string(pub) {
		t.Fatalf("cosign public-key --key skiff.key: exit %d\n%s%s\nwant\n%s", code, out, errOut, pub)
	}
	img := s.pushRandom(t, "by-cosign")
	if _, errOut, code := s.cosignRun(t, "sign", "--key", "skiff.key", "--tlog-upload=false", "--use-signing-config=false",
		"--new-bundle-format=false", "--allow-http-registry", "--yes", img); code != 0 {
		t.Fatalf("cosign sign --key skiff.key: exit %d\n%s", code, errOut)
	}
	if out, code := s.cosignVerify(t, img); code != 0 {
		t.Fatalf("cosign verify of cosign's signature: exit %d\n%s", code, out)
	}
	// And skiff signs with a pair cosign generated; cosign verifies that.
	dir := t.TempDir()
	if _, errOut, code := run(t, dir, s.extra, s.cosign, "generate-key-pair"); code != 0 {
		t.Fatalf("cosign generate-key-pair: exit %d\n%s", code, errOut)
	}
	res, _ := s.build(t, "--sign-key", filepath.Join(dir, "cosign.key"), "--tag", "cosign-key")
	if _, errOut, code := run(t, dir, s.extra, s.cosign, "verify", "--key", "cosign.pub", "--insecure-ignore-tlog", "--allow-http-registry",
		s.registry+"/e2e/hello@"+res[0].Digest); code != 0 {
		t.Fatalf("cosign verify of skiff's signature with cosign's key: exit %d\n%s", code, errOut)
	}
	// skiff reads cosign's signature; it asks for provenance too, which
	// cosign sign does not attach.
	_, errOut, code = run(t, s.dir, s.extra, s.skiff, "verify", img)
	if code != 1 || !strings.Contains(errOut, "no attestations") {
		t.Errorf("skiff verify of an image cosign signed without attestations: exit %d\n%s", code, errOut)
	}
}
