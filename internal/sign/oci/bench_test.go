package oci

import (
	"context"
	"os"
	"testing"
)

// benchRegistry is the registry the benchmarks push to: $SKIFF_BENCH_REGISTRY
// (host:port of a running registry, e.g. docker-registry on loopback),
// else ggcr's in-memory registry over loopback HTTP.
func benchRegistry(b *testing.B) string {
	if r := os.Getenv("SKIFF_BENCH_REGISTRY"); r != "" {
		return r
	}
	host, _ := countingRegistry(b)
	return host
}

// BenchmarkSignNew is what signing adds to the push of a new image: its
// signature, and the SBOM and provenance attestations, each pushed.
func BenchmarkSignNew(b *testing.B) {
	host := benchRegistry(b)
	s, _ := signerVerifier(b, testKey(b))
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		d := pushRandom(b, host)
		b.StartTimer()
		if _, err := s.Sign(ctx, subject(d)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignAgain is what signing costs on a rebuild of unchanged
// sources: the signature and attestations are there, nothing is pushed.
func BenchmarkSignAgain(b *testing.B) {
	host := benchRegistry(b)
	s, _ := signerVerifier(b, testKey(b))
	ctx := context.Background()
	d := pushRandom(b, host)
	if _, err := s.Sign(ctx, subject(d)); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		res, err := s.Sign(ctx, subject(d))
		if err != nil || res.Pushed != 0 {
			b.Fatalf("%+v, %v", res, err)
		}
	}
}

// BenchmarkVerify is what deploy's gate costs per image.
func BenchmarkVerify(b *testing.B) {
	host := benchRegistry(b)
	s, v := signerVerifier(b, testKey(b))
	ctx := context.Background()
	d := pushRandom(b, host)
	if _, err := s.Sign(ctx, subject(d)); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := v.Verify(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
}
