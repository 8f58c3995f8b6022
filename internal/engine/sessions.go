package engine

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-gw/herald"
)

// Detached sessions live in the KV bucket herald_sessions, one key per
// session (its id, base64url-encoded), so that every node on the same NATS
// can take any of them over. Storage stays bounded without a sweeper:
// each session is published with a per-message TTL (Nats-TTL) that ends at
// its Expires, so the server removes it on time even if nobody ever takes
// it, and a take leaves only a purge marker that expires too. The TTL has
// whole-second resolution and the server removes expired messages on a
// timer, so TakeSession also checks Expires itself.

// sessionMarkerTTL is how long the markers a removed session leaves
// behind live: the purge marker of a take, and the marker the server puts
// when a session's TTL ends. Nothing reads them but Get, for which a
// marker and no message at all both mean "not found", so they can be
// short; they only have to exist because per-message TTLs on a KV bucket
// are enabled through them (KeyValueConfig.LimitMarkerTTL).
const sessionMarkerTTL = time.Minute

// maxSessionID bounds the ids the store accepts. An id reaches the
// session store from a client's resume request; encoded into a subject, an
// unbounded one would exceed the server's control line limit, and the
// server answers that by closing the connection every node shares.
const maxSessionID = 512

// SaveSession stores s until s.Expires, replacing a stored session with
// the same id (see herald.SessionStore). A session whose Expires has
// already passed replaces the stored one and is never taken.
func (e *Engine) SaveSession(ctx context.Context, s herald.DetachedSession) error {
	if err := checkSessionID(s.ID); err != nil {
		return err
	}
	if s.Expires.IsZero() {
		return herald.Errorf(herald.EINVALID, "engine: session without an expiry")
	}
	data, err := json.Marshal(s)
	if err != nil {
		return herald.Errorf(herald.EINVALID, "engine: encode session: %v", err)
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	// A plain publish to the key's subject is KeyValue.Put with a TTL,
	// which Put does not offer (Create does, but only for a new key).
	msg := &nats.Msg{Subject: "$KV." + bucketSessions + "." + encodeKey(s.ID), Data: data}
	_, err = e.js.PublishMsg(ctx, msg, jetstream.WithMsgTTL(sessionTTL(time.Until(s.Expires))))
	return engineError("save session", err)
}

// TakeSession returns the session with the given id and removes it:
// a purge that expects the revision it read, so that of two nodes racing
// for one session the second finds the revision changed and the key gone.
func (e *Engine) TakeSession(ctx context.Context, id string) (herald.DetachedSession, error) {
	var s herald.DetachedSession
	if checkSessionID(id) != nil {
		return s, sessionNotFound()
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	key := encodeKey(id)
	for {
		entry, err := e.sessions.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return s, sessionNotFound()
		}
		if err != nil {
			return s, engineError("take session", err)
		}
		s = herald.DetachedSession{}
		if err := json.Unmarshal(entry.Value(), &s); err != nil {
			return s, herald.Errorf(herald.EINTERNAL, "engine: stored session is unreadable: %v", err)
		}
		if !time.Now().Before(s.Expires) {
			// Its TTL removes it; nothing to write.
			return herald.DetachedSession{}, sessionNotFound()
		}
		err = e.sessions.Purge(ctx, key, jetstream.LastRevision(entry.Revision()), jetstream.PurgeTTL(sessionMarkerTTL))
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			// Another node took it, or a save replaced it: read again, and
			// find the key gone or take the newer session.
			continue
		}
		if err != nil {
			return herald.DetachedSession{}, engineError("take session", err)
		}
		return s, nil
	}
}

// sessionTTL is the per-message TTL of a session that expires in d: whole
// seconds (the server truncates), rounded up so that the session is never
// removed before it expires, and at least the server's minimum of 1s.
func sessionTTL(d time.Duration) time.Duration {
	return max(time.Second, (d + time.Second - 1).Truncate(time.Second))
}

func checkSessionID(id string) error {
	if id == "" || len(id) > maxSessionID {
		return herald.Errorf(herald.EINVALID, "engine: a session id must have 1 to %d bytes", maxSessionID)
	}
	return nil
}

func sessionNotFound() error { return herald.Errorf(herald.ENOTFOUND, "session not found") }
