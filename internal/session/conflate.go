package session

import (
	"strings"
	"sync"
	"time"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/wsconn"
)

// Conflation holds a subscription's events back to at most one message
// per key and period. The first event of a key after a quiet period goes
// out at once; later ones within the period are merged by the dialect
// and sent when the period ends, so nothing stale is sent after
// something newer. A key quiet for a whole period is forgotten.
type Conflation struct {
	Period time.Duration
	// Key returns e's conflation key (for example its device); for "" the
	// event is delivered as usual, not held.
	Key func(e *herald.Event) string
	// Merge folds e into what is held for its key (nil when nothing is)
	// and returns what is held now, and whether it is full: it is then
	// sent at once. Its cost must be bounded by e's size, and what it
	// holds must be bounded too.
	Merge func(held any, e *herald.Event) (any, bool)
	// Render returns the message that carries held.
	Render func(held any) []byte
	// MaxKeys bounds the keys tracked at once; an event of a new key past
	// it is delivered as usual. Default 10000.
	MaxKeys int
}

// conflator is a subscription's running Conflation.
type conflator struct {
	c    *Conflation
	conn *wsconn.Conn

	mu      sync.Mutex
	keys    map[string]*heldKey // guarded by mu
	timer   *time.Timer         // guarded by mu
	due     time.Time           // guarded by mu: when the timer fires; zero while it is not armed
	stopped bool                // guarded by mu
}

type heldKey struct {
	value    any // nil: nothing held
	lastSent time.Time
}

func newConflator(c *Conflation, conn *wsconn.Conn) *conflator {
	if c.MaxKeys <= 0 {
		c.MaxKeys = 10000
	}
	return &conflator{c: c, conn: conn, keys: make(map[string]*heldKey)}
}

// take holds or sends e; false means e is not conflated and is delivered
// as usual. It runs with the session's lock held.
func (f *conflator) take(e *herald.Event) bool {
	key := f.c.Key(e)
	if key == "" {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return true
	}
	k := f.keys[key]
	if k == nil {
		if len(f.keys) >= f.c.MaxKeys {
			return false
		}
		k = new(heldKey)
		// A key taken from an event would pin the event's whole body.
		f.keys[strings.Clone(key)] = k
	}
	var full bool
	k.value, full = f.c.Merge(k.value, e)
	now := time.Now()
	if full || now.Sub(k.lastSent) >= f.c.Period {
		f.sendLocked(k, now)
	}
	f.armLocked(k.lastSent.Add(f.c.Period), now)
	return true
}

// sendLocked sends what k holds; if the connection has no room, it stays
// held for the next period.
func (f *conflator) sendLocked(k *heldKey, now time.Time) {
	if k.value == nil {
		return
	}
	if f.conn.Send(f.c.Render(k.value)) {
		k.value, k.lastSent = nil, now
	}
}

// armLocked makes sure the timer fires by at.
func (f *conflator) armLocked(at, now time.Time) {
	if !at.After(now) {
		at = now.Add(f.c.Period)
	}
	if !f.due.IsZero() && !f.due.After(at) {
		return
	}
	f.due = at
	if f.timer == nil {
		f.timer = time.AfterFunc(at.Sub(now), f.flush)
		return
	}
	f.timer.Reset(at.Sub(now))
}

// flush sends every key whose period is over, forgets keys quiet for a
// whole period, and re-arms for the next one due.
func (f *conflator) flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.due = time.Time{}
	if f.stopped {
		return
	}
	now := time.Now()
	var next time.Time
	for key, k := range f.keys {
		due := k.lastSent.Add(f.c.Period)
		if due.After(now) {
			if next.IsZero() || due.Before(next) {
				next = due
			}
			continue
		}
		if k.value == nil {
			delete(f.keys, key)
			continue
		}
		f.sendLocked(k, now)
		next = now.Add(f.c.Period) // sent, or retried next period
	}
	if !next.IsZero() {
		f.armLocked(next, now)
	}
}

func (f *conflator) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = true
	f.keys = nil
	if f.timer != nil {
		f.timer.Stop()
	}
}

// held reports how many keys f tracks, for tests.
func (f *conflator) held() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.keys)
}
