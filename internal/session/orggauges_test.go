package session

import (
	"testing"

	"github.com/herald-gw/herald/internal/inmem"
	"github.com/herald-gw/herald/internal/wsconn"
)

// TestOrgGauges checks that each org's figures count only its own
// sessions and subscriptions, and that an org's entry is gone once its
// last session has closed (the map stays as small as the orgs connected).
func TestOrgGauges(t *testing.T) {
	n := newNode(t, inmem.Config{}, Node{})
	g := n.node.Gauges
	a1 := n.connect(t, "org-a", wsconn.Options{})
	a2 := n.connect(t, "org-a", wsconn.Options{})
	b := n.connect(t, "org-b", wsconn.Options{})
	a1.subscribe("s1", nil)
	a1.subscribe("s2", nil)
	a2.subscribe("s1", nil)
	b.subscribe("s1", nil)

	if got, want := g.Org("org-a"), (OrgFigures{Connections: 2, Subscriptions: 3}); got != want {
		t.Errorf("org-a: %+v, want %+v", got, want)
	}
	if got, want := g.Org("org-b"), (OrgFigures{Connections: 1, Subscriptions: 1}); got != want {
		t.Errorf("org-b: %+v, want %+v", got, want)
	}
	if got := g.Org("org-c"); got != (OrgFigures{}) {
		t.Errorf("an org with no session: %+v, want zero", got)
	}
	if got := g.Subscriptions.Load(); got != 4 {
		t.Errorf("node-wide subscriptions: %d, want 4", got)
	}

	a1.session.Unsubscribe("s2")
	if got, want := g.Org("org-a"), (OrgFigures{Connections: 2, Subscriptions: 2}); got != want {
		t.Errorf("org-a after an unsubscribe: %+v, want %+v", got, want)
	}
	b.session.Close()
	if got := g.Org("org-b"); got != (OrgFigures{}) {
		t.Errorf("org-b after its last session closed: %+v, want zero", got)
	}
	a1.session.Close()
	a2.session.Close()
	g.orgs.mu.Lock()
	left := len(g.orgs.orgs)
	g.orgs.mu.Unlock()
	if left != 0 {
		t.Errorf("%d org entries left once every session closed, want 0", left)
	}
	if got := g.Subscriptions.Load(); got != 0 {
		t.Errorf("node-wide subscriptions: %d, want 0", got)
	}
}
