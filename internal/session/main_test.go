package session

import (
	"testing"

	"github.com/herald-gw/herald/internal/leakcheck"
)

// TestMain fails the run if tests leave goroutines behind (after
// leakcheck.Settle for them to end).
func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }
