package engine

import (
	"context"
	"crypto/ecdsa"
	"fmt"

	"github.com/skiffdev/skiff/internal/event"
	"github.com/skiffdev/skiff/internal/project"
)

// VerifyConfig says what images are verified with.
type VerifyConfig struct {
	// Key is the public key of verify: (or --key).
	Key *ecdsa.PublicKey
	// Insecure lists registry hosts that may be reached over plain HTTP.
	Insecure []string
	// UserAgent is skiff's, for registries.
	UserAgent string
	// Events receives a verified event per image Gate lets through (nil:
	// nowhere).
	Events func(event.Event)
}

// Verified is what a verification found.
type Verified struct {
	// Image is the reference verified, Digest the manifest it names.
	Image  string `json:"image"`
	Digest string `json:"digest"`
	// Signer is the fingerprint of the key whose signature verified.
	Signer string `json:"signer"`
	// Commit and Source are the git commit and repository the provenance
	// records (empty when the build was outside git).
	Commit string `json:"commit,omitempty"`
	Source string `json:"source,omitempty"`
	// Workload is the workload the provenance names.
	Workload string `json:"workload,omitempty"`
	// SBOM says an SPDX SBOM is attested; Packages is how many packages it lists.
	SBOM     bool `json:"sbom"`
	Packages int  `json:"packages"`
}

// Verifier checks images' signatures and attestations against a key.
type Verifier interface {
	// Verify checks one image reference (by tag or digest); a
	// *sign.VerifyError says why it does not verify.
	Verify(ctx context.Context, ref string) (*Verified, error)
	// Gate checks the image of each workload of ws that images names
	// (workload → reference), in order, and returns the first that does
	// not verify as an *UnverifiedError.
	Gate(ctx context.Context, ws []project.Workload, images map[string]string) error
}

// UnverifiedError says a workload's image does not verify: deploy and
// rollback refuse it before changing anything.
type UnverifiedError struct {
	Workload string
	Err      error
}

func (e *UnverifiedError) Error() string { return fmt.Sprintf("%s: %v", e.Workload, e.Err) }

func (e *UnverifiedError) Unwrap() error { return e.Err }
