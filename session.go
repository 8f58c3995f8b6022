package herald

import (
	"context"
	"encoding/json"
	"time"
)

// DetachedSession is a client session whose connection has gone: what a
// later connection, on any node, needs to take it over. It holds no
// events: a re-attached session reads what it missed from the log.
type DetachedSession struct {
	ID      string `json:"id"`      // unguessable, server-issued
	Org     string `json:"org"`     // the session serves only this org
	Dialect string `json:"dialect"` // the dialect that made it; another may not take it
	// Credential is the Principal.Credential the session was opened with:
	// a session whose credential was revoked is not taken again.
	Credential string `json:"credential,omitempty"`
	// After is the session's cursor: every event up to it that the session
	// wanted was delivered. Re-attaching resumes after it.
	After uint64 `json:"after"`
	// State is the dialect's own description of the session (its
	// subscriptions and their filters), opaque to everything else.
	State json.RawMessage `json:"state,omitempty"`
	// Expires is when the session is forgotten if nobody takes it.
	Expires time.Time `json:"expires"`
}

// SessionStore keeps detached sessions where every node attached to the
// same engine can take them over.
type SessionStore interface {
	// SaveSession stores s until s.Expires; saving an id again replaces
	// the stored session.
	SaveSession(ctx context.Context, s DetachedSession) error

	// TakeSession returns the session with the given id and removes it, so
	// that of two nodes racing for one session, exactly one gets it. It
	// returns an error with code ENOTFOUND when there is none or it has
	// expired.
	TakeSession(ctx context.Context, id string) (DetachedSession, error)
}
