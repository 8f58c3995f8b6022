package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-gw/herald/internal/api"
	"github.com/herald-gw/herald/internal/auth"
	"github.com/herald-gw/herald/internal/devices"
	"github.com/herald-gw/herald/internal/dialect/channels"
	"github.com/herald-gw/herald/internal/dialect/ess"
	"github.com/herald-gw/herald/internal/dialect/stomp"
	"github.com/herald-gw/herald/internal/dialect/streams"
	"github.com/herald-gw/herald/internal/engine"
	"github.com/herald-gw/herald/internal/hub"
	"github.com/herald-gw/herald/internal/ingest"
	"github.com/herald-gw/herald/internal/session"
	"github.com/herald-gw/herald/internal/wsconn"
)

// Version is herald's version, shown in CONNECTED and logs.
var Version = "0.1.0-dev"

// Server is one herald node.
type Server struct {
	cfg       Config
	logger    *slog.Logger
	engine    *engine.Engine
	hub       *hub.Hub
	api       *api.API
	http      *http.Server
	listener  net.Listener
	bootstrap Bootstrap
	gauges    session.Gauges
	node      *session.Node // shared by every session of the node
	stomp     *stomp.Config // shared by the STOMP connections

	channels     *channels.Config // shared by the channels connections
	ess          *ess.Config      // shared by the ess connections
	streams      *streams.Config  // shared by the streams connections
	streamsIndex *streams.Index   // fed by devices
	channelConns atomic.Int64
	ingest       *ingestMetrics
	tokens       *auth.Verifier // the configured keys, or the engine's generated secret
	users        *userLimits
	devices      *devices.Directory
	statusMu     sync.Mutex
	statusAt     time.Time     // guarded by statusMu: the previous system status reading
	statusCPU    time.Duration // guarded by statusMu

	ready           atomic.Bool // serving: set by Run once it follows the log, cleared when shutdown begins
	draining        atomic.Bool // asked to stop: /readyz answers 503 while the node still serves
	readiness       readinessWatch
	metricsListener net.Listener    // nil: /metrics is on the main listener
	tls             *tlsCertificate // nil: plain http
	mu              sync.Mutex
	conns           map[*wsconn.Conn]string // guarded by mu: each connection's dialect
	closed          closedStats             // guarded by mu: what the connections no longer tracked wrote
	closing         bool                    // guarded by mu
}

// New opens the engine, applies the config's orgs and binds the listener.
// It does not serve until Run.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Server, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	eng, err := engine.Open(ctx, engine.Config{
		DataDir:  filepath.Clean(cfg.DataDir),
		NATSURLs: cfg.NATS,
		NATSAuth: engine.NATSAuth(cfg.NATSAuth),
		Replicas: cfg.Replicas,
		Sync:     cfg.Sync,
		MaxAge:   cfg.Retention.MaxAge,
		MaxBytes: cfg.Retention.MaxBytes,
		State:    cfg.State.limits(),
		MaxBatch: cfg.Limits.MaxBatch,
		Logger:   logger,

		AcceptDataLoss: cfg.AcceptDataLoss,
	})
	if err != nil {
		return nil, fmt.Errorf("open engine: %w", err)
	}
	boot, err := applyConfig(ctx, eng, cfg.Orgs)
	if err != nil {
		eng.Close()
		return nil, fmt.Errorf("apply config: %w", err)
	}
	head, err := eng.LastID(ctx)
	if err != nil {
		eng.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		eng.Close()
		return nil, err
	}
	s := &Server{
		cfg: cfg, logger: logger, engine: eng, hub: hub.New(head), listener: ln, bootstrap: boot,
		conns: make(map[*wsconn.Conn]string), ingest: newIngestMetrics(),
	}
	if cfg.TLS.CertFile != "" {
		s.tls = &tlsCertificate{cfg: cfg.TLS}
		if err := s.tls.load(); err != nil {
			ln.Close()
			eng.Close()
			return nil, err
		}
		s.listener = s.tls.listener(ln)
	}
	if cfg.Metrics.Listen != "" {
		if s.metricsListener, err = net.Listen("tcp", cfg.Metrics.Listen); err != nil {
			ln.Close()
			eng.Close()
			return nil, fmt.Errorf("metrics.listen: %w", err)
		}
	}
	node := session.Node{
		Log: eng, Hub: s.hub, Logger: logger, Gauges: &s.gauges,
		// Every append this node acknowledged, and every event it followed:
		// "from now" without asking the engine on the reader goroutine.
		Acked:            func() uint64 { return max(eng.Acked(), s.hub.Head()) },
		MaxSubscriptions: cfg.Limits.MaxSubscriptions,
		Store:            eng,
		DetachWindow:     cfg.Sessions.DetachWindow,
	}.WithDefaults()
	s.node = &node
	stompCfg := s.stompConfig()
	s.stomp = &stompCfg
	s.streamsIndex = streams.NewIndex()
	s.users, s.devices = newUserLimits(cfg.Limits.Channels), devices.New(s.streamsIndex.Put)
	jwtCfg, signingSecret, err := tokenKeys(ctx, cfg, eng, logger)
	if err == nil {
		s.tokens, err = auth.NewVerifier(ctx, jwtCfg, eng)
	}
	if err != nil {
		ln.Close()
		if s.metricsListener != nil {
			s.metricsListener.Close()
		}
		eng.Close()
		return nil, fmt.Errorf("auth: %w", err)
	}
	s.channels = s.channelsConfig(s.tokens)
	s.api = &api.API{
		Log: eng, State: eng, Registry: eng, Keys: auth.Keys{Registry: eng}, Logger: logger,
		MaxBodyBytes: cfg.Limits.MaxBodyBytes, Ingest: ingest.Limits{MaxEvents: cfg.Limits.MaxBatch, MaxTriggers: cfg.Limits.MaxTriggers, MaxMetrics: cfg.Limits.MaxMetrics},
		Health: s.healthSource(), Tokens: s.tokens, Numbers: s.devices, Ingested: s.ingest,
		IDP: api.IDPConfig{Secret: signingSecret, TTL: cfg.Auth.TokenTTL, CORSOrigins: cfg.Auth.CORSOrigins},
	}
	s.ess = s.essConfig()
	s.streams = s.streamsConfig()
	mux := http.NewServeMux()
	s.api.Register(mux)
	if s.metricsListener == nil {
		mux.Handle("GET /metrics", s.api.AdminOnly(s.metricsHandler()))
	}
	mux.HandleFunc("POST /session", s.postSession)
	mux.HandleFunc("GET /api/streams", s.getStreams)
	for _, d := range s.dialects() {
		for _, path := range d.paths {
			mux.HandleFunc("GET "+path, d.serve)
		}
	}
	h := cfg.HTTP
	// The timeouts bound plain requests only: a WebSocket is hijacked, and
	// the upgrader (gobwas ws.HTTPUpgrader) clears the deadlines net/http
	// left on it (e2e TestWebSocketOutlivesHTTPTimeouts).
	s.http = &http.Server{Handler: s.api.Handler(mux), ReadHeaderTimeout: h.ReadHeaderTimeout, ReadTimeout: h.ReadTimeout,
		IdleTimeout: h.IdleTimeout, ConnState: newIPLimits(h.MaxConnsPerIP, logger).connState,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug)}
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// Bootstrap returns what the first start created (APIKey is set only on
// the start that created it).
func (s *Server) Bootstrap() Bootstrap { return s.bootstrap }

