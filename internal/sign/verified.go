package sign

import "fmt"

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

// VerifyError says an image does not verify, and why.
type VerifyError struct {
	Image  string
	Reason string
}

func (e *VerifyError) Error() string { return fmt.Sprintf("%s does not verify: %s", e.Image, e.Reason) }
