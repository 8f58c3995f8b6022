// Package session holds one client's session, whatever its dialect: the
// principal's org, its subscriptions with their compiled filters, its
// position in the log, and the queue policy that keeps it live or has it
// catch up from the log at its own pace.
package session

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/filter"
	"github.com/herald-gw/herald/internal/hub"
	"github.com/herald-gw/herald/internal/wsconn"
)

// Gauges count a node's live connections and subscriptions, for health
// and metrics.
type Gauges struct {
	Connections   atomic.Int64
	Subscriptions atomic.Int64
	CatchUps      atomic.Int64 // times a live session fell behind and caught up from the log
}

// Sub is one subscription of a session.
type Sub struct {
	ID     string        // the dialect's subscription id
	Tag    uint32        // passed to the renderer with each event
	Filter filter.Filter // which events of the org it wants
	// Match, if set, must accept an event too: a dialect's filters that
	// Filter cannot express. Take, if set, receives the wanted events
	// instead of the connection's queue (conflation). Both are called with
	// the session's lock held, from the dispatch or catch-up goroutine,
	// and must neither block nor call back into the session.
	Match func(*herald.Event) bool
	Take  func(*herald.Event)
	from  uint64 // first event id it wants
}

// Config wires a session to its node.
type Config struct {
	Org    string
	Log    herald.EventLog
	Hub    *hub.Hub
	Conn   *wsconn.Conn
	Logger *slog.Logger
	Gauges *Gauges // may be nil
	// OnLost is called (from a catch-up goroutine) when the session cannot
	// continue without a gap, e.g. its position fell out of the log's
	// retention. The dialect tells its client and closes the connection.
	OnLost func(err error)
}

// Session delivers the events of one org to one connection, exactly once
// and in order per subscription.
//
// It is live (the hub's deliveries are queued directly) or catching up (a
// goroutine replays the log from pos and rejoins the live path once it has
// reached the hub's head). Lock order: hub before session: the hub
// calls Deliver with the hub lock held, so the session never calls into
// the hub with mu held.
type Session struct {
	cfg    Config
	ctx    context.Context    // set under mu by the first catch-up; Close cancels it
	cancel context.CancelFunc // guarded by mu
	wg     sync.WaitGroup

	mu         sync.Mutex
	subs       []*Sub // guarded by mu
	pos        uint64 // guarded by mu: last event id handled for every sub
	live       bool   // guarded by mu
	catchingUp bool   // guarded by mu: a catch-up goroutine runs
	gen        uint64 // guarded by mu: bumped when pos moves back (resume)
	closed     bool   // guarded by mu
}

// New registers a session with the hub; it starts live at the hub's head.
func New(cfg Config) *Session {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Gauges == nil {
		cfg.Gauges = new(Gauges)
	}
	s := &Session{cfg: cfg}
	cfg.Hub.Register(cfg.Org, s, func(head uint64) {
		s.mu.Lock()
		s.pos, s.live = head, true
		s.mu.Unlock()
	})
	return s
}

// Subscribe adds sub. With after nil it receives events published from now
// on; otherwise every event with an id above *after, then live ones, with
// no gap and no duplicate. Subscription ids must be unique (the dialect
// checks). active, if not nil, runs once the subscription is in place and
// before any event can be queued for it: a dialect queues its
// acknowledgement there, so that the acknowledgement both means "active"
// and precedes the subscription's first event.
func (s *Session) Subscribe(sub *Sub, after *uint64, active func()) {
	// "From now on" means after every event already acknowledged to its
	// producer: the log's end, which the hub's head may trail a little.
	var logEnd uint64
	if after == nil && s.cfg.Log != nil {
		// Not derived from s.ctx, which exists only while catching up.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		logEnd, _ = s.cfg.Log.LastID(ctx) // on error, the hub's head is the floor
		cancel()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if after == nil {
		sub.from = max(s.pos, s.cfg.Hub.Head(), logEnd) + 1
	} else {
		sub.from = *after + 1
		if *after < s.pos {
			// Replay from *after: subscriptions that already saw up to pos
			// must not see those events again.
			for _, x := range s.subs {
				x.from = max(x.from, s.pos+1)
			}
			s.pos = *after
			s.gen++
			s.startCatchUpLocked()
		}
	}
	s.subs = append(s.subs, sub)
	if active != nil {
		active()
	}
}

// Unsubscribe removes the subscription with the given id, if there is one.
func (s *Session) Unsubscribe(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.subs {
		if x.ID == id {
			s.subs = append(s.subs[:i], s.subs[i+1:]...)
			return
		}
	}
}

// Close unregisters the session and stops its catch-up, if any.
func (s *Session) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	s.cfg.Hub.Unregister(s.cfg.Org, s)
	s.wg.Wait()
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
	for _, e := range events {
		if e.ID > s.pos {
			msgs = s.matchLocked(e, msgs)
			last = e.ID
		}
	}
	switch {
	case len(msgs) == 0 || s.cfg.Conn.EnqueueAll(msgs):
		s.pos = last
	case s.cfg.Conn.Closing():
		// The connection is ending; its reader closes the session.
	default:
		// The client is slower than the live stream: leave it and catch up
		// from the log from pos, at the client's pace.
		s.cfg.Gauges.CatchUps.Add(1)
		s.startCatchUpLocked()
	}
	clear(msgs)
	*buf = msgs[:0]
	msgBufs.Put(buf)
}

