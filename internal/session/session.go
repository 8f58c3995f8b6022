// Package session is the driver every dialect runs on. It owns, once for
// all of them, what a client session is: the read loop's error handling
// and teardown (driver.go), the subscriptions (registry.go), the cursor,
// live delivery, catch-up from the log and rejoin (catchup.go), the
// queue-full policy, conflation (conflate.go), sessions that outlive
// their connection (detach.go), and the node's gauges. It knows no
// dialect: a dialect plugs in through Handler.
package session

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/filter"
	"github.com/herald-gw/herald/internal/hub"
	"github.com/herald-gw/herald/internal/wsconn"
)

// Gauges count a node's live connections and subscriptions, for health
// and metrics: node-wide in the exported fields, per org with Org.
type Gauges struct {
	Connections   atomic.Int64 // every WebSocket session, authenticated or not yet
	Subscriptions atomic.Int64
	CatchUps      atomic.Int64 // times a live session fell behind and caught up from the log
	Detached      atomic.Int64 // sessions saved for a later connection
	Attached      atomic.Int64 // detached sessions taken over by a connection

	orgs     orgGauges // see orggauges.go
	dialects sync.Map  // dialect name → *atomic.Int64: its sessions' subscriptions
}

// dialectSubscriptions returns the counter of one dialect's subscriptions.
func (g *Gauges) dialectSubscriptions(dialect string) *atomic.Int64 {
	if n, ok := g.dialects.Load(dialect); ok {
		return n.(*atomic.Int64)
	}
	n, _ := g.dialects.LoadOrStore(dialect, new(atomic.Int64))
	return n.(*atomic.Int64)
}

// SubscriptionsByDialect calls fn with each dialect's live subscriptions,
// for the dialects whose sessions called SetDialect.
func (g *Gauges) SubscriptionsByDialect(fn func(dialect string, n int64)) {
	g.dialects.Range(func(k, v any) bool {
		fn(k.(string), v.(*atomic.Int64).Load())
		return true
	})
}

// Node is what the sessions of one herald node share. Set it up once,
// with WithDefaults.
type Node struct {
	Log    herald.EventLog
	Hub    *hub.Hub
	Store  herald.SessionStore // detached sessions; nil: a session ends with its connection
	Logger *slog.Logger
	Gauges *Gauges
	// Acked returns, without blocking, the highest event id this node
	// knows to be acknowledged to its producer: subscriptions "from now"
	// start after it. nil: ask the log (LastID), which waits for the
	// engine.
	Acked func() uint64
	// MaxSubscriptions bounds one session's subscriptions. Default 100.
	MaxSubscriptions int
	// Credentials indexes the node's sessions by credential, for
	// revocation. Default: a new index.
	Credentials *Credentials
	// DetachWindow is how long a detached session waits for a new
	// connection before it is forgotten. Default 30s.
	DetachWindow time.Duration

	// catchUpAttempts, if not zero, replaces retryAttempts, so that a
	// test sees a catch-up give up without waiting 11s.
	catchUpAttempts int
}

// WithDefaults returns n with its zero fields set to the defaults.
func (n Node) WithDefaults() Node {
	if n.Logger == nil {
		n.Logger = slog.New(slog.DiscardHandler)
	}
	if n.Gauges == nil {
		n.Gauges = new(Gauges)
	}
	if n.MaxSubscriptions <= 0 {
		n.MaxSubscriptions = 100
	}
	if n.DetachWindow <= 0 {
		n.DetachWindow = 30 * time.Second
	}
	if n.Credentials == nil {
		n.Credentials = NewCredentials()
	}
	return n
}

// Sub is one subscription of a session.
type Sub struct {
	ID     string        // the dialect's subscription id, unique in its session
	Filter filter.Filter // which events of the org it wants
	// Match, if set, must accept an event too: a dialect's filters that
	// Filter cannot express. It is called with the session's lock held,
	// from the dispatch or catch-up goroutine; it must not block, and its
	// cost must be bounded by the event's size.
	Match func(*herald.Event) bool
	// Value is handed to the renderer with each of the subscription's
	// events (wsconn.Message.Sub): the dialect's own state of it. nil: the
	// *Sub itself.
	Value any
	// Conflate, if set, holds the subscription's events back and sends
	// them merged (see Conflation).
	Conflate *Conflation

	from      uint64 // first event id it wants
	slot      int    // index in the registry's list
	conflator *conflator
}

