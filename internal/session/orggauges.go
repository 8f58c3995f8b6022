package session

import (
	"sync"
	"sync/atomic"
)

// OrgFigures are one org's live figures on a node: what /healthz and the
// channels system channel show a tenant about itself, and nothing about
// the other tenants.
type OrgFigures struct {
	Connections   int64 // the org's started (authenticated) sessions on this node
	Subscriptions int64 // their subscriptions
}

// orgGauges count each org's sessions and subscriptions. A session takes
// its org's entry once, when it starts, and gives it back when it closes:
// the map is touched twice per connection, never per event, and an org
// whose last session closed has no entry, so memory follows the orgs
// connected now, not every org ever seen.
type orgGauges struct {
	mu   sync.Mutex
	orgs map[string]*orgGauge // guarded by mu
}

// orgGauge is one org's entry. A session holds a pointer to it, so that
// counting a subscription is one atomic add, without the map.
type orgGauge struct {
	sessions      int64 // guarded by orgGauges.mu; the entry leaves the map at 0
	subscriptions atomic.Int64
}

// acquire counts a new session of org and returns its entry.
func (g *orgGauges) acquire(org string) *orgGauge {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.orgs == nil {
		g.orgs = make(map[string]*orgGauge)
	}
	e := g.orgs[org]
	if e == nil {
		e = &orgGauge{}
		g.orgs[org] = e
	}
	e.sessions++
	return e
}

// release ends a session that acquire counted. The session has dropped
// its subscriptions before: an entry leaves the map with none.
func (g *orgGauges) release(org string, e *orgGauge) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e.sessions--; e.sessions <= 0 && g.orgs[org] == e {
		delete(g.orgs, org)
	}
}

// figures returns org's figures; zero for an org with no session.
func (g *orgGauges) figures(org string) OrgFigures {
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.orgs[org]
	if e == nil {
		return OrgFigures{}
	}
	return OrgFigures{Connections: e.sessions, Subscriptions: e.subscriptions.Load()}
}

// Org returns org's own figures on this node (zero if it has no session
// here): for a tenant's view of the node, which must not show the others'.
func (g *Gauges) Org(org string) OrgFigures { return g.orgs.figures(org) }
