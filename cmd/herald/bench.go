package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"github.com/herald-gw/herald/internal/bench"
)

// Defaults of the baseline server when no herald run names an org or key.
const (
	baselineOrg = "00000000-0000-4000-8000-00000000b0b0"
	baselineKey = "bench-baseline-key"
)

// benchCommand is `herald bench`.
type benchCommand struct {
	cfg      bench.Config
	rate     string
	json     bool
	baseline bool
	stdout   io.Writer
	stderr   *os.File
	urlSet   bool // a server to measure was named (--url, --key or --server-pid)
	profile  string
	slow     string
	slowRate string
}

func newBenchCommand() *cobra.Command {
	c := &benchCommand{stdout: os.Stdout, stderr: os.Stderr}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load-test a server in any dialect: fan-out rate, latency, loss, server RSS and CPU (see docs/benchmarks.md)",
		Long: `Open --conns WebSocket connections of --dialect (stomp, channels, ess, streams),
authenticate and subscribe each to all of the org's events as that dialect does,
publish through POST /api/events at --rate for --warmup then --duration, and report
deliveries/s, end-to-end latency percentiles, lost/duplicate/out-of-order events, and
with --server-pid the server's RSS per connection and CPU seconds per million deliveries.

--baseline runs the same load against a minimal built-in server (started as a child
process on a loopback port, measured like herald) that frames each event once and
writes it to every connection with one writev: the machine's practical limit. With
--url, --key or --server-pid as well (a server to measure), that server runs first, then
the baseline, and the table gives its share; with none of them, only the baseline runs.`,
		Example: `  herald bench --key acme-key-1 --conns 1000 --rate 200/s --server-pid $(pgrep -n herald)
  herald bench --url ws://127.0.0.1:8080/websocket?x-auth-scheme=api-token --key acme-key-1 \
      --conns 10000 --rate max --baseline --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			flags := cmd.Flags()
			c.urlSet = flags.Changed("url") || flags.Changed("key") || flags.Changed("server-pid")
			return c.Run(cmd.Context(), args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.cfg.URL, "url", "ws://127.0.0.1:8080", "WebSocket URL of the dialect's endpoint; without a path, the dialect's (stomp /websocket?x-auth-scheme=api-token, channels /ws, ess /api/ws/events/v1; streams uses only the host)")
	f.StringVar(&c.cfg.HTTP, "http", "", "ingest base URL (default: --url's host over http)")
	f.StringVar(&c.cfg.Dialect, "dialect", "stomp", "wire dialect: stomp, channels, ess or streams")
	f.StringVar(&c.cfg.Key, "key", "", "API key to subscribe (and publish) with")
	f.StringVar(&c.cfg.PublishKey, "publish-key", "", "API key to publish with (default --key)")
	f.StringVar(&c.cfg.Org, "org", "", "org uuid (default: asked with POST /api/org/getOrgV2)")
	f.IntVar(&c.cfg.Conns, "conns", 1000, "connections")
	f.StringVar(&c.rate, "rate", "200/s", "events published per second (200/s, 10k/s) or max")
	f.IntVar(&c.cfg.Batch, "batch", 0, "events per ingest request (default 1 up to 500/s, then rate/500; 100 with --rate max)")
	f.IntVar(&c.cfg.Publishers, "publishers", 4, "concurrent ingest requests")
	f.IntVar(&c.cfg.Size, "size", 200, "MESSAGE frame bytes, roughly (the event is padded)")
	f.DurationVar(&c.cfg.Duration, "duration", 20*time.Second, "measured publishing time (at most 1h)")
	f.DurationVar(&c.cfg.Warmup, "warmup", 2*time.Second, "publishing before the measured time")
	f.Int64Var(&c.cfg.MaxEvents, "max-events", 2_000_000, "cap on events published, warm-up included")
	f.IntVar(&c.cfg.ServerPID, "server-pid", 0, "server process id, to read its RSS and CPU from /proc")
	f.DurationVar(&c.cfg.Settle, "settle", time.Second, "idle time after subscribing before the server's RSS is read")
	f.DurationVar(&c.cfg.ConnectTimeout, "connect-timeout", 10*time.Second, "per connection: dial, upgrade and subscription receipt")
	f.IntVar(&c.cfg.DialConcurrency, "dial-concurrency", 64, "connections being set up at once")
	f.DurationVar(&c.cfg.DrainTimeout, "drain-timeout", 10*time.Second, "after publishing, stop waiting once nothing arrived for this long")
	f.BoolVar(&c.json, "json", false, "print one JSON object on stdout instead of the table")
	f.StringVar(&c.slow, "slow", "", "connections that read slowly: a count or a share of --conns (1%)")
	f.StringVar(&c.slowRate, "slow-rate", "10KB", "bytes per second each --slow connection reads (10KB, 1MB)")
	f.BoolVar(&c.baseline, "baseline", false, "run against the built-in baseline server (after herald's run if --url is given)")
	f.StringVar(&c.profile, "cpuprofile", "", "write the bench process's own CPU profile to this file")
	f.MarkHidden("cpuprofile")
	cmd.AddCommand(newServeBaselineCommand())
	return cmd
}

// Run performs the runs and prints the report. It fails when a run could
// not be performed or was not clean (loss, duplicates, disorder, broken
// connections), after printing the report.
func (c *benchCommand) Run(ctx context.Context, _ []string) error {
	rate, err := bench.ParseRate(c.rate)
	if err != nil {
		return err
	}
	c.cfg.Rate = rate
	if c.cfg.SlowConns, err = bench.ParseShare(c.slow, c.cfg.Conns); err != nil {
		return fmt.Errorf("--slow: %w", err)
	}
	if c.cfg.SlowRate, err = bench.ParseBytes(c.slowRate); err != nil {
		return fmt.Errorf("--slow-rate: %w", err)
	}
	if c.profile != "" {
		out, err := os.Create(c.profile)
		if err != nil {
			return err
		}
		defer out.Close()
		if err := pprof.StartCPUProfile(out); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if c.isTerminal() {
		c.cfg.Progress = c.stderr
	}
	var runs []*bench.Result
	if !c.baseline || c.urlSet {
		res, err := bench.Run(ctx, c.cfg)
		if err != nil {
			return err
		}
		runs = append(runs, res)
	}
	if c.baseline {
		res, err := c.runBaseline(ctx, runs)
		if err != nil {
			return err
		}
		runs = append(runs, res)
	}
	if err := c.report(runs); err != nil {
		return err
	}
	for _, r := range runs {
		if !r.OK() {
			return fmt.Errorf("the %s run was not clean: %d lost, %d duplicate, %d out of order, %d broken connections",
				r.Label, r.Lost, r.Duplicates, r.OutOfOrder, r.BrokenConns)
		}
	}
	return nil
}

// runBaseline starts the baseline server as a child process (this binary)
// and runs the same load against it, with herald's org so frames match.
func (c *benchCommand) runBaseline(ctx context.Context, previous []*bench.Result) (*bench.Result, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	org, key := cmpOr(c.cfg.Org, baselineOrg), cmpOr(c.cfg.Key, baselineKey)
	if len(previous) > 0 {
		org = previous[0].Org
	}
	proc, err := bench.StartBaselineProcess(ctx, exe, org, key, c.cfg.Dialect)
	if err != nil {
		return nil, err
	}
	defer proc.Stop()
	cfg := c.cfg
	cfg.URL = "ws://" + proc.Addr // the dialect's path
	cfg.HTTP = ""
	cfg.Org, cfg.Key, cfg.PublishKey = org, key, key
	cfg.ServerPID = proc.PID
	cfg.Label = "baseline"
	return bench.Run(ctx, cfg)
}

func (c *benchCommand) report(runs []*bench.Result) error {
	if !c.json {
		return bench.WriteTable(c.stdout, runs...)
	}
	if len(runs) == 2 {
		return bench.WriteJSON(c.stdout, bench.Compare(runs[0], runs[1]))
	}
	return bench.WriteJSON(c.stdout, runs[0])
}

// isTerminal reports whether stderr is a terminal (the progress line
// would only clutter a file or a pipe).
func (c *benchCommand) isTerminal() bool {
	st, err := c.stderr.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// serveBaselineCommand is `herald bench serve-baseline`.
type serveBaselineCommand struct {
	listen      string
	org         string
	key         string
	dialect     string
	maxLifetime time.Duration
	stdinEOF    bool
	stdout      io.Writer
}

func newServeBaselineCommand() *cobra.Command {
	c := &serveBaselineCommand{stdout: os.Stdout}
	cmd := &cobra.Command{
		Use:   "serve-baseline",
		Short: "Run the bench's minimal reference server on a loopback address",
		Long: `Run the minimal server herald bench --baseline measures, in one --dialect: for stomp,
WebSocket STOMP at /websocket (CONNECT, one SUBSCRIBE with receipt); for channels, /ws
and the token endpoint; for ess, /api/ws/events/v1; for streams, POST /session and
/session/{id}/ws; and POST /api/events and POST /api/org/getOrgV2,
with one API key and one org. Each event is framed once and written to every
connection with one writev per batch. It prints "` + bench.BaselineReadyPrefix + `ADDR" once listening.
Loopback addresses only; it stops after --max-lifetime.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return c.Run(cmd.Context(), args) },
	}
	f := cmd.Flags()
	f.StringVar(&c.listen, "listen", "127.0.0.1:8090", "loopback address to listen on")
	f.StringVar(&c.org, "org", baselineOrg, "the org uuid it serves")
	f.StringVar(&c.key, "key", baselineKey, "the API key it accepts")
	f.StringVar(&c.dialect, "dialect", "stomp", "the dialect it speaks: stomp, channels, ess or streams")
	f.DurationVar(&c.maxLifetime, "max-lifetime", time.Hour, "stop after this long")
	f.BoolVar(&c.stdinEOF, "exit-on-stdin-eof", false, "stop when stdin closes (used by herald bench --baseline)")
	f.MarkHidden("exit-on-stdin-eof")
	return cmd
}

// Run serves until ctx is done, the lifetime ends, or (with
// --exit-on-stdin-eof) stdin closes.
func (c *serveBaselineCommand) Run(ctx context.Context, _ []string) error {
	if err := bench.EnsureFileLimit(0); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.maxLifetime)
	defer cancel()
	if c.stdinEOF {
		go func() {
			io.Copy(io.Discard, os.Stdin)
			cancel()
		}()
	}
	err := bench.ServeBaseline(ctx, c.listen, c.org, c.key, c.dialect, func(addr net.Addr) {
		fmt.Fprintln(c.stdout, bench.BaselineReadyPrefix+addr.String())
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}