// Session delivers the events of one org to one connection, exactly once
// and in order per subscription.
//
// It is live (the hub's deliveries are queued directly) or catching up (a
// goroutine replays the log from pos and rejoins the live path once it has
// reached the hub's head). Lock order: hub before session before
// conflator before connection: the hub calls Deliver with the hub lock
// held, so the session never calls into the hub with mu held.
type Session struct {
	node *Node
	conn *wsconn.Conn
	h    Handler // set by Serve
	// org is set once by Start, before the session registers with the hub
	// and before any other goroutine reads it.
	org string
	// principal is who the session serves; set by Start, replaced by
	// Reauthenticate under mu and the node's Credentials.
	principal herald.Principal
	ctx       context.Context    // set under mu by the first catch-up; Close cancels it
	cancel    context.CancelFunc // guarded by mu
	wg        sync.WaitGroup

	mu         sync.Mutex
	subs       registry      // guarded by mu
	pos        uint64        // guarded by mu: last event id handled for every sub
	live       bool          // guarded by mu
	catchingUp bool          // guarded by mu: a catch-up goroutine runs
	gen        uint64        // guarded by mu: bumped when pos moves back (resume)
	started    bool          // guarded by mu: registered with the hub
	closed     bool          // guarded by mu
	gauge      *orgGauge     // guarded by mu: the org's gauges, from Start to Close
	dialect    *atomic.Int64 // set by SetDialect before any subscription: its dialect's subscriptions
	keep       *keeper       // guarded by mu: save the session when its connection ends
	paused     bool          // guarded by mu: Snapshot holds delivery at pos
	barrier    *barrier      // guarded by mu: a reply to queue once pos passes its position
}

// New returns the session of conn; it delivers nothing until Start.
func New(node *Node, conn *wsconn.Conn) *Session {
	return &Session{node: node, conn: conn}
}

// SetDialect counts the session's subscriptions under its dialect's name
// too (Gauges.SubscriptionsByDialect). Call it before the first Subscribe.
func (s *Session) SetDialect(name string) { s.dialect = s.node.Gauges.dialectSubscriptions(name) }

// Conn returns the session's connection.
func (s *Session) Conn() *wsconn.Conn { return s.conn }

// Start binds the session to p's org and registers it with the hub: from
// now on it is live at the hub's head. Call it once, from the reader
// goroutine, when the client has authenticated as p. Revoking p's
// credential (Credentials.Revoke) ends the session.
func (s *Session) Start(p herald.Principal) {
	org := p.Org
	s.org = org
	creds := s.node.Credentials
	if creds != nil && !creds.add(s, p) {
		defer s.revoke(herald.Revocation{Org: p.Org, Credential: p.Credential})
	}
	gauge := s.node.Gauges.orgs.acquire(org)
	s.mu.Lock()
	closed := s.closed
	if !closed {
		// Close reads the principal to leave the index: set with closed
		// checked, either Close sees it or this sees closed.
		s.principal, s.gauge = p, gauge
	}
	s.mu.Unlock()
	if closed {
		// Close has run: nothing would give these back.
		s.node.Gauges.orgs.release(org, gauge)
		if creds != nil {
			creds.remove(s, p)
		}
	}
	s.node.Hub.Register(org, s, func(head uint64) {
		s.mu.Lock()
		s.pos, s.live, s.started = head, true, true
		s.mu.Unlock()
	})
}

// Reauthenticate replaces the session's principal, of the same org, when
// the client authenticated again (a refreshed token): revoking the new
// credential ends the session from then on, revoking the old one no
// longer does.
func (s *Session) Reauthenticate(p herald.Principal) {
	s.mu.Lock()
	old, closed := s.principal, s.closed
	if !closed {
		s.principal = p
	}
	s.mu.Unlock()
	creds := s.node.Credentials
	if closed || creds == nil || old.Credential == p.Credential {
		return
	}
	if !creds.add(s, p) {
		defer s.revoke(herald.Revocation{Org: p.Org, Credential: p.Credential})
	}
	if old.Credential != "" {
		creds.drop(s, herald.Revocation{Org: old.Org, Credential: old.Credential})
	}
	s.mu.Lock()
	closed = s.closed
	s.mu.Unlock()
	if closed {
		creds.remove(s, p)
	}
}