// Run follows the log into the hub and serves until stop is done, then
// shuts down: /readyz answers 503 at once, the node goes on serving for
// readiness.drain_delay, then connections are closed and the engine is
// flushed and closed.
func (s *Server) Run(stop context.Context) error {
	ctx, cancel := context.WithCancel(context.WithoutCancel(stop))
	defer cancel()
	// The device directory serves the delivery path from memory; connections
	// are served once it holds what the registry had (or after a pause, if
	// the engine is slow to answer: it fills in as the watch goes on).
	devicesReady := make(chan struct{})
	directoryDone := make(chan struct{})
	go func() {
		defer close(directoryDone)
		s.devices.Follow(ctx, s.engine, func() { close(devicesReady) }, func(err error) {
			s.logger.Warn("device watch failed; retrying", "err", err)
		})
	}()
	defer func() { <-directoryDone }()
	select {
	case <-devicesReady:
	case <-time.After(10 * time.Second):
		s.logger.Warn("the device directory is not loaded yet; devices may show without their numbers for a while")
	case <-stop.Done():
	}
	followErr := make(chan error, 1)
	go func() { followErr <- s.hub.Follow(ctx, s.engine) }()
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.http.Serve(s.listener) }()
	if s.metricsListener != nil {
		go func() {
			if err := s.serveMetrics(ctx); err != nil {
				s.logger.Error("metrics listener failed", "err", err)
			}
		}()
	}
	trimDone := make(chan struct{})
	go func() { defer close(trimDone); s.trimMemory(ctx, trimEvery) }()
	defer func() { <-trimDone }()
	revocationsDone := make(chan struct{})
	go func() { defer close(revocationsDone); s.watchRevocations(ctx) }()
	defer func() { <-revocationsDone }()
	s.checkReadiness(ctx)
	readinessDone := make(chan struct{})
	go func() { defer close(readinessDone); s.watchReadiness(ctx) }()
	defer func() { <-readinessDone }()
	// Ready from here: the hub follows from its head, so an event appended
	// before the follower's consumer exists is still dispatched.
	s.ready.Store(stop.Err() == nil)

	var err error
	followed := false
	select {
	case <-stop.Done():
		s.drain()
	case err = <-serveErr:
	case err = <-followErr:
		followed = true
		err = fmt.Errorf("event log follower stopped: %w", err)
	}
	s.ready.Store(false)
	cancel()
	s.shutdown()
	if followed {
		return err
	}
	if e := <-followErr; err == nil && e != nil && !errors.Is(e, context.Canceled) {
		err = e
	}
	return err
}