// matchLocked appends a message for every subscription e is for.
func (s *Session) matchLocked(e *herald.Event, msgs []wsconn.Message) []wsconn.Message {
	for _, x := range s.subs {
		if e.ID < x.from || !x.Filter.Match(e) || (x.Match != nil && !x.Match(e)) {
			continue
		}
		if x.Take != nil {
			x.Take(e)
			continue
		}
		msgs = append(msgs, wsconn.Message{Event: e, Tag: x.Tag})
	}
	return msgs
}

func (s *Session) startCatchUpLocked() {
	s.live = false
	if s.catchingUp || s.closed {
		return
	}
	s.catchingUp = true
	if s.ctx == nil {
		// Made on the first catch-up: most sessions never need one.
		s.ctx, s.cancel = context.WithCancel(context.Background())
	}
	s.wg.Add(1)
	go s.catchUp()
}

var errRestart = errors.New("position moved")

// catchUp replays the log from pos until it reaches the hub's head, then
// rejoins the live path.
func (s *Session) catchUp() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		from, gen := s.pos, s.gen
		s.mu.Unlock()
		_, err := s.cfg.Log.Replay(s.ctx, s.cfg.Org, from, 0, func(e *herald.Event) error {
			return s.replayOne(e, gen)
		})
		switch {
		case s.ctx.Err() != nil || isClosed(s.cfg.Conn.Done()):
			s.mu.Lock()
			s.catchingUp = false
			s.mu.Unlock()
			return
		case errors.Is(err, errRestart):
			continue
		case err != nil:
			s.mu.Lock()
			s.catchingUp = false
			s.mu.Unlock()
			s.cfg.Logger.Warn("session cannot catch up", "org", s.cfg.Org, "after", from, "err", err)
			if s.cfg.OnLost != nil {
				s.cfg.OnLost(err)
			}
			return
		}
		rejoined := false
		s.cfg.Hub.WithHead(func(head uint64) {
			s.mu.Lock()
			if s.gen == gen && s.pos >= head {
				s.live, s.catchingUp, rejoined = true, false, true
			}
			s.mu.Unlock()
		})
		if rejoined {
			return
		}
	}
}

// replayOne queues e for the subscriptions that want it, waiting for
// room in the connection's queue as long as it takes.
func (s *Session) replayOne(e *herald.Event, gen uint64) error {
	var buf [4]wsconn.Message
	for {
		s.mu.Lock()
		if s.gen != gen {
			s.mu.Unlock()
			return errRestart
		}
		if e.ID <= s.pos {
			s.mu.Unlock()
			return nil
		}
		msgs := s.matchLocked(e, buf[:0])
		if len(msgs) == 0 || s.cfg.Conn.EnqueueAll(msgs) {
			s.pos = e.ID
			s.mu.Unlock()
			return nil
		}
		s.mu.Unlock()
		select {
		case <-s.cfg.Conn.Room():
		case <-s.cfg.Conn.Done():
			return context.Canceled
		case <-s.ctx.Done():
			return s.ctx.Err()
		}
	}
}

func isClosed(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}
