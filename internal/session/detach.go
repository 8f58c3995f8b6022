package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/herald-gw/herald"
)

// keeper is what Keep asked for.
type keeper struct {
	id, dialect string
	state       func() json.RawMessage
}

// Keep makes the session outlive its connection: when the connection
// ends, the session is saved in the node's SessionStore under id, for
// Node.DetachWindow, with its cursor and the dialect's description of it
// (state, called once then, outside the session's lock). Any node
// attached to the same engine can then Attach it. Without a store, Keep
// does nothing.
func (s *Session) Keep(id, dialect string, state func() json.RawMessage) {
	if s.node.Store == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keep = &keeper{id: id, dialect: dialect, state: state}
}

// detachLocked describes the session for the store. Its cursor is pos,
// unless events queued for the client were never written (the connection
// dropped first): then it is the last event written, so that a resume
// sends the unwritten ones again.
func (s *Session) detachLocked(k *keeper) herald.DetachedSession {
	after := s.pos
	if written, unwritten := s.conn.Written(); unwritten {
		after = min(after, written)
	}
	return herald.DetachedSession{ID: k.id, Org: s.org, Dialect: k.dialect, Credential: s.principal.Credential,
		After: after, Expires: time.Now().Add(s.node.DetachWindow)}
}

func (s *Session) save(k *keeper, d herald.DetachedSession) {
	if k.state != nil {
		d.State = k.state()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.node.Store.SaveSession(ctx, d); err != nil {
		s.node.Logger.Warn("session not kept for a later connection", "org", d.Org, "dialect", d.Dialect, "err", err)
		return
	}
	s.node.Gauges.Detached.Add(1)
}

// Attach takes over the detached session id, made by dialect for this
// session's org: no other connection can take it after this. The caller
// restores its subscriptions from State, each resuming after After, and
// calls Keep again to go on keeping it. A session of another org or
// dialect is left where it is, and reported as not found (ENOTFOUND), as
// is one that expired.
func (s *Session) Attach(ctx context.Context, id, dialect string) (herald.DetachedSession, error) {
	if s.node.Store == nil || s.org == "" {
		return herald.DetachedSession{}, herald.Errorf(herald.ENOTFOUND, "session %s not found", id)
	}
	d, err := s.node.Store.TakeSession(ctx, id)
	if err != nil {
		return d, err
	}
	if d.Org != s.org || d.Dialect != dialect {
		if err := s.node.Store.SaveSession(ctx, d); err != nil {
			s.node.Logger.Warn("a session taken by mistake could not be put back", "err", err)
		}
		return herald.DetachedSession{}, herald.Errorf(herald.ENOTFOUND, "session %s not found", id)
	}
	s.node.Gauges.Attached.Add(1)
	return d, nil
}

// NewID returns a new unguessable session id: 128 random bits in hex,
// safe in any header, path or JSON string.
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Forget undoes Keep: the session ends with its connection.
func (s *Session) Forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keep = nil
}
