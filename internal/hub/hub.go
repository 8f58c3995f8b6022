// Package hub fans events out to the sessions of one node. One goroutine
// dispatches the node's log in order, in batches: events that arrive while
// one batch is being fanned out form the next, so a busy node hands each
// connection several events at once (written with one writev) and an idle
// one hands over each event as it comes. Sessions register per org and
// receive pointers to the shared events.
package hub

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-gw/herald"
)

// MaxBatch bounds the events dispatched in one pass.
const MaxBatch = 256

// A batch for many subscribers lingers: once the follower's events run
// dry, it waits up to lingerQuiet for the next one, and lingerMax in all.
// The events of one ingest request reach the follower microseconds apart;
// fanned out together, each connection gets them in one write instead of
// one write each, which at thousands of subscribers is most of a node's
// work (and of its clients'). A lone event waits lingerQuiet; a node with
// few subscribers, whose writes are few anyway, does not wait.
const (
	lingerQuiet       = 200 * time.Microsecond
	lingerMax         = 2 * time.Millisecond
	lingerSubscribers = 64
)

// Subscriber receives the events of one org. Deliver is called from the
// dispatch goroutine with consecutive events of the subscriber's org, in
// log order, and must not block or keep the slice: a subscriber that
// cannot keep up queues what it can and catches up from the log.
type Subscriber interface {
	Deliver(events []*herald.Event)
}

// Hub indexes subscribers by org.
//
// Concurrency: DispatchBatch holds mu for reading while it fans one batch
// out; Register, Unregister and WithHead hold it for writing. So a
// subscriber registers between two batches, and the head Register passes
// is exact: every event after it will be delivered, none before it will be.
type Hub struct {
	mu   sync.RWMutex
	orgs map[string][]Subscriber // guarded by mu
	// head is the id of the last dispatched event. Dispatch stores it while
	// holding mu for reading, so writers of mu always see a settled value.
	head atomic.Uint64

	subscribers atomic.Int64 // registered, for lingering

	// The dispatch goroutine's working memory.
	batch []*herald.Event
	byOrg map[string][]*herald.Event
	// How Run lingers: the constants above, or a test's.
	quiet, most time.Duration
}

// New returns an empty hub whose head is the given log position: events
// up to it are considered already dispatched.
func New(head uint64) *Hub {
	h := &Hub{orgs: make(map[string][]Subscriber), byOrg: make(map[string][]*herald.Event), quiet: lingerQuiet, most: lingerMax}
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
	h.subscribers.Add(1)
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
			h.subscribers.Add(-1)
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

// Run dispatches the events received from in, in batches, until in is
// closed or ctx is done. It is the hub's dispatch goroutine: nothing else
// may call DispatchBatch meanwhile.
func (h *Hub) Run(ctx context.Context, in <-chan *herald.Event) {
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	defer linger.Stop()
	for {
		var e *herald.Event
		var ok bool
		select {
		case e, ok = <-in:
		case <-ctx.Done():
			return
		}
		if !ok {
			return
		}
		batch := append(h.batch[:0], e)
		lingering := h.subscribers.Load() >= lingerSubscribers
		var until time.Time
		if lingering {
			until = time.Now().Add(h.most)
		}
	drain:
		for len(batch) < MaxBatch {
			select {
			case e, ok = <-in:
				if !ok {
					break drain
				}
				batch = append(batch, e)
				continue
			default:
			}
			if !lingering {
				break
			}
			wait := min(h.quiet, time.Until(until))
			if wait <= 0 {
				break
			}
			linger.Reset(wait)
			select {
			case e, ok = <-in:
				linger.Stop()
				if !ok {
					break drain
				}
				batch = append(batch, e)
			case <-linger.C:
				break drain
			case <-ctx.Done():
				linger.Stop()
				break drain
			}
		}
		h.DispatchBatch(batch)
		clear(batch)
		h.batch = batch[:0]
	}
}

// DispatchBatch hands events, in log order, to the subscribers of their
// orgs: each subscriber gets its org's events of the batch in one call.
// Batches must come in log order from one goroutine.
func (h *Hub) DispatchBatch(events []*herald.Event) {
	if len(events) == 0 {
		return
	}
	h.mu.RLock()
	if org := events[0].Org; sameOrg(events, org) {
		for _, s := range h.orgs[org] {
			s.Deliver(events)
		}
	} else {
		for _, e := range events {
			h.byOrg[e.Org] = append(h.byOrg[e.Org], e)
		}
		for org, evs := range h.byOrg {
			for _, s := range h.orgs[org] {
				s.Deliver(evs)
			}
			clear(evs)
			h.byOrg[org] = evs[:0]
		}
		if len(h.byOrg) > 64 {
			clear(h.byOrg) // do not keep a slice for every org ever seen
		}
	}
	h.head.Store(events[len(events)-1].ID)
	h.mu.RUnlock()
}

func sameOrg(events []*herald.Event, org string) bool {
	for _, e := range events[1:] {
		if e.Org != org {
			return false
		}
	}
	return true
}

// Subscribers returns how many subscribers are registered, for metrics.
func (h *Hub) Subscribers() int { return int(h.subscribers.Load()) }

// Follow feeds the hub from log, from the hub's head on, until ctx is done
// or the log fails: the node's follower and its dispatch goroutine (Run),
// with a buffer between them so that events arriving while one batch fans
// out form the next. It returns the follower's error (ctx.Err() once ctx
// is done) after the dispatch goroutine has stopped.
func (h *Hub) Follow(ctx context.Context, log herald.EventLog) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := make(chan *herald.Event, 4*MaxBatch)
	dispatched := make(chan struct{})
	go func() {
		defer close(dispatched)
		h.Run(ctx, events)
	}()
	err := log.Follow(ctx, h.Head(), func(e *herald.Event) {
		select {
		case events <- e:
		case <-ctx.Done():
		}
	})
	cancel()
	<-dispatched
	return err
}
