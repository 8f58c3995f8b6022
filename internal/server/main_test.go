package server

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/herald-gw/herald/internal/leakcheck"
)

// TestMain fails the run if tests leave goroutines behind (after
// leakcheck.Settle for them to end). The one exemption is nats-server's,
// explained in internal/engine/main_test.go.
func TestMain(m *testing.M) {
	leakcheck.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*stream).trySetupSourceConsumer.func3"),
	)
}
