package monitor

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/herald-gw/herald/client"
)

// names caches device names looked up over the REST API: one lookup per
// device per TTL, however many events it sends. A lookup that fails or is
// slow never drops an event, and holds a batch back once, for at most
// wait: the events go on without a name (or with the one held before),
// and a failure is asked again after failedTTL.
type names struct {
	lookup   func(context.Context, string) (client.Device, error)
	ttl      time.Duration
	wait     time.Duration         // how long a batch waits for the lookups it started; lookupWait
	m        map[string]*nameEntry // used by the pipeline's goroutine only
	inFlight atomic.Int32
	waits    int // batches that waited, for the tests
}

type nameEntry struct {
	name, kind string
	expires    time.Time
	ready      chan struct{} // closed when the lookup in flight ends
	result     client.Device
	err        error
}

const (
	lookupWait = 2 * time.Second
	failedTTL  = 30 * time.Second
	maxNames   = 100_000
	maxLookups = 16 // in flight at once; the devices beyond are asked in later batches
)

func newNames(lookup func(context.Context, string) (client.Device, error), ttl time.Duration) *names {
	return &names{lookup: lookup, ttl: ttl, wait: lookupWait, m: map[string]*nameEntry{}}
}

// resolve fills in the names of a batch's devices. The lookups the batch
// needs start together, at most maxLookups in flight; the batch waits for
// the ones it started, all at once, for at most n.wait, and not for those
// an earlier batch started.
func (n *names) resolve(ctx context.Context, batch []enriched) {
	now := time.Now()
	entries := make([]*nameEntry, len(batch))
	var started []*nameEntry
	for i := range batch {
		uuid := batch[i].DeviceUUID
		if uuid == "" {
			continue
		}
		e := n.m[uuid]
		if e == nil {
			if len(n.m) >= maxNames {
				clear(n.m)
			}
			e = &nameEntry{}
			n.m[uuid] = e
		}
		entries[i] = e
		if e.ready == nil && !now.Before(e.expires) && n.inFlight.Load() < maxLookups {
			n.start(uuid, e)
			started = append(started, e)
		}
	}
	if len(started) > 0 {
		n.waits++
		timer := time.NewTimer(n.wait)
		defer timer.Stop()
	waiting:
		for _, e := range started {
			select {
			case <-e.ready:
			case <-timer.C:
				break waiting
			case <-ctx.Done():
				break waiting
			}
		}
	}
	for i, e := range entries {
		if e == nil {
			continue
		}
		if e.ready != nil {
			select {
			case <-e.ready:
				n.settle(e)
			default:
			}
		}
		batch[i].DeviceName, batch[i].DeviceKind = e.name, e.kind
	}
}

// start looks uuid up in the background; e.ready closes when it ends.
func (n *names) start(uuid string, e *nameEntry) {
	ready := make(chan struct{})
	e.ready = ready
	n.inFlight.Add(1)
	go func() {
		defer n.inFlight.Add(-1)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e.result, e.err = n.lookup(ctx, uuid)
		close(ready)
	}()
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
