package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-gw/herald"
)

// Compile-time proof that the engine is everything the root package asks of it.
var (
	_ herald.EventLog     = (*Engine)(nil)
	_ herald.StateView    = (*Engine)(nil)
	_ herald.Registry     = (*Engine)(nil)
	_ herald.SessionStore = (*Engine)(nil)
)

// Names of the JetStream assets. They are part of the on-disk and
// in-cluster format: renaming one orphans existing data.
const (
	eventsStream   = "EVENTS"
	stateStream    = "STATE"
	eventsSubjects = "ev.>"

	bucketOrgs     = "herald_orgs"
	bucketKeys     = "herald_keys"
	bucketUsers    = "herald_users"
	bucketDevices  = "herald_devices"
	bucketSettings = "herald_settings"
	bucketSessions = "herald_sessions"
)

// Durability modes of Config.Sync.
const (
	// SyncAlways fsyncs every write before acknowledging it.
	SyncAlways = "always"
	// SyncInterval writes to the OS before acknowledging and fsyncs every
	// Config.SyncInterval: safe against kill -9, not against power loss.
	SyncInterval = "interval"
)

// Modes reported by Engine.Mode.
const (
	// ModeEmbedded is an engine running its own NATS server in process.
	ModeEmbedded = "embedded"
	// ModeExternal is an engine connected to an external NATS cluster.
	ModeExternal = "external"
)

// requestTimeout bounds a request whose context carries no deadline, so
// that a lost reply can never park a caller forever.
const requestTimeout = 10 * time.Second

// maxInflightBatches keeps this node under the server's default limit of
// 50 open atomic batches per stream, so that concurrent Appends queue here
// instead of failing there.
const maxInflightBatches = 32

// Config configures an Engine. The zero value of every field but DataDir
// is a usable default, applied by Open.
type Config struct {
	// DataDir is where the embedded server keeps its JetStream file store
	// (DataDir/jetstream). Required in embedded mode, unused in external mode.
	DataDir string
	// NATSURLs, when not empty, makes the engine connect to an external
	// NATS cluster instead of embedding a server.
	NATSURLs []string
	// NATSAuth is how the engine authenticates to the external cluster
	// and trusts its TLS certificate; the zero value: no credential
	// (or the one in the URLs), the system's roots.
	NATSAuth NATSAuth
	// Replicas of every stream and bucket in external mode; default 1.
	// Embedded mode has one server, so more than 1 is an error there.
	Replicas int
	// Sync is SyncAlways (fsync before every acknowledgement) or
	// SyncInterval (default; see the package documentation for what an
	// acknowledgement then guarantees). Embedded mode only: an external
	// cluster's durability is its own configuration.
	Sync string
	// SyncInterval is how often SyncInterval mode fsyncs; default 2m.
	SyncInterval time.Duration
	// MaxAge removes log events older than this; 0 keeps them forever.
	// The engine applies it every second, and never to an event the
	// state view has not copied yet (see retention in state.go).
	MaxAge time.Duration
	// MaxBytes removes the oldest log events beyond about this size; 0
	// is unlimited. Applied like MaxAge, and after appends that take the
	// log past it by a sixteenth.
	MaxBytes int64
	// State bounds the state view; the zero value keeps the newest event
	// of every subject forever (see StateLimits).
	State StateLimits
	// DedupeWindow is how long a record's Key is remembered; default 2m,
	// and never more than MaxAge (a key would outlive its event).
	DedupeWindow time.Duration
	// MaxBatch is the most records one Append takes; default 1000. The
	// embedded server's atomic batch limit is set to it; an external
	// server keeps its own (1000 unless configured).
	MaxBatch int
	// AcceptDataLoss lets Open start on an embedded log that ends below the
	// highest id it acknowledged (a damaged data directory): it empties the
	// log and continues after that id, so that no id is reused, and
	// DataLoss reports it. False (the default) makes Open refuse instead.
	AcceptDataLoss bool
	// Logger receives the engine's logs and the embedded server's:
	// its warnings and errors at their level, the rest at debug level;
	// nil discards them.
	Logger *slog.Logger
}

