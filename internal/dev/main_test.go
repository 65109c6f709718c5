package dev

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// Nothing a session, a cycle or a restore starts may outlive it.
	goleak.VerifyTestMain(m)
}