// drain waits readiness.drain_delay with /readyz answering 503 and
// everything else served as before.
func (s *Server) drain() {
	s.draining.Store(true)
	if d := s.cfg.Readiness.DrainDelay; d > 0 {
		s.logger.Info("draining: /readyz answers 503 before the node stops", "for", d)
		time.Sleep(d)
	}
}

func (s *Server) shutdown() {
	s.mu.Lock()
	s.closing = true
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.http.Shutdown(shutdownCtx); err != nil {
		s.logger.Warn("HTTP shutdown did not finish in time; closing what is left", "err", err)
	}
	for c := range conns {
		c.Close()
	}
	if s.tokens != nil {
		s.tokens.Close()
	}
	if err := s.engine.Close(); err != nil {
		s.logger.Error("engine close", "err", err)
	}
}

func (s *Server) track(c *wsconn.Conn, dialect string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = dialect
	return true
}

func (s *Server) untrack(c *wsconn.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[c]; ok {
		s.closed.add(c.Stats())
		delete(s.conns, c)
	}
}

// ipLimits caps each remote IP's connections that net/http still serves
// (new, active or idle keep-alive): hijacked ones, the WebSockets, leave
// the count, which their own limits bound. A connection over the cap is
// closed as soon as it is accepted, before a byte of it is read.
type ipLimits struct {
	max    int // -1: no cap
	logger *slog.Logger
	mu     sync.Mutex
	ips    map[string]*ipCount // guarded by mu; an IP with no connection and no recent warning has no entry
}

type ipCount struct {
	open    int       // connections counted
	refused int       // connections refused since the last warning
	warned  time.Time // the last warning, at most one a minute per IP
}

func newIPLimits(max int, logger *slog.Logger) *ipLimits {
	return &ipLimits{max: max, logger: logger, ips: make(map[string]*ipCount)}
}

// connState is the http.Server's ConnState hook. Every connection is
// counted at StateNew and leaves the count at its one terminal state,
// StateHijacked or StateClosed (a refused one too: closing it ends it).
func (l *ipLimits) connState(c net.Conn, state http.ConnState) {
	if l.max < 0 {
		return
	}
	ip := remoteIP(c)
	now := time.Now()
	switch state {
	case http.StateNew:
		ok, refused := l.admit(ip, now)
		if !ok {
			c.Close()
		}
		if refused > 0 {
			l.logger.Warn("refusing connections: this IP holds the most HTTP connections it may (http.max_conns_per_ip)",
				"ip", ip, "max", l.max, "refused", refused)
		}
	case http.StateHijacked, http.StateClosed:
		l.mu.Lock()
		defer l.mu.Unlock()
		if n := l.ips[ip]; n != nil {
			if n.open--; n.open <= 0 && now.Sub(n.warned) >= time.Minute {
				delete(l.ips, ip)
			}
		}
	}
}

// admit counts a new connection of ip and reports whether it is within
// the cap; when a warning is due (at most one a minute per IP), refused is
// how many were refused since the last one, else 0.
func (l *ipLimits) admit(ip string, now time.Time) (ok bool, refused int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.ips[ip]
	if n == nil {
		n = &ipCount{}
		l.ips[ip] = n
	}
	n.open++
	if n.open <= l.max {
		return true, 0
	}
	n.refused++
	if now.Sub(n.warned) < time.Minute {
		return false, 0
	}
	refused, n.warned, n.refused = n.refused, now, 0
	l.pruneLocked(now)
	return false, refused
}

// pruneLocked drops the entries kept only for their warning time.
func (l *ipLimits) pruneLocked(now time.Time) {
	for ip, n := range l.ips {
		if n.open <= 0 && now.Sub(n.warned) >= time.Minute {
			delete(l.ips, ip)
		}
	}
}

// remoteIP is the key of c's remote address in ipLimits: the IPv4
// address, or the IPv6 address's /64. One host is usually given a whole
// /64 (SLAAC, privacy addresses), so a cap per exact IPv6 address would be
// a cap one host can multiply at will.
func remoteIP(c net.Conn) string {
	a, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return c.RemoteAddr().String()
	}
	if ip4 := a.IP.To4(); ip4 != nil {
		return ip4.String()
	}
	return a.IP.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

func (s *Server) connOptions() wsconn.Options {
	l := s.cfg.Limits
	return wsconn.Options{MaxMessageBytes: l.MaxFrameBytes, QueueMessages: l.QueueMessages,
		QueueBytes: l.QueueBytes, WriteTimeout: l.WriteTimeout}
}

func (s *Server) stompConfig() stomp.Config {
	l := s.cfg.Limits
	return stomp.Config{
		Node:      s.node,
		Limits:    stomp.Limits{MaxHeaderLines: l.StompHeaderLines, MaxHeaderBytes: l.StompHeaderBytes, MaxBodyBytes: l.StompBodyBytes},
		HeartBeat: l.HeartBeat, MaxPendingAcks: l.MaxPendingAcks, MaxTransactions: l.MaxTransactions,
		ServerName: "herald/" + Version,
	}.WithDefaults()
}
