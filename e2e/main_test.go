package e2e

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/herald-gw/herald/internal/leakcheck"
)

// TestMain fails the run if tests leave goroutines behind (after
// leakcheck.Settle for them to end). Two are exempt, both in third-party
// code:
//   - nats-server's source-consumer setup, explained in internal/engine/main_test.go;
//   - go-stomp v3.1.3's waitWithTimeout, whose helper goroutine stays in
//     cond.Wait forever when the subscription closed before it started
//     waiting (a lost wake-up in the client; see gsUnsubscribe).
func TestMain(m *testing.M) {
	leakcheck.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*stream).trySetupSourceConsumer.func3"),
		goleak.IgnoreAnyFunction("github.com/go-stomp/stomp/v3.waitWithTimeout.func1"),
	)
}
