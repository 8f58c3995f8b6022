package hub

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if tests leave goroutines behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
