package localbus

import (
	"testing"

	"go.uber.org/goleak"
)

// Nothing the bus, its sink or its deliveries start may outlive Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
