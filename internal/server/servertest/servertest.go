// Package servertest runs a real herald server in-process for tests in
// other packages: the e2e suite and herald bench's own tests.
package servertest

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/herald-gw/herald/internal/server"
)

// Start runs a server with cfg until the test ends, and fails the test if
// it cannot start or if Run ends with an error. HERALD_TEST_LOG=1 shows
// its debug log on stderr.
func Start(tb testing.TB, cfg server.Config) *server.Server {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("HERALD_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, err := server.New(ctx, cfg, logger)
	if err != nil {
		cancel()
		tb.Fatalf("server.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("server.Run: %v", err)
		}
	})
	return srv
}