// Subscribe adds sub. With after nil it receives events acknowledged from
// now on; otherwise every event with an id above *after, then live ones,
// with no gap and no duplicate. active, if not nil, runs once the
// subscription is in place and before any event can be queued for it: a
// dialect queues its acknowledgement there, so that the acknowledgement
// both means "active" and precedes the subscription's first event.
//
// It refuses, with a *herald.Error, a duplicate id (ECONFLICT), one
// subscription too many (ETOOLARGE), a cursor beyond the log's end
// (EINVALID: nothing would ever be delivered after it), and a session not
// started (EINVALID). EUNAVAILABLE means the log could not say where it
// ends.
func (s *Session) Subscribe(sub *Sub, after *uint64, active func()) error {
	if s.org == "" {
		return herald.Errorf(herald.EINVALID, "subscribe before the session started")
	}
	var floor uint64
	var err error
	if after == nil {
		floor, err = s.acked()
	} else {
		err = s.checkCursor(*after)
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return herald.Errorf(herald.EUNAVAILABLE, "the session has ended")
	case s.subs.lookup(sub.ID) != nil:
		return herald.Errorf(herald.ECONFLICT, "subscription %s already exists in this session", sub.ID)
	case s.subs.len() >= s.node.MaxSubscriptions:
		return herald.Errorf(herald.ETOOLARGE, "a session may hold %d subscriptions", s.node.MaxSubscriptions)
	}
	if sub.Value == nil {
		sub.Value = sub
	}
	if sub.Conflate != nil {
		sub.conflator = newConflator(sub.Conflate, s.conn)
	}
	if after == nil {
		sub.from = max(s.pos, s.node.Hub.Head(), floor) + 1
	} else {
		sub.from = *after + 1
		if *after < s.pos {
			// Replay from *after: subscriptions that already saw up to pos
			// must not see those events again.
			for _, x := range s.subs.list {
				x.from = max(x.from, s.pos+1)
			}
			s.pos = *after
			s.gen++
			s.startCatchUpLocked()
		}
	}
	s.subs.add(sub)
	s.node.Gauges.Subscriptions.Add(1)
	if s.dialect != nil {
		s.dialect.Add(1)
	}
	if s.gauge != nil {
		s.gauge.subscriptions.Add(1)
	}
	if active != nil {
		active()
	}
	return nil
}

// acked is where a subscription "from now" starts: after every event
// already acknowledged to its producer, which the hub's head may trail a
// little.
func (s *Session) acked() (uint64, error) {
	if s.node.Acked != nil {
		return s.node.Acked(), nil
	}
	return s.logEnd()
}

