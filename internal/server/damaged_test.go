package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/engine"
)

// TestDamagedLogHealth checks that a node refuses a damaged log, and
// that one started with AcceptDataLoss says in /healthz that it is
// degraded: to anyone, and why to an admin.
func TestDamagedLogHealth(t *testing.T) {
	dir := t.TempDir()
	eng, err := engine.Open(t.Context(), engine.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	records := make([]herald.Record, 100)
	for i := range records {
		records[i] = herald.Record{Org: "org-a", Channel: "alerts", Entity: "POLICY_ALERT", DeviceUUID: "dev-1",
			Data: fmt.Appendf(nil, `{"org":"org-a","channel":"alerts","entity":"POLICY_ALERT","deviceUuid":"dev-1","n":%d}`, i)}
	}
	if _, err := eng.Append(t.Context(), records); err != nil {
		t.Fatal(err)
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	blks, _ := filepath.Glob(filepath.Join(dir, "jetstream", "*", "streams", "EVENTS", "msgs", "*.blk"))
	if len(blks) != 1 {
		t.Fatalf("want one EVENTS block file, found %q", blks)
	}
	if err := os.Truncate(blks[0], 0); err != nil {
		t.Fatal(err)
	}

	cfg := Config{Listen: "127.0.0.1:0", DataDir: dir}
	if _, err := New(t.Context(), cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "accept-data-loss") {
		t.Fatalf("New on a damaged log: %v, want a refusal naming --accept-data-loss", err)
	}
	cfg.AcceptDataLoss = true
	srv, err := New(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	health := getHealth(t, srv, "")
	if len(health) != 1 || health["status"] != "degraded" {
		t.Errorf("/healthz without a credential of a node that accepted data loss: %v, want only status degraded", health)
	}
	health = getHealth(t, srv, srv.Bootstrap().APIKey)
	if health["status"] != "degraded" || health["dataLoss"] == nil {
		t.Errorf("/healthz for an admin of a node that accepted data loss: %v, want status degraded and dataLoss", health)
	}
}
