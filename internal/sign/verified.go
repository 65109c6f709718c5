package sign

import (
	"fmt"

	"github.com/skiffdev/skiff/internal/engine"
)

// Verified is what a verification found (engine's value: the session
// reports it, the CLI renders it).
type Verified = engine.Verified

// VerifyError says an image does not verify, and why.
type VerifyError struct {
	Image  string
	Reason string
}

func (e *VerifyError) Error() string { return fmt.Sprintf("%s does not verify: %s", e.Image, e.Reason) }
