package session

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/herald-gw/herald/internal/leakcheck"
)

// TestMain fails the run if tests leave goroutines behind (after
// leakcheck.Settle for them to end). The cluster tests run real engines,
// so the nats-server goroutine internal/engine's TestMain explains is
// exempt here too: it ends on its own 30s timer and holds nothing of ours.
func TestMain(m *testing.M) {
	leakcheck.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*stream).trySetupSourceConsumer.func3"),
	)
}