// withDefaults validates cfg and fills in every default, so that the rest
// of the package reads settled values.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	external := len(cfg.NATSURLs) > 0
	if !external && cfg.DataDir == "" {
		return cfg, herald.Errorf(herald.EINVALID, "engine: a data directory is required without NATS URLs")
	}
	switch {
	case cfg.Replicas < 0:
		return cfg, herald.Errorf(herald.EINVALID, "engine: replicas must not be negative")
	case cfg.Replicas == 0:
		cfg.Replicas = 1
	case cfg.Replicas > 1 && !external:
		return cfg, herald.Errorf(herald.EINVALID, "engine: %d replicas need an external NATS cluster", cfg.Replicas)
	}
	switch cfg.Sync {
	case "":
		cfg.Sync = SyncInterval
	case SyncAlways, SyncInterval:
	default:
		return cfg, herald.Errorf(herald.EINVALID, "engine: sync must be %q or %q, not %q", SyncAlways, SyncInterval, cfg.Sync)
	}
	if cfg.SyncInterval < 0 || cfg.MaxAge < 0 || cfg.MaxBytes < 0 || cfg.DedupeWindow < 0 || cfg.MaxBatch < 0 {
		return cfg, herald.Errorf(herald.EINVALID, "engine: durations, sizes and counts must not be negative")
	}
	if err := cfg.State.validate(); err != nil {
		return cfg, err
	}
	if cfg.SyncInterval == 0 {
		cfg.SyncInterval = 2 * time.Minute
	}
	if cfg.DedupeWindow == 0 {
		cfg.DedupeWindow = 2 * time.Minute
	}
	if cfg.MaxAge > 0 && cfg.DedupeWindow > cfg.MaxAge {
		cfg.DedupeWindow = cfg.MaxAge
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = 1000
	}
	return cfg, nil
}

// Engine is herald's event log, state view, registry and session store
// on NATS JetStream, embedded in the process or in an external cluster.
// It is safe for concurrent use.
type Engine struct {
	cfg         Config
	followStall time.Duration // a follower quiet this long while the log grew is replaced
	log         *slog.Logger
	server      *server.Server // nil in external mode
	conn        *nats.Conn
	js          jetstream.JetStream

	events jetstream.Stream
	state  jetstream.Stream

	orgs, keys, users, devices, settings jetstream.KeyValue
	sessions                             jetstream.KeyValue // see sessions.go

	batchSlots chan struct{}
	pipe       *pipeline     // publishes Appends; see append.go
	retention  *retention    // applies MaxAge and MaxBytes; nil without them; see state.go
	acked      atomic.Uint64 // see Acked
	dataLoss   bool          // see DataLoss; set by Open
	marked     mark          // what the mark file holds; owned by recordMarks, then by Close (highwater.go)
	markStop   chan struct{} // nil in external mode
	markDone   chan struct{}
	serverLog  *serverLogger // nil in external mode; see checkMark
	closeOnce  sync.Once
	closeErr   error
}

// Open starts an embedded NATS server or connects to an external cluster,
// then makes sure the streams and buckets exist with the configured
// settings. It is safe to call on existing data: nothing is reset.
func Open(ctx context.Context, cfg Config) (*Engine, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, log: cfg.Logger, batchSlots: make(chan struct{}, maxInflightBatches), followStall: 5 * time.Second}
	if len(cfg.NATSURLs) == 0 {
		err = e.startEmbedded(ctx)
	} else {
		err = e.connectExternal(ctx)
	}
	if err == nil {
		err = e.ensureAssets(ctx)
	}
	if err == nil && e.server != nil {
		err = e.checkMark(ctx)
	}
	if err != nil {
		e.Close()
		return nil, err
	}
	e.startRetention()
	e.log.Info("engine open", "mode", e.Mode(), "sync", cfg.Sync, "replicas", cfg.Replicas,
		"state_max_entries", cfg.State.MaxEntries, "state_max_bytes", cfg.State.MaxBytes, "state_max_age", cfg.State.MaxAge)
	return e, nil
}

// Mode reports ModeEmbedded or ModeExternal, for logs and health checks.
func (e *Engine) Mode() string {
	if e.server != nil {
		return ModeEmbedded
	}
	return ModeExternal
}

