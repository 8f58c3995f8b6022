package client_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/herald-gw/herald/internal/leakcheck"
)

// TestMain fails the run if the tests leave goroutines behind; the one
// exempt is nats-server's source-consumer setup, explained in
// internal/engine/main_test.go.
func TestMain(m *testing.M) {
	leakcheck.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*stream).trySetupSourceConsumer.func3"))
}
