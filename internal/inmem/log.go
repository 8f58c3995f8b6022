package inmem

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/herald-gw/herald"
)

// stored is one event of the log with the org it was appended under (the
// NATS engine files an event under its record's org and checks the
// decoded one too).
type stored struct {
	org   string
	event *herald.Event
}

// subject is what the state view keeps one event for: the fields of the
// NATS engine's subject, compared exactly.
type subject struct {
	org, channel, entity, device, entityUUID string
}

type dedupeEntry struct {
	key string
	id  uint64
	at  time.Time
}

// Append stores records, all of one org, in order, and returns their ids.
// Everything it refuses, it refuses before storing anything, and what it
// stores it stores at once: it is all-or-none, which the interface allows
// but does not promise.
func (e *Engine) Append(ctx context.Context, records []herald.Record) ([]uint64, error) {
	if len(records) == 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	org := records[0].Org
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	for i := range records {
		r := &records[i]
		if r.Org != org {
			err := herald.Errorf(herald.EINVALID, "inmem: one append holds events of two orgs")
			err.Index = i
			return nil, err
		}
		if strings.ContainsAny(r.Key, "\r\n") {
			err := herald.Errorf(herald.EINVALID, "inmem: key holds a line break")
			err.Index, err.Field = i, "key"
			return nil, err
		}
		// The NATS engine stores any bytes and skips what it cannot decode
		// when reading; refusing here shows a test its mistake at once.
		if _, err := herald.DecodeEvent(0, r.Data); err != nil {
			err := herald.Errorf(herald.EINVALID, "inmem: record is not a JSON object: %v", err)
			err.Index = i
			return nil, err
		}
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.cfg.Now()
	e.forgetKeysLocked(now)
	ids := make([]uint64, len(records))
	storedAny := false
	for i := range records {
		r := &records[i]
		key := org + ":" + r.Key
		if r.Key != "" {
			if seen, ok := e.dedupe[key]; ok {
				ids[i] = seen.id
				continue
			}
		}
		e.lastID++
		id := e.lastID
		event, _ := herald.DecodeEvent(id, r.Data) // checked above
		e.events = append(e.events, stored{org: org, event: event})
		e.state[subject{org, r.Channel, r.Entity, r.DeviceUUID, r.EntityUUID}] = event
		if r.Key != "" {
			entry := dedupeEntry{key: key, id: id, at: now}
			e.dedupe[key] = entry
			e.keyOrder = append(e.keyOrder, entry)
		}
		ids[i] = id
		storedAny = true
	}
	if storedAny {
		if e.cfg.Retain > 0 && len(e.events) > e.cfg.Retain {
			e.events = e.events[len(e.events)-e.cfg.Retain:]
		}
		close(e.appended)
		e.appended = make(chan struct{})
	}
	return ids, nil
}

// forgetKeysLocked forgets the keys stored a dedupe window ago or more.
func (e *Engine) forgetKeysLocked(now time.Time) {
	n := 0
	for n < len(e.keyOrder) && !now.Before(e.keyOrder[n].at.Add(e.cfg.DedupeWindow)) {
		delete(e.dedupe, e.keyOrder[n].key)
		n++
	}
	e.keyOrder = e.keyOrder[n:]
}

// Replay calls fn for org's events with after < id <= until (see
// herald.EventLog). Like the NATS engine, it takes after 0 to mean the
// oldest event still stored, so only a cursor that saw an event can be
// refused with ECONFLICT.
func (e *Engine) Replay(ctx context.Context, org string, after, until uint64, fn func(*herald.Event) error) (uint64, error) {
	if err := checkOrg(org); err != nil {
		return after, err
	}
	e.mu.Lock()
	first := e.firstIDLocked()
	if after > 0 && after+1 < first {
		e.mu.Unlock()
		return after, herald.Errorf(herald.ECONFLICT, "events after %d are no longer in the log (oldest is %d)", after, first)
	}
	if until == 0 || until > e.lastID {
		until = e.lastID
	}
	var window []stored
	if from := max(after+1, first); from <= until {
		window = e.events[from-first : until+1-first]
	}
	e.mu.Unlock()

	last := after
	for _, s := range window {
		if err := ctx.Err(); err != nil {
			return last, err
		}
		if s.org != org || s.event.Org != org {
			continue
		}
		last = s.event.ID
		if err := fn(s.event); err != nil {
			return last, err
		}
	}
	return last, nil
}

// firstIDLocked returns the id of the oldest retained event, or the next
// id when retention has removed every one.
func (e *Engine) firstIDLocked() uint64 {
	if len(e.events) == 0 {
		return e.lastID + 1
	}
	return e.events[0].event.ID
}

// Follow calls fn for every event with id > after, as they are appended,
// until ctx is done (see herald.EventLog). It waits on the channel each
// Append closes, so a follower with nothing to do costs nothing. Events
// that retention removed before Follow reached them are skipped, as the
// NATS engine's consumer skips them.
func (e *Engine) Follow(ctx context.Context, after uint64, fn func(*herald.Event)) error {
	last := after
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		e.mu.Lock()
		var batch []stored
		if first := e.firstIDLocked(); last < e.lastID && len(e.events) > 0 {
			batch = e.events[max(last+1, first)-first:]
		}
		appended := e.appended
		e.mu.Unlock()

		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-appended:
			}
			continue
		}
		for _, s := range batch {
			if err := ctx.Err(); err != nil {
				return err
			}
			fn(s.event)
			last = s.event.ID
		}
	}
}

// LastID returns the id of the newest event ever stored, even if
// retention has removed it since.
func (e *Engine) LastID(ctx context.Context) (uint64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lastID, nil
}

// Latest returns the newest event of org matching q (see
// herald.StateView). The state keeps the newest event per subject
// regardless of retention, as the NATS engine's STATE stream does.
func (e *Engine) Latest(ctx context.Context, org string, q herald.StateQuery) (*herald.Event, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var newest *herald.Event
	for s, event := range e.state {
		if s.org == org && event.Org == org && matches(q.Channel, s.channel) && matches(q.Entity, s.entity) &&
			matches(q.DeviceUUID, s.device) && matches(q.EntityUUID, s.entityUUID) &&
			(newest == nil || event.ID > newest.ID) {
			newest = event
		}
	}
	if newest == nil {
		return nil, herald.Errorf(herald.ENOTFOUND, "no event of org %s matches", org)
	}
	return newest, nil
}

func matches(want, have string) bool { return want == "" || want == have }

// States calls fn with the newest event of each subject of org whose
// entity is one of entities (see herald.StateView). The in-memory state is
// always up to date: copied is the log's last id.
func (e *Engine) States(ctx context.Context, org string, entities []string, fn func(*herald.Event) error) (uint64, error) {
	if err := checkOrg(org); err != nil {
		return 0, err
	}
	e.mu.Lock()
	copied := e.lastID
	var found []*herald.Event
	for s, event := range e.state {
		if s.org == org && event.Org == org && slices.Contains(entities, s.entity) {
			found = append(found, event)
		}
	}
	e.mu.Unlock()
	for _, event := range found {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if err := fn(event); err != nil {
			return 0, err
		}
	}
	return copied, nil
}