// logEnd asks the log where it ends; the reader waits for the engine.
func (s *Session) logEnd() (uint64, error) {
	if s.node.Log == nil {
		return s.node.Hub.Head(), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	last, err := s.node.Log.LastID(ctx)
	if err != nil {
		return 0, herald.Errorf(herald.EUNAVAILABLE, "the event log cannot say where it ends: %v", herald.ErrorMessage(err))
	}
	return last, nil
}

// checkCursor refuses a resume point beyond the log's end. Only a cursor
// beyond what this node has seen costs a question to the log.
func (s *Session) checkCursor(after uint64) error {
	if after <= s.node.Hub.Head() || (s.node.Acked != nil && after <= s.node.Acked()) {
		return nil
	}
	last, err := s.logEnd()
	if err != nil || after <= last {
		return err
	}
	return &herald.Error{Code: herald.EINVALID, Index: -1, Message: "event id " + strconv.FormatUint(after, 10) +
		" is beyond the newest event (" + strconv.FormatUint(last, 10) + "): resume from an id this server sent"}
}

// Unsubscribe removes the subscription with the given id and returns it;
// nil if there is none.
func (s *Session) Unsubscribe(id string) *Sub {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.subs.lookup(id)
	if sub != nil {
		s.removeLocked(sub)
	}
	return sub
}

func (s *Session) removeLocked(sub *Sub) {
	s.subs.remove(sub)
	if sub.conflator != nil {
		sub.conflator.stop()
	}
	s.node.Gauges.Subscriptions.Add(-1)
	if s.dialect != nil {
		s.dialect.Add(-1)
	}
	if s.gauge != nil {
		s.gauge.subscriptions.Add(-1)
	}
}

// Change runs fn while no event is matched or queued for the session:
// a dialect whose Match reads state of its own changes that state, and
// queues the reply that says so, in fn. Every event queued after the
// reply is matched with the new state, and none before it, so a client
// that reads the reply misses nothing published after. fn must not call
// the session's other methods.
func (s *Session) Change(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn()
}

// Lookup returns the subscription with the given id, nil if none.
func (s *Session) Lookup(id string) *Sub {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subs.lookup(id)
}

// Close unregisters the session, stops its catch-up, if any, and drops
// its subscriptions. A session kept with Keep is saved first.
func (s *Session) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	cancel, started := s.cancel, s.started
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if started {
		s.node.Hub.Unregister(s.org, s)
	}
	s.wg.Wait()
	s.mu.Lock()
	keep := s.keep
	var detached herald.DetachedSession
	if keep != nil {
		detached = s.detachLocked(keep)
	}
	for len(s.subs.list) > 0 {
		s.removeLocked(s.subs.list[len(s.subs.list)-1])
	}
	gauge := s.gauge
	s.gauge = nil
	principal := s.principal
	s.mu.Unlock()
	if principal.Org != "" && s.node.Credentials != nil {
		s.node.Credentials.remove(s, principal)
	}
	if gauge != nil {
		// After the subscriptions: the org's entry leaves with none.
		s.node.Gauges.orgs.release(s.org, gauge)
	}
	if keep != nil {
		s.save(keep, detached)
	}
}

// msgBufs are Deliver's scratch lists of messages to queue.
var msgBufs = sync.Pool{New: func() any { b := make([]wsconn.Message, 0, 64); return &b }}

// Deliver implements hub.Subscriber: it queues the messages events make
// for this session's subscriptions, all at once (the writer sends them
// with one writev), or, if the client has no room for them all, leaves
// the live stream and catches up from the log.
func (s *Session) Deliver(events []*herald.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.live {
		return
	}
	buf := msgBufs.Get().(*[]wsconn.Message)
	msgs, last := (*buf)[:0], s.pos
	queued := true
	for _, e := range events {
		if e.ID <= s.pos {
			continue
		}
		if s.barrier != nil && e.ID > s.barrier.at {
			// Every event up to the barrier is matched: they go first,
			// then the reply, then e.
			if queued = len(msgs) == 0 || s.conn.EnqueueAll(msgs); !queued {
				break
			}
			s.pos, msgs = last, msgs[:0]
			s.passLocked()
		}
		msgs = s.matchLocked(e, msgs)
		last = e.ID
	}
	if queued {
		queued = len(msgs) == 0 || s.conn.EnqueueAll(msgs)
	}
	switch {
	case queued:
		s.pos = last
		s.passLocked()
	case s.conn.Closing():
		// The connection is ending; its reader closes the session.
	default:
		// The client is slower than the live stream: leave it and catch up
		// from the log from pos, at the client's pace.
		s.node.Gauges.CatchUps.Add(1)
		s.startCatchUpLocked()
	}
	clear(msgs)
	*buf = msgs[:0]
	msgBufs.Put(buf)
}

// matchLocked appends a message for every subscription e is for.
func (s *Session) matchLocked(e *herald.Event, msgs []wsconn.Message) []wsconn.Message {
	for _, x := range s.subs.list {
		if e.ID < x.from || !x.Filter.Match(e) || (x.Match != nil && !x.Match(e)) {
			continue
		}
		if x.conflator != nil && x.conflator.take(e) {
			continue
		}
		msgs = append(msgs, wsconn.Message{Event: e, Sub: x.Value})
	}
	return msgs
}
