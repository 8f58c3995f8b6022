package bench

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if tests leave goroutines behind. The one
// exemption is nats-server's, explained in internal/engine/main_test.go
// (the herald server the end-to-end test starts embeds it).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*stream).trySetupSourceConsumer.func3"),
	)
}