// Close drains the connection, so that in-flight publishes get their
// acknowledgements, and then stops the embedded server. Calls after the
// first return the first one's result.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() {
		e.stopRetention()
		if e.conn != nil && !e.conn.IsClosed() {
			closed := make(chan struct{})
			e.conn.SetClosedHandler(func(*nats.Conn) { close(closed) })
			if err := e.conn.Drain(); err != nil {
				e.conn.Close()
			}
			select {
			case <-closed:
			case <-time.After(requestTimeout):
				e.conn.Close()
				e.closeErr = herald.Errorf(herald.EUNAVAILABLE, "engine: drain timed out")
			}
		}
		e.stopMarks() // after the drain: every acknowledgement has arrived
		if e.server != nil {
			e.server.Shutdown()
			e.server.WaitForShutdown()
		}
	})
	return e.closeErr
}

func (e *Engine) startEmbedded(ctx context.Context) error {
	opts := &server.Options{
		ServerName:   "herald",
		JetStream:    true,
		StoreDir:     e.cfg.DataDir,
		DontListen:   true,
		NoSigs:       true,
		SyncAlways:   e.cfg.Sync == SyncAlways,
		SyncInterval: e.cfg.SyncInterval,
		JetStreamLimits: server.JSLimitOpts{
			MaxBatchSize: e.cfg.MaxBatch,
		},
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return herald.Errorf(herald.EINVALID, "engine: embedded server: %v", err)
	}
	logs := &serverLogger{log: e.log}
	ns.SetLoggerV2(logs, false, false, false)
	e.server, e.serverLog = ns, logs
	// Start recovers JetStream before it returns, which on a large data
	// directory takes a while; it cannot be interrupted.
	ns.Start()
	for !ns.ReadyForConnections(100 * time.Millisecond) {
		if err := logs.fatal(); err != nil {
			return herald.Errorf(herald.EUNAVAILABLE, "engine: embedded server: %v", err)
		}
		if ctx.Err() != nil {
			return herald.Errorf(herald.EUNAVAILABLE, "engine: embedded server not ready: %v", ctx.Err())
		}
	}
	if err := logs.fatal(); err != nil || !ns.JetStreamEnabled() {
		return herald.Errorf(herald.EUNAVAILABLE, "engine: embedded JetStream did not start: %v", err)
	}
	e.log.Debug("embedded NATS server ready", "dir", filepath.Join(e.cfg.DataDir, "jetstream"))
	conn, err := nats.Connect("", nats.InProcessServer(ns), nats.Name("herald"))
	if err != nil {
		return herald.Errorf(herald.EUNAVAILABLE, "engine: connect to embedded server: %v", err)
	}
	return e.useConnection(conn)
}

// NATSAuth are the external cluster's connection options. At most one of
// the credentials (User and Password, Token, NKeySeedFile, CredsFile) is
// given.
type NATSAuth struct {
	User, Password string
	Token          string
	NKeySeedFile   string // a user's NKey seed (nk -gen user)
	CredsFile      string // a user's JWT and seed (nsc generate creds), for operator mode
	CAFile         string // PEM roots the cluster's certificate must chain to; a tls:// or the server's TLS requirement turns TLS on
	CertFile       string // PEM client certificate, for a cluster that verifies clients
	KeyFile        string // its key
}

// options are a and its checks, as nats.Options.
func (a NATSAuth) options() ([]nats.Option, error) {
	var opts []nats.Option
	credentials := 0
	if a.User != "" || a.Password != "" {
		credentials++
		opts = append(opts, nats.UserInfo(a.User, a.Password))
	}
	if a.Token != "" {
		credentials++
		opts = append(opts, nats.Token(a.Token))
	}
	if a.NKeySeedFile != "" {
		credentials++
		opt, err := nats.NkeyOptionFromSeed(a.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("nats nkey seed file: %w", err)
		}
		opts = append(opts, opt)
	}
	if a.CredsFile != "" {
		credentials++
		if _, err := os.Stat(a.CredsFile); err != nil {
			return nil, fmt.Errorf("nats creds file: %w", err)
		}
		opts = append(opts, nats.UserCredentials(a.CredsFile))
	}
	if credentials > 1 {
		return nil, errors.New("nats: give one credential: user and password, a token, an nkey seed file or a creds file")
	}
	if a.CAFile != "" {
		if _, err := os.Stat(a.CAFile); err != nil {
			return nil, fmt.Errorf("nats CA file: %w", err)
		}
		opts = append(opts, nats.RootCAs(a.CAFile))
	}
	if (a.CertFile == "") != (a.KeyFile == "") {
		return nil, errors.New("nats: the client certificate and its key go together")
	}
	if a.CertFile != "" {
		opts = append(opts, nats.ClientCert(a.CertFile, a.KeyFile))
	}
	return opts, nil
}

