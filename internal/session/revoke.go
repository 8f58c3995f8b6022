package session

import (
	"strings"
	"sync"
	"time"

	"github.com/herald-gw/herald"
)

// revokedGrace is how long a revocation is remembered for sessions that
// start after it: one authenticated just before the credential was
// revoked and starts just after is ended too.
const revokedGrace = 5 * time.Second

// maxRecentRevocations bounds what is remembered for revokedGrace.
const maxRecentRevocations = 4096

// Credentials indexes a node's started sessions by what they
// authenticated with, so that a revoked credential ends its sessions.
type Credentials struct {
	mu     sync.Mutex
	by     map[string]*credential // guarded by mu
	recent map[string]time.Time   // guarded by mu: revoked within revokedGrace
	now    func() time.Time
}

// credential is one revocable credential and its sessions.
type credential struct {
	revocation herald.Revocation
	sessions   map[*Session]struct{}
}

// NewCredentials returns an empty index.
func NewCredentials() *Credentials {
	return &Credentials{by: make(map[string]*credential), recent: make(map[string]time.Time), now: time.Now}
}

// indexKey names a revocation in the index: an API key by its hash alone
// (it is unique across orgs), anything else within its org.
func indexKey(r herald.Revocation) string {
	if strings.HasPrefix(r.Credential, "key:") {
		return r.Credential
	}
	return r.Org + "\x00" + r.Credential
}

// revocations returns what revokes a session of p: deleting its org, and
// revoking its credential if it has one.
func revocations(p herald.Principal) []herald.Revocation {
	rs := []herald.Revocation{{Org: p.Org}}
	if p.Credential != "" {
		rs = append(rs, herald.Revocation{Org: p.Org, Credential: p.Credential})
	}
	return rs
}

// add indexes s under p; it reports false if p was revoked a moment ago.
func (c *Credentials) add(s *Session, p herald.Principal) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ok := true
	for _, r := range revocations(p) {
		key := indexKey(r)
		if at, revoked := c.recent[key]; revoked && c.now().Sub(at) < revokedGrace {
			ok = false
		}
		entry := c.by[key]
		if entry == nil {
			entry = &credential{revocation: r, sessions: make(map[*Session]struct{})}
			c.by[key] = entry
		}
		entry.sessions[s] = struct{}{}
	}
	return ok
}

// remove drops s from the index under p.
func (c *Credentials) remove(s *Session, p herald.Principal) {
	for _, r := range revocations(p) {
		c.drop(s, r)
	}
}

// drop drops s from the index under r.
func (c *Credentials) drop(s *Session, r herald.Revocation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := indexKey(r)
	if entry := c.by[key]; entry != nil {
		delete(entry.sessions, s)
		if len(entry.sessions) == 0 {
			delete(c.by, key)
		}
	}
}

// Revoke ends every session that authenticated with r's credential (or,
// for an org, every session of it), telling each client in its dialect
// (Handler.Lost with EUNAUTHORIZED); none of them is kept for a resume.
// It returns how many sessions it ended.
func (c *Credentials) Revoke(r herald.Revocation) int {
	key := indexKey(r)
	c.mu.Lock()
	now := c.now()
	if len(c.recent) >= maxRecentRevocations {
		for k, at := range c.recent {
			if now.Sub(at) >= revokedGrace {
				delete(c.recent, k)
			}
		}
	}
	if len(c.recent) < maxRecentRevocations {
		c.recent[key] = now
	}
	var ended []*Session
	if entry := c.by[key]; entry != nil {
		for s := range entry.sessions {
			ended = append(ended, s)
		}
	}
	c.mu.Unlock()
	for _, s := range ended {
		s.revoke(r)
	}
	return len(ended)
}

// Held returns every credential a session of the node holds, each once:
// what to check again when revocations may have been missed.
func (c *Credentials) Held() []herald.Revocation {
	c.mu.Lock()
	defer c.mu.Unlock()
	held := make([]herald.Revocation, 0, len(c.by))
	for _, entry := range c.by {
		held = append(held, entry.revocation)
	}
	return held
}

// revoke ends the session because r revoked its credential.
func (s *Session) revoke(r herald.Revocation) {
	s.mu.Lock()
	s.keep = nil
	closed := s.closed
	s.mu.Unlock()
	if closed || s.h == nil {
		return
	}
	var why string
	switch {
	case r.Credential == "":
		why = "the org was deleted"
	case strings.HasPrefix(r.Credential, "key:"):
		why = "the API key was revoked"
	default:
		why = "the user was deleted"
	}
	s.h.Lost(herald.Errorf(herald.EUNAUTHORIZED, "%s", why))
}
