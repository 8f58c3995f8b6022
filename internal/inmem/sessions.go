package inmem

import (
	"bytes"
	"context"

	"github.com/herald-gw/herald"
)

// maxSessionID is the NATS engine's bound on session ids (the id goes
// into a subject there), kept here so that both refuse the same ids.
const maxSessionID = 512

// SaveSession stores s until s.Expires, replacing a stored session with
// the same id (see herald.SessionStore). Each save also forgets the
// sessions that have expired, so that storage stays bounded as it does
// with the NATS engine's TTLs.
func (e *Engine) SaveSession(ctx context.Context, s herald.DetachedSession) error {
	if s.ID == "" || len(s.ID) > maxSessionID {
		return herald.Errorf(herald.EINVALID, "inmem: a session id must have 1 to %d bytes", maxSessionID)
	}
	if s.Expires.IsZero() {
		return herald.Errorf(herald.EINVALID, "inmem: session without an expiry")
	}
	s.State = bytes.Clone(s.State)
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.cfg.Now()
	for id, stored := range e.sessions {
		if !now.Before(stored.Expires) {
			delete(e.sessions, id)
		}
	}
	e.sessions[s.ID] = s
	return nil
}

// TakeSession returns the session with the given id and removes it, under
// one lock, so that of any number of racing callers exactly one gets it.
func (e *Engine) TakeSession(ctx context.Context, id string) (herald.DetachedSession, error) {
	e.mu.Lock()
	s, ok := e.sessions[id]
	delete(e.sessions, id)
	now := e.cfg.Now()
	e.mu.Unlock()
	if !ok || !now.Before(s.Expires) {
		return herald.DetachedSession{}, herald.Errorf(herald.ENOTFOUND, "session not found")
	}
	return s, nil // removed: the caller owns its State now
}
