// Package inmem is herald's engine in memory: an EventLog, StateView,
// Registry and SessionStore with nothing behind them but maps and slices.
//
// It is a test double, for unit tests of the packages above the engine
// (the session core above all), so that a test can drive catch-up, rejoin
// and resume edge by edge without NATS: append a few events, make
// retention remove them (Config.Retain) and see the cursor refused, move
// the clock (Config.Now) and see a detached session expire. It is not a
// mock: it keeps every documented contract of the herald interfaces and
// passes the same contract suite as the NATS engine
// (internal/engine/enginetest), and it refuses what the NATS engine
// refuses (orgs that are not a single subject token, keys with line
// breaks, empty names), so that code tested on it meets no surprise on
// the real one. Nothing survives the process.
package inmem

import (
	"sync"
	"time"

	"github.com/herald-gw/herald"
)

// Compile-time proof that Engine is everything the root package asks of
// an engine.
var (
	_ herald.EventLog     = (*Engine)(nil)
	_ herald.StateView    = (*Engine)(nil)
	_ herald.Registry     = (*Engine)(nil)
	_ herald.SessionStore = (*Engine)(nil)
)

// Config sets the knobs of an Engine. The zero value is an unlimited log
// on the real clock, with the NATS engine's default dedupe window.
type Config struct {
	// Retain, when positive, keeps only the newest Retain events in the
	// log; older ones are removed as new ones arrive, as retention does,
	// so that Replay from before them fails with ECONFLICT. 0 keeps all.
	// The state view keeps the newest event per subject regardless.
	Retain int
	// DedupeWindow is how long a record's Key is remembered; default 2m,
	// as in the NATS engine.
	DedupeWindow time.Duration
	// Now is the clock that the dedupe window and session expiry read;
	// default time.Now. A test sets it to expire things without waiting.
	Now func() time.Time
}

// Engine is the in-memory engine. It is safe for concurrent use; the
// functions passed to Replay, Follow and WatchDevices are called without
// any lock held, so they may call the engine themselves.
type Engine struct {
	cfg Config

	mu sync.Mutex
	// The log, guarded by mu. events holds the retained events, oldest
	// first, with dense ids ending at lastID. Its elements are never
	// written again once appended, so a reader may keep a subslice of it
	// after unlocking: retention only reslices it, and append only writes
	// past every subslice's end.
	events   []stored
	lastID   uint64
	appended chan struct{} // closed, and replaced, by every Append that stores something
	dedupe   map[string]dedupeEntry
	keyOrder []dedupeEntry             // dedupe entries in the order they expire
	state    map[subject]*herald.Event // newest event per subject

	// The registry, guarded by mu. Devices carry a revision, the order in
	// which they were put, to list them in that order to a new watcher.
	orgs           map[string]herald.Org
	apiKeys        map[string]herald.APIKey
	users          map[scoped]herald.User
	devices        map[scoped]revisioned
	deviceRevision uint64
	watchers       map[*watcher[herald.Device]]struct{}
	revokers       map[*watcher[herald.Revocation]]struct{}
	settings       map[string]string

	sessions map[string]herald.DetachedSession // guarded by mu
}

// New returns an empty Engine with the given knobs.
func New(cfg Config) *Engine {
	if cfg.DedupeWindow <= 0 {
		cfg.DedupeWindow = 2 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Engine{
		cfg:      cfg,
		appended: make(chan struct{}),
		dedupe:   make(map[string]dedupeEntry),
		state:    make(map[subject]*herald.Event),
		orgs:     make(map[string]herald.Org),
		apiKeys:  make(map[string]herald.APIKey),
		users:    make(map[scoped]herald.User),
		devices:  make(map[scoped]revisioned),
		watchers: make(map[*watcher[herald.Device]]struct{}),
		revokers: make(map[*watcher[herald.Revocation]]struct{}),
		settings: make(map[string]string),
		sessions: make(map[string]herald.DetachedSession),
	}
}

// checkOrg refuses what the NATS engine refuses (engine.checkOrg): an org
// is one subject token there, so letters, digits, '-' and '_' only.
func checkOrg(org string) error {
	if org == "" {
		return herald.Errorf(herald.EINVALID, "inmem: empty org")
	}
	for i := 0; i < len(org); i++ {
		c := org[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return herald.Errorf(herald.EINVALID, "inmem: org %q may hold only letters, digits, '-' and '_'", org)
		}
	}
	return nil
}