func (e *Engine) connectExternal(ctx context.Context) error {
	auth, err := e.cfg.NATSAuth.options()
	if err != nil {
		return herald.Errorf(herald.EINVALID, "engine: %v", err)
	}
	conn, err := nats.Connect(strings.Join(e.cfg.NATSURLs, ","), append(auth,
		nats.Name("herald"),
		nats.MaxReconnects(-1), // a gateway node outlives any one NATS node
		nats.ReconnectWait(250*time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.Timeout(connectTimeout(ctx)),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			e.log.Warn("NATS disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			e.log.Info("NATS reconnected", "url", c.ConnectedUrlRedacted())
		}),
	)...)
	if err != nil {
		return herald.Errorf(herald.EUNAVAILABLE, "engine: connect to %s: %v", strings.Join(e.cfg.NATSURLs, ","), err)
	}
	return e.useConnection(conn)
}

func connectTimeout(ctx context.Context) time.Duration {
	if deadline, ok := ctx.Deadline(); ok {
		return max(time.Until(deadline), time.Millisecond)
	}
	return nats.DefaultTimeout
}

func (e *Engine) useConnection(conn *nats.Conn) error {
	e.conn = conn
	js, err := jetstream.New(conn, jetstream.WithDefaultTimeout(requestTimeout))
	if err != nil {
		return herald.Errorf(herald.EINTERNAL, "engine: jetstream: %v", err)
	}
	e.js = js
	if e.pipe, err = newPipeline(conn); err != nil {
		return herald.Errorf(herald.EINTERNAL, "engine: subscribe to acknowledgements: %v", err)
	}
	return nil
}

// ensureAssets creates or updates the streams and buckets. Updating keeps
// data and lets a changed retention or replica count take effect.
func (e *Engine) ensureAssets(ctx context.Context) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	events := jetstream.StreamConfig{
		Name:               eventsStream,
		Description:        "herald event log: id = sequence",
		Subjects:           []string{eventsSubjects},
		Storage:            jetstream.FileStorage,
		Replicas:           e.cfg.Replicas,
		Retention:          jetstream.LimitsPolicy,
		Discard:            jetstream.DiscardOld,
		MaxAge:             0,  // the engine applies the limits (state.go, retention):
		MaxBytes:           -1, // the server would remove events STATE has not copied
		MaxMsgs:            -1,
		Duplicates:         e.cfg.DedupeWindow,
		AllowAtomicPublish: true,
	}
	state := stateStreamConfig(e.cfg.State, e.cfg.Replicas)
	for _, want := range []jetstream.StreamConfig{events, state} {
		if err := e.checkStream(ctx, want); err != nil {
			return err
		}
	}
	var err error
	if e.events, err = e.js.CreateOrUpdateStream(ctx, events); err != nil {
		return engineError("create stream "+eventsStream, err)
	}
	if e.state, err = e.js.CreateOrUpdateStream(ctx, state); err != nil {
		return engineError("create stream "+stateStream, err)
	}
	for _, b := range []struct {
		kv   *jetstream.KeyValue
		name string
	}{
		{&e.orgs, bucketOrgs},
		{&e.keys, bucketKeys},
		{&e.users, bucketUsers},
		{&e.devices, bucketDevices},
		{&e.settings, bucketSettings},
	} {
		*b.kv, err = e.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:   b.name,
			History:  1,
			Storage:  jetstream.FileStorage,
			Replicas: e.cfg.Replicas,
		})
		if err != nil {
			return engineError("create bucket "+b.name, err)
		}
	}
	// LimitMarkerTTL turns on the per-message TTLs that expire sessions.
	e.sessions, err = e.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         bucketSessions,
		History:        1,
		Storage:        jetstream.FileStorage,
		Replicas:       e.cfg.Replicas,
		LimitMarkerTTL: sessionMarkerTTL,
	})
	if err != nil {
		return engineError("create bucket "+bucketSessions, err)
	}
	return nil
}

