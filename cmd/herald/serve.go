package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/herald-gw/herald/internal/server"
)

// defaultGCPercent is the garbage collector's target unless GOGC is set.
const defaultGCPercent = 50

// serveCommand is `herald serve`.
type serveCommand struct {
	configPath string
	debugAddr  string
	flags      server.Overrides
	stdout     io.Writer
	stderr     io.Writer
}

func newServeCommand() *cobra.Command {
	c := &serveCommand{stdout: os.Stdout, stderr: os.Stderr}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway (embedded NATS JetStream in --data, HTTP and WebSocket on --listen)",
		Long: `Run the gateway. With no config, herald stores everything under ./herald-data,
listens on 127.0.0.1:8080 and, on its first start, creates a default org and an API key.

Settings come from the config file, then HERALD_* environment variables
(HERALD_LISTEN, HERALD_DATA_DIR, HERALD_NATS, HERALD_SYNC, HERALD_REPLICAS,
HERALD_JWT_SECRET, HERALD_LOG_LEVEL), then flags: later sources win.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return c.Run(cmd.Context(), args) },
	}
	cmd.Flags().StringVar(&c.configPath, "config", "", "YAML config file")
	cmd.Flags().StringVar(&c.flags.Listen, "listen", "", "address to listen on (default 127.0.0.1:8080)")
	cmd.Flags().StringVar(&c.flags.DataDir, "data", "", "data directory of the embedded engine (default ./herald-data)")
	cmd.Flags().StringVar(&c.flags.NATS, "nats", "", "external NATS URLs, comma-separated (default: embedded engine)")
	cmd.Flags().BoolVar(&c.flags.AcceptDataLoss, "accept-data-loss", false, "start on a damaged event log: empty it and continue after the last acknowledged id (docs/operations.md, \"Damaged data\")")
	cmd.Flags().StringVar(&c.debugAddr, "debug-listen", "", "serve Go's profiler (/debug/pprof/) on this address, e.g. 127.0.0.1:6060 (default: off)")
	return cmd
}

// Run starts the server and blocks until ctx is done.
func (c *serveCommand) Run(ctx context.Context, _ []string) error {
	cfg, err := server.LoadConfig(c.configPath, c.flags)
	if err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		// herald's delivery path allocates nothing, so garbage comes from
		// connection set-up and ingest, and collecting twice as often costs
		// little CPU while an idle connection's share of the heap's
		// headroom halves (docs/decisions.md). GOGC overrides it.
		debug.SetGCPercent(defaultGCPercent)
	}
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	logger := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: level}))
	if c.debugAddr != "" {
		stop, err := startDebug(c.debugAddr, logger)
		if err != nil {
			return fmt.Errorf("debug listener: %w", err)
		}
		defer stop()
	}
	srv, err := server.New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	c.printWelcome(srv, cfg)
	logger.Info("herald serving", "addr", srv.Addr(), "data", cfg.DataDir, "sync", cfg.Sync, "version", server.Version)
	return srv.Run(ctx)
}

func (c *serveCommand) printWelcome(srv *server.Server, cfg server.Config) {
	addr := srv.Addr()
	boot := srv.Bootstrap()
	w := c.stdout
	fmt.Fprintf(w, "herald %s listening on %s (engine data in %s)\n", server.Version, addr, cfg.DataDir)
	fmt.Fprintf(w, "  WebSocket (STOMP): ws://%s/websocket?x-auth-scheme=api-token   (header x-auth-apikey)\n", addr)
	fmt.Fprintf(w, "  WebSocket (JSON):  ws://%s/ws   (channels; first message {\"type\":\"auth\",\"token\":JWT})\n", addr)
	fmt.Fprintf(w, "  WebSocket (ESS):   ws://%s/api/ws/events/v1   (Authorization: Bearer JWT)\n", addr)
	fmt.Fprintf(w, "  Streams (Octave):  ws://%s/session/{id}/ws   (id from POST /session; headers X-Auth-Company, X-Auth-Token)\n", addr)
	fmt.Fprintf(w, "  Tokens:            POST http://%s/API/IDP/connect/token   (password grant; an API key is a password)\n", addr)
	fmt.Fprintf(w, "  REST:              http://%s/api/   (header x-auth-apikey)\n", addr)
	if boot.Org.UUID != "" {
		fmt.Fprintf(w, "  Org:               %s (%s)   topic /topic/change/%s\n", boot.Org.Name, boot.Org.UUID, boot.Org.UUID)
	}
	if boot.APIKey == "" {
		return
	}
	fmt.Fprintf(w, `
First start: created org %q and an API key with every scope.
The key is stored hashed and is shown only this once:

  API key: %s

Publish a test event:

  curl -s -X POST http://%s/api/events -H 'x-auth-apikey: %s' -H 'content-type: application/json' \
    -d '{"entity":"POLICY_ALERT","type":"CREATE","entityUuid":"alert-1","deviceUuid":"camera-1","policyAlertTriggers":["MOTION_HUMAN"],"textDescription":"Person detected near entrance"}'

`, boot.Org.Name, boot.APIKey, addr, boot.APIKey)
}
