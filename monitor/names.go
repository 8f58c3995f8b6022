package monitor

import (
	"context"
	"errors"
	"time"

	"github.com/herald-gw/herald/client"
)

// names caches device names looked up over the REST API: one lookup per
// device per TTL, however many events it sends. A lookup that fails or is
// slow never holds an event back for more than lookupWait, nor drops it:
// the event goes on without a name (or with the one held before), and a
// failure is asked again after failedTTL.
type names struct {
	lookup func(context.Context, string) (client.Device, error)
	ttl    time.Duration
	m      map[string]*nameEntry // used by the pipeline's goroutine only
}

type nameEntry struct {
	name, kind string
	expires    time.Time
	ready      chan struct{} // closed when the lookup in flight ends
	waited     bool          // an event has waited for the lookup in flight
	result     client.Device
	err        error
}

const (
	lookupWait = 2 * time.Second
	failedTTL  = 30 * time.Second
	maxNames   = 100_000
)

func newNames(lookup func(context.Context, string) (client.Device, error), ttl time.Duration) *names {
	return &names{lookup: lookup, ttl: ttl, m: map[string]*nameEntry{}}
}

// get returns the device's name and kind, "" when unknown.
func (n *names) get(ctx context.Context, uuid string) (name, kind string) {
	e := n.m[uuid]
	now := time.Now()
	if e == nil || (e.ready == nil && now.After(e.expires)) {
		if e == nil {
			if len(n.m) >= maxNames {
				clear(n.m)
			}
			e = &nameEntry{}
			n.m[uuid] = e
		}
		e.ready, e.waited = make(chan struct{}), false
		go func(e *nameEntry, ready chan struct{}) {
			lctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			e.result, e.err = n.lookup(lctx, uuid)
			close(ready)
		}(e, e.ready)
	}
	switch {
	case e.ready == nil:
	case e.waited: // waited for once already: the events behind do not wait
		select {
		case <-e.ready:
			n.settle(e)
		default:
		}
	default:
		e.waited = true
		wait := time.NewTimer(lookupWait)
		select {
		case <-e.ready:
			n.settle(e)
		case <-wait.C:
		case <-ctx.Done():
		}
		wait.Stop()
	}
	return e.name, e.kind
}

// settle takes the result of the lookup that has ended.
func (n *names) settle(e *nameEntry) {
	e.ready = nil
	var notFound *client.Error
	switch {
	case e.err == nil:
		e.name, e.kind, e.expires = e.result.Name, e.result.Kind, time.Now().Add(n.ttl)
	case errors.As(e.err, &notFound) && notFound.Status == 404:
		e.name, e.kind, e.expires = "", "", time.Now().Add(n.ttl) // not registered: asked again after the TTL
	default:
		e.expires = time.Now().Add(min(failedTTL, n.ttl))
	}
}