// checkStream compares an existing stream with what herald needs. A
// stream herald cannot use as it is (another retention, storage or
// subjects: made by something else, or by hand) is an error that names
// the difference, and nothing is changed or recreated; a replica count
// other than the configured one is changed, and said in the log, since
// that is what the replicas setting asks for.
func (e *Engine) checkStream(ctx context.Context, want jetstream.StreamConfig) error {
	stream, err := e.js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return engineError("look up stream "+want.Name, err)
	}
	have := stream.CachedInfo().Config
	var differences []string
	if have.Retention != want.Retention {
		differences = append(differences, fmt.Sprintf("retention %s (herald needs %s)", have.Retention, want.Retention))
	}
	if have.Storage != want.Storage {
		differences = append(differences, fmt.Sprintf("storage %s (herald needs %s)", have.Storage, want.Storage))
	}
	if !slices.Equal(have.Subjects, want.Subjects) {
		differences = append(differences, fmt.Sprintf("subjects %q (herald needs %q)", have.Subjects, want.Subjects))
	}
	if len(differences) > 0 {
		return herald.Errorf(herald.ECONFLICT, "engine: stream %s exists with %s; herald does not change or recreate a stream it cannot use: "+
			"remove it (nats stream rm %s) if its data is not needed, or point herald at another cluster or account",
			want.Name, strings.Join(differences, ", "), want.Name)
	}
	if have.Replicas != want.Replicas {
		e.log.Warn("changing the stream's replicas to the configured count", "stream", want.Name, "from", have.Replicas, "to", want.Replicas)
	}
	return nil
}

// withTimeout gives ctx a deadline if it has none.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, requestTimeout)
}

// engineError maps a NATS failure to a coded error: the caller can retry
// EUNAVAILABLE; everything else is a bug or a broken deployment.
func engineError(op string, err error) error {
	if err == nil {
		return nil
	}
	var coded *herald.Error
	if errors.As(err, &coded) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	var api *jetstream.APIError
	if errors.As(err, &api) {
		switch {
		case api.ErrorCode == errCodeBatchTooLarge || api.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum:
			return herald.Errorf(herald.ETOOLARGE, "engine: %s: %s", op, api.Description)
		case api.Code == 429 || api.Code == 503:
			return herald.Errorf(herald.EUNAVAILABLE, "engine: %s: %s", op, api.Description)
		}
		return herald.Errorf(herald.EINTERNAL, "engine: %s: %s (code %d)", op, api.Description, api.ErrorCode)
	}
	if errors.Is(err, nats.ErrMaxPayload) {
		return herald.Errorf(herald.ETOOLARGE, "engine: %s: %v", op, err)
	}
	if errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrConnectionClosed) ||
		errors.Is(err, nats.ErrConnectionDraining) ||
		errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
		return herald.Errorf(herald.EUNAVAILABLE, "engine: %s: %v", op, err)
	}
	return herald.Errorf(herald.EINTERNAL, "engine: %s: %v", op, err)
}

// serverLogger routes the embedded server's logs to slog. Warnings and
// errors keep their level: they are how the server reports a damaged
// store it recovered from by dropping data (issue 9). Notices, debug and
// trace are NATS internals, useful only when debugging the engine itself,
// and go to debug level. Fatal messages are kept, because the server
// reports a failed start only through its logger.
//
// It counts the warnings and errors: those logged while Open runs are the
// server's report of what it repaired in the store, which checkMark sums
// up in herald's own words (highwater.go).
type serverLogger struct {
	log      *slog.Logger
	problems atomic.Int64

	mu   sync.Mutex
	last error
}

func (l *serverLogger) Noticef(format string, v ...any) { l.debug("notice", format, v) }
func (l *serverLogger) Warnf(format string, v ...any) {
	l.problems.Add(1)
	l.log.Warn("nats-server: " + fmt.Sprintf(format, v...))
}
func (l *serverLogger) Errorf(format string, v ...any) {
	l.problems.Add(1)
	l.log.Error("nats-server: " + fmt.Sprintf(format, v...))
}
func (l *serverLogger) Debugf(format string, v ...any) { l.debug("debug", format, v) }
func (l *serverLogger) Tracef(format string, v ...any) { l.debug("trace", format, v) }

func (l *serverLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error("nats-server: " + msg)
	l.mu.Lock()
	l.last = errors.New(msg)
	l.mu.Unlock()
}

func (l *serverLogger) debug(level, format string, v []any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug("nats-server: "+fmt.Sprintf(format, v...), "level", level)
	}
}

func (l *serverLogger) fatal() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}
