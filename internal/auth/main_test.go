package auth

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a Verifier's JWKS refresh outlives Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
