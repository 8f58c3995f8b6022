package engine_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if an engine leaves goroutines behind after
// Close: the embedded server, consumers and watchers must all stop.
//
// One nats-server goroutine is exempt: when a stream with a source is
// created shortly before shutdown, the server's wait for the source
// consumer's creation reply (stream.go trySetupSourceConsumer) does not
// watch for shutdown and ends on its own 30s timer. It holds nothing of
// ours.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*stream).trySetupSourceConsumer.func3"),
	)
}
