package cluster

import (
	"testing"

	"go.uber.org/goleak"
)

// Nothing a cycle, a sync or a restore starts may outlive it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
