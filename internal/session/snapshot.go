package session

import (
	"context"

	"github.com/herald-gw/herald"
)

// barrier is a reply waiting for the session to pass a log position.
type barrier struct {
	at    uint64
	reply []byte
}

// passLocked queues the barrier's reply once every event up to its
// position has been handled, before any event after it.
func (s *Session) passLocked() {
	b := s.barrier
	if b == nil || s.pos < b.at {
		return
	}
	s.barrier = nil
	if !s.conn.Send(b.reply) {
		s.conn.Close() // a client this far behind on replies is not reading
	}
}

// Snapshot answers a request for the state of the session's org with a
// reply consistent with the stream the session delivers: the state as of
// a log position S, where every event the session delivers up to S is
// queued before the reply and every one after S behind it. No event is
// both in the snapshot and pushed after it, none in neither.
//
// It pauses delivery at the session's position P, reads the newest events
// of entities that the state view holds for the org, and brings them up
// to date by replaying the log after the view's copied position. key
// names the state an event belongs to (for example its source and state
// group) and reports whether the session wants it at all; the newest
// event per key is the state. S is P or the newest org event read,
// whichever is later: an event the session is sure to reach. reply
// renders the states (the newest first is not promised: they come in no
// order); it is queued as a whole message once the session has passed S,
// and delivery goes on after it.
//
// It is called from the reader goroutine. An error from the state view or
// the log is returned and nothing is queued; delivery goes on as before.
func (s *Session) Snapshot(ctx context.Context, view herald.StateView, entities []string,
	key func(*herald.Event) (string, bool), reply func(states []*herald.Event) []byte) error {
	s.mu.Lock()
	if !s.started || s.closed {
		s.mu.Unlock()
		return herald.Errorf(herald.EINVALID, "the session has not started")
	}
	s.paused, s.live = true, false
	at := s.pos
	s.mu.Unlock()

	newest := make(map[string]*herald.Event)
	take := func(e *herald.Event) error {
		at = max(at, e.ID)
		if k, ok := key(e); ok {
			if old := newest[k]; old == nil || e.ID > old.ID {
				newest[k] = e
			}
		}
		return nil
	}
	copied, err := view.States(ctx, s.org, entities, take)
	if err == nil {
		_, err = s.node.Log.Replay(ctx, s.org, copied, 0, func(e *herald.Event) error {
			if !isOneOf(e.Entity, entities) {
				at = max(at, e.ID)
				return nil
			}
			return take(e)
		})
	}
	var b []byte
	if err == nil {
		states := make([]*herald.Event, 0, len(newest))
		for _, e := range newest {
			states = append(states, e)
		}
		b = reply(states)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.paused = false
	if err == nil {
		s.barrier = &barrier{at: at, reply: b}
		s.passLocked()
	}
	s.startCatchUpLocked() // from P: what came while paused is in the log
	return err
}

func isOneOf(s string, list []string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
