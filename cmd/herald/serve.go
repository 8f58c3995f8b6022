package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

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
	logger.Info("herald serving", "addr", srv.Addr(), "data", cfg.DataDir, "sync", cfg.Sync, "tls", srv.TLS(), "version", server.Version)
	if srv.TLS() {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-hup:
					if err := srv.ReloadTLS(); err != nil {
						logger.Error("SIGHUP: the certificate was not reloaded; the old one stays", "err", err)
					} else {
						logger.Info("SIGHUP: certificate reloaded", "cert_file", cfg.TLS.CertFile)
					}
				}
			}
		}()
	}
	return srv.Run(ctx)
}

func (c *serveCommand) printWelcome(srv *server.Server, cfg server.Config) {
	addr := srv.Addr()
	boot := srv.Bootstrap()
	w := c.stdout
	ws, http := "ws", "http"
	if srv.TLS() {
		ws, http = "wss", "https"
	}
	fmt.Fprintf(w, "herald %s listening on %s (engine data in %s)\n", server.Version, addr, cfg.DataDir)
	fmt.Fprintf(w, "  WebSocket (STOMP): %s://%s/websocket?x-auth-scheme=api-token   (header x-auth-apikey)\n", ws, addr)
	fmt.Fprintf(w, "  WebSocket (JSON):  %s://%s/ws   (channels; first message {\"type\":\"auth\",\"token\":JWT})\n", ws, addr)
	fmt.Fprintf(w, "  WebSocket (ESS):   %s://%s/api/ws/events/v1   (Authorization: Bearer JWT)\n", ws, addr)
	fmt.Fprintf(w, "  Streams (Octave):  %s://%s/session/{id}/ws   (id from POST /session; headers X-Auth-Company, X-Auth-Token)\n", ws, addr)
	fmt.Fprintf(w, "  Tokens:            POST %s://%s/API/IDP/connect/token   (password grant; an API key is a password)\n", http, addr)
	fmt.Fprintf(w, "  REST:              %s://%s/api/   (header x-auth-apikey)\n", http, addr)
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

  curl -s -X POST %s://%s/api/events -H 'x-auth-apikey: %s' -H 'content-type: application/json' \
    -d '{"entity":"POLICY_ALERT","type":"CREATE","entityUuid":"alert-1","deviceUuid":"camera-1","policyAlertTriggers":["MOTION_HUMAN"],"textDescription":"Person detected near entrance"}'

`, boot.Org.Name, boot.APIKey, http, addr, boot.APIKey)
}
