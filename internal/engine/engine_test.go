package engine_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/herald-gw/herald/internal/engine"
	"github.com/herald-gw/herald/internal/engine/enginetest"
)

func TestEmbedded(t *testing.T) {
	enginetest.Run(t, enginetest.NATS(embedded))
}

func TestExternal(t *testing.T) {
	enginetest.Run(t, enginetest.NATS(external))
}

func embedded(t *testing.T) engine.Config {
	return engine.Config{DataDir: t.TempDir()}
}

// external starts a NATS server of its own, listening on a random
// loopback port, and returns the configuration that reaches it.
func external(t *testing.T) engine.Config {
	ns := startServer(t, -1, t.TempDir())
	return engine.Config{NATSURLs: []string{ns.ClientURL()}}
}

func startServer(t *testing.T, port int, dir string) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      port,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns
}
