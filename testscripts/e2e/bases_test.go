//go:build e2e

package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/skiffdev/skiff/testscripts/hostbase"
)

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// bases are the references of the base images the tests push, since none
// can be pulled on these machines.
type bases = hostbase.Bases

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// pushBases builds the base images from the host and pushes them.
func pushBases(t *testing.T, registry string) bases {
	t.Helper()
	b, err := hostbase.Push(registry)
	must(t, err)
	return b
}
