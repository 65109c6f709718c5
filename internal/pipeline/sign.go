package pipeline

import (
	"context"
	"crypto/ecdsa"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/skiffdev/skiff/internal/build"
	"github.com/skiffdev/skiff/internal/engine"
	"github.com/skiffdev/skiff/internal/project"
	"github.com/skiffdev/skiff/internal/publish/registry"
	"github.com/skiffdev/skiff/internal/sign"
	"github.com/skiffdev/skiff/internal/sign/oci"
)

// Signing signs what the builds push to a registry.
type Signing struct {
	Signer *oci.Signer
	// Parse parses a reference as the registry client does (plain HTTP
	// only to the hosts allowed it).
	Parse func(string) (name.Reference, error)
	// Version is skiff's, recorded as the builder's.
	Version string
}

// signPushed signs the image of w just pushed to the registry (reference
// is REGISTRY/NAME:TAG@DIGEST) and attests its SBOM and provenance, when
// the builds sign.
func (p *Pipeline) signPushed(ctx context.Context, b Builds, w project.Workload, dir string, a *build.Artifact, labels map[string]string, reference string) error {
	s := b.Sign
	if s == nil || b.Dest != DestRegistry {
		return nil
	}
	start := p.now()
	ref, err := s.Parse(reference)
	if err != nil {
		return fmt.Errorf("signing %s: %w", w.Name, err)
	}
	dig, ok := ref.(name.Digest)
	if !ok {
		return fmt.Errorf("signing %s: %s names no digest", w.Name, reference)
	}
	subj := oci.Subject{Digest: dig, SBOM: a.SBOM, Build: sign.BuildFacts{
		SkiffVersion: s.Version, Workload: w.Name, Kind: w.Kind, Lang: w.Lang, Platforms: a.Platforms,
		Base: a.Base.Ref, BaseDigest: a.Base.Digest, Revision: labels[build.LabelRevision], Source: labels[build.LabelSource],
		Inputs: a.Key,
	}}
	subj.Build.Lockfiles, err = sign.Lockfiles(dir)
	if err != nil {
		return fmt.Errorf("signing %s: reading its lock files: %w", w.Name, err)
	}
	if a.Index != nil {
		im, err := a.Index.IndexManifest()
		if err != nil {
			return err
		}
		for _, m := range im.Manifests {
			subj.Manifests = append(subj.Manifests, m.Digest)
		}
	}
	res, err := s.Signer.Sign(ctx, subj)
	if err != nil {
		return fmt.Errorf("signing %s: %w", dig, err)
	}
	what := "SLSA provenance"
	if a.SBOM != nil {
		what = "SPDX SBOM and SLSA provenance"
	}
	manifests := "1 manifest"
	if n := len(res.Signed); n != 1 {
		manifests = fmt.Sprintf("%d manifests", n)
	}
	p.emit(Event{Kind: Signed, Workload: w.Name, Duration: p.since(start), Reference: dig.String(), Digest: dig.DigestStr(),
		Uploaded: res.Pushed > 0, Message: fmt.Sprintf("%s signed with key %s, %s attested", manifests, sign.Fingerprint(&s.Signer.Key.PublicKey), what)})
	return nil
}

// NewSigning signs with key through the registry client regs; version is
// skiff's.
func NewSigning(key *ecdsa.PrivateKey, regs *registry.Client, version string) *Signing {
	return &Signing{Signer: &oci.Signer{Key: key, Remote: regs.RemoteOptions()}, Parse: regs.ParseReference, Version: version}
}

// ImageVerifier checks images against a public key: the engine.Verifier.
type ImageVerifier struct {
	v     *oci.Verifier
	parse func(string) (name.Reference, error)
	pl    *Pipeline
}

// NewImageVerifier verifies with key through the registry client regs,
// reporting to events.
func NewImageVerifier(key *ecdsa.PublicKey, regs *registry.Client, events func(Event)) *ImageVerifier {
	return &ImageVerifier{v: &oci.Verifier{Key: key, Remote: regs.RemoteOptions()}, parse: regs.ParseReference,
		pl: &Pipeline{Events: events}}
}

// Verifier returns the engine.Verifier of cfg.
func Verifier(cfg engine.VerifyConfig) (engine.Verifier, error) {
	regs, err := registry.New(registry.Options{Insecure: cfg.Insecure, UserAgent: cfg.UserAgent})
	if err != nil {
		return nil, err
	}
	return NewImageVerifier(cfg.Key, regs, cfg.Events), nil
}

// Verify checks one image reference (by tag or digest). A
// *sign.VerifyError says why it does not verify.
func (iv *ImageVerifier) Verify(ctx context.Context, ref string) (*sign.Verified, error) {
	r, err := iv.parse(ref)
	if err != nil {
		return nil, err
	}
	return iv.v.Verify(ctx, r)
}

// Gate checks the image of each workload (images maps a workload to its
// reference) in the order of ws, reports each that verifies as a Verified
// event, and returns the first that does not verify as an
// *engine.UnverifiedError.
func (iv *ImageVerifier) Gate(ctx context.Context, ws []project.Workload, images map[string]string) error {
	p := iv.pl
	for _, w := range ws {
		ref, ok := images[w.Name]
		if !ok {
			continue
		}
		start := p.now()
		v, err := iv.Verify(ctx, ref)
		if err != nil {
			return &engine.UnverifiedError{Workload: w.Name, Err: err}
		}
		p.emit(Event{Kind: Verified, Workload: w.Name, Duration: p.since(start), Reference: ref, Digest: v.Digest,
			Message: verifiedMessage(v)})
	}
	return nil
}

// verifiedMessage says what a verification found, in a line.
func verifiedMessage(v *sign.Verified) string {
	commit := "no git commit recorded"
	if v.Commit != "" {
		commit = "commit " + v.Commit
	}
	sbom := "no SBOM attested"
	if v.SBOM {
		sbom = fmt.Sprintf("SBOM of %d packages", v.Packages)
	}
	return fmt.Sprintf("signed by key %s, provenance: %s, %s", v.Signer, commit, sbom)
}

// warnUnverified verifies the image of w just pushed (reference) when the
// builds check images (dev), and warns with a Notice when it does not
// verify: dev runs it anyway, deploy would refuse it.
func (p *Pipeline) warnUnverified(ctx context.Context, b Builds, w project.Workload, reference string) {
	if b.Check == nil || b.Dest != DestRegistry {
		return
	}
	if _, err := b.Check.Verify(ctx, reference); err != nil {
		p.emit(Event{Kind: Notice, Workload: w.Name, Message: fmt.Sprintf("warning: %v; dev runs it, deploy would refuse it", err)})
	}
}
