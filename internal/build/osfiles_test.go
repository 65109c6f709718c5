package build

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"
)

// The default scratch base is made of sources that are the same on every
// machine: two builders (as on two machines) give the same base digest,
// with a CA bundle that parses and the time zone database.
func TestScratchBaseIsTheSameEverywhere(t *testing.T) {
	req := Request{Workload: goWorkload(t, t.TempDir()).Workload, Epoch: time.Unix(1700000000, 0)}
	ctx := context.Background()
	one, err := (&Builder{}).scratchBase(ctx, req)
	must(t, err)
	two, err := (&Builder{Version: "other"}).scratchBase(ctx, req)
	must(t, err)
	if one.Digest != two.Digest {
		t.Errorf("scratch base digests differ: %s vs %s", one.Digest, two.Digest)
	}
	files := imageFiles(t, one.Image)
	for _, want := range []string{"etc/ssl/certs/ca-certificates.crt", "usr/share/zoneinfo/Europe/Paris", "usr/share/zoneinfo/UTC", "etc/passwd", "tmp/"} {
		if files[want] == nil {
			t.Errorf("the scratch base lacks %s", want)
		}
	}
	certs, n := caBundle(), 0
	for block, rest := pem.Decode(certs); block != nil; block, rest = pem.Decode(rest) {
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			t.Fatalf("certificate %d does not parse: %v", n, err)
		}
		n++
	}
	if n < 100 || !bytes.Equal(certs, caBundle()) {
		t.Errorf("the CA bundle has %d certificates, or changes between calls", n)
	}
	id1, err := (&Builder{}).scratchFingerprint(ctx, req)
	must(t, err)
	id2, err := (&Builder{}).scratchFingerprint(ctx, req)
	must(t, err)
	if id1 != id2 {
		t.Error("the scratch fingerprint is not stable")
	}
}
