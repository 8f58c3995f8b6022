// Package hub fans events out to the sessions of one node. One goroutine
// (the node's log follower) calls Dispatch for every event in log order;
// sessions register per org and receive a pointer to the shared event.
package hub

import (
	"sync"
	"sync/atomic"

	"github.com/herald-gw/herald"
)

// Subscriber receives the events of one org. Deliver is called from the
// dispatch goroutine, in log order, and must not block: a subscriber that
// cannot keep up queues what it can and catches up from the log.
type Subscriber interface {
	Deliver(e *herald.Event)
}

// Hub indexes subscribers by org.
//
// Concurrency: Dispatch holds mu for reading while it fans one event out;
// Register and Unregister hold it for writing. So a subscriber registers
// between two events, and the head Register returns is exact: every event
// after it will be delivered, none before it will be.
type Hub struct {
	mu   sync.RWMutex
	orgs map[string][]Subscriber // guarded by mu
	// head is the id of the last dispatched event. Dispatch stores it while
	// holding mu for reading, so writers of mu always see a settled value.
	head atomic.Uint64
}

// New returns an empty hub whose head is the given log position: events
// up to it are considered already dispatched.
func New(head uint64) *Hub {
	h := &Hub{orgs: make(map[string][]Subscriber)}
	h.head.Store(head)
	return h
}

// Register adds s for org's events. It calls ready, before any event
// reaches s, with the id of the last event dispatched before s joined: s
// receives exactly the events after that id.
func (h *Hub) Register(org string, s Subscriber, ready func(head uint64)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.orgs[org] = append(h.orgs[org], s)
	ready(h.head.Load())
}

// Unregister removes s. After it returns, s receives no further events.
func (h *Hub) Unregister(org string, s Subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	subs := h.orgs[org]
	for i, x := range subs {
		if x == s {
			last := len(subs) - 1
			subs[i] = subs[last]
			subs[last] = nil
			subs = subs[:last]
			break
		}
	}
	if len(subs) == 0 {
		delete(h.orgs, org)
	} else {
		h.orgs[org] = subs
	}
}

// Head returns the id of the last dispatched event.
func (h *Hub) Head() uint64 { return h.head.Load() }

// WithHead runs fn while no event is being dispatched, with the current
// head: a subscriber catching up from the log uses it to rejoin the live
// path without a gap.
func (h *Hub) WithHead(fn func(head uint64)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fn(h.head.Load())
}

// Dispatch hands e to every subscriber of its org. Events must come in
// log order from one goroutine.
func (h *Hub) Dispatch(e *herald.Event) {
	h.mu.RLock()
	for _, s := range h.orgs[e.Org] {
		s.Deliver(e)
	}
	h.head.Store(e.ID)
	h.mu.RUnlock()
}

// Subscribers returns how many subscribers are registered, for metrics.
func (h *Hub) Subscribers() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for _, subs := range h.orgs {
		n += len(subs)
	}
	return n
}
