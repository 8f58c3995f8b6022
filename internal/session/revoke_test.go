package session

import (
	"testing"
	"time"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/inmem"
	"github.com/herald-gw/herald/internal/wsconn"
)

// lostWith waits for the session's Lost and returns its code.
func (c *client) lostWith() string {
	c.t.Helper()
	select {
	case err := <-c.handler.lost:
		return herald.ErrorCode(err)
	case <-time.After(10 * time.Second):
		c.t.Fatal("the session was not ended")
		return ""
	}
}

// notLost fails if the session was ended.
func (c *client) notLost() {
	c.t.Helper()
	select {
	case err := <-c.handler.lost:
		c.t.Fatalf("session ended: %v", err)
	default:
	}
}

func TestRevokeEndsOnlyTheCredentialsSessions(t *testing.T) {
	n := newNode(t, inmem.Config{}, Node{})
	key1 := herald.Principal{Org: "org-a", Credential: herald.KeyCredential("aa11")}
	key2 := herald.Principal{Org: "org-a", Credential: herald.KeyCredential("bb22")}
	user := herald.Principal{Org: "org-a", User: "ann", Credential: herald.UserCredential("ann")}
	sameNameOtherOrg := herald.Principal{Org: "org-b", User: "ann", Credential: herald.UserCredential("ann")}
	external := herald.Principal{Org: "org-b", User: "bob"}

	a1 := n.connectAs(t, key1, wsconn.Options{}, nil)
	a1bis := n.connectAs(t, key1, wsconn.Options{}, nil)
	a2 := n.connectAs(t, key2, wsconn.Options{}, nil)
	u := n.connectAs(t, user, wsconn.Options{}, nil)
	b := n.connectAs(t, sameNameOtherOrg, wsconn.Options{}, nil)
	x := n.connectAs(t, external, wsconn.Options{}, nil)
	a1.session.Keep("s1", "test", nil)

	if got := n.node.Credentials.Revoke(herald.Revocation{Credential: herald.KeyCredential("aa11")}); got != 2 {
		t.Fatalf("revoking key aa11 ended %d sessions, want 2", got)
	}
	for _, c := range []*client{a1, a1bis} {
		if code := c.lostWith(); code != herald.EUNAUTHORIZED {
			t.Fatalf("Lost with %s, want EUNAUTHORIZED", code)
		}
	}
	a1.session.mu.Lock()
	kept := a1.session.keep
	a1.session.mu.Unlock()
	if kept != nil {
		t.Fatal("a revoked session is still kept for a resume")
	}

	// A user is revoked within its org only.
	if got := n.node.Credentials.Revoke(herald.Revocation{Org: "org-a", Credential: herald.UserCredential("ann")}); got != 1 {
		t.Fatalf("deleting user ann of org-a ended %d sessions, want 1", got)
	}
	u.lostWith()
	a2.notLost()
	b.notLost()

	// Deleting an org ends all its sessions, whatever they authenticated with.
	if got := n.node.Credentials.Revoke(herald.Revocation{Org: "org-b"}); got != 2 {
		t.Fatalf("deleting org-b ended %d sessions, want 2", got)
	}
	b.lostWith()
	x.lostWith()
	a2.notLost()
}

func TestRevokeForgetsClosedSessions(t *testing.T) {
	n := newNode(t, inmem.Config{}, Node{})
	p := herald.Principal{Org: "org-a", Credential: herald.KeyCredential("aa11")}
	c := n.connectAs(t, p, wsconn.Options{}, nil)
	c.session.Close()
	if held := n.node.Credentials.Held(); len(held) != 0 {
		t.Fatalf("a closed session still holds %v", held)
	}
	if got := n.node.Credentials.Revoke(herald.Revocation{Credential: p.Credential}); got != 0 {
		t.Fatalf("revoke ended %d closed sessions", got)
	}
}

func TestSessionStartedJustAfterRevocationEnds(t *testing.T) {
	n := newNode(t, inmem.Config{}, Node{})
	n.node.Credentials.Revoke(herald.Revocation{Credential: herald.KeyCredential("aa11")})
	c := n.connectAs(t, herald.Principal{Org: "org-a", Credential: herald.KeyCredential("aa11")}, wsconn.Options{}, nil)
	if code := c.lostWith(); code != herald.EUNAUTHORIZED {
		t.Fatalf("Lost with %s, want EUNAUTHORIZED", code)
	}
	// Past the grace, the same credential name (a user created again) is fine.
	n.node.Credentials.now = func() time.Time { return time.Now().Add(revokedGrace) }
	d := n.connectAs(t, herald.Principal{Org: "org-a", Credential: herald.KeyCredential("aa11")}, wsconn.Options{}, nil)
	d.notLost()
}

func TestReauthenticateMovesTheSession(t *testing.T) {
	n := newNode(t, inmem.Config{}, Node{})
	c := n.connectAs(t, herald.Principal{Org: "org-a", Credential: herald.KeyCredential("aa11")}, wsconn.Options{}, nil)
	c.session.Reauthenticate(herald.Principal{Org: "org-a", Credential: herald.KeyCredential("bb22")})
	if got := n.node.Credentials.Revoke(herald.Revocation{Credential: herald.KeyCredential("aa11")}); got != 0 {
		t.Fatalf("revoking the old key ended %d sessions, want 0", got)
	}
	c.notLost()
	if got := n.node.Credentials.Revoke(herald.Revocation{Credential: herald.KeyCredential("bb22")}); got != 1 {
		t.Fatalf("revoking the new key ended %d sessions, want 1", got)
	}
	c.lostWith()
}

// Many sessions, many credentials: the index holds one entry per
// credential and org, and gives them all back when they end.
func TestCredentialsBounded(t *testing.T) {
	n := newNode(t, inmem.Config{}, Node{})
	var clients []*client
	for i := range 20 {
		p := herald.Principal{Org: "org-" + string(rune('a'+i%4)), Credential: herald.KeyCredential(string(rune('a' + i%5)))}
		clients = append(clients, n.connectAs(t, p, wsconn.Options{}, nil))
	}
	if held := len(n.node.Credentials.Held()); held != 4+5 {
		t.Fatalf("index holds %d entries, want 9 (4 orgs, 5 keys)", held)
	}
	for _, c := range clients {
		c.session.Close()
	}
	if held := n.node.Credentials.Held(); len(held) != 0 {
		t.Fatalf("closed sessions still hold %v", held)
	}
}

func TestSubscriptionsByDialect(t *testing.T) {
	n := newNode(t, inmem.Config{}, Node{})
	counts := func() map[string]int64 {
		m := map[string]int64{}
		n.node.Gauges.SubscriptionsByDialect(func(d string, v int64) { m[d] = v })
		return m
	}
	a := n.connect(t, "org-a", wsconn.Options{})
	a.session.SetDialect("stomp")
	b := n.connect(t, "org-b", wsconn.Options{})
	b.session.SetDialect("ess")
	a.subscribe("1", nil)
	a.subscribe("2", nil)
	b.subscribe("1", nil)
	if got := counts(); got["stomp"] != 2 || got["ess"] != 1 {
		t.Fatalf("subscriptions by dialect %v, want stomp 2, ess 1", got)
	}
	a.session.Close()
	b.session.Close()
	if got := counts(); got["stomp"] != 0 || got["ess"] != 0 {
		t.Fatalf("after close %v, want 0", got)
	}
}
