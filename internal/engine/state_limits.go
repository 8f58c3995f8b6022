package engine

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-gw/herald"
)

// StateLimits bound the state view (stream STATE), which otherwise keeps
// the newest event of every subject forever: one entry per org, channel,
// entity, device and entity uuid, so an entity uuid that is never reused
// (an alert's) adds an entry for good. The zero value is no limit.
//
// A limit is JetStream's own, with DiscardOld: past it, STATE forgets the
// entries updated least recently first (the device not heard from for
// longest). An entry forgotten by STATE is still found by Latest while
// the log holds its event; once both have let it go, Latest answers
// ENOTFOUND for it, as for a subject that never had an event. Eviction
// goes in log order, so a query matching several subjects either gets
// its true newest event or ENOTFOUND, never an older one.
//
// Retention of the log is not affected: it reads how far STATE has
// copied from the server's record of the source's position, which
// outlives the entries (see stateCopied).
type StateLimits struct {
	// MaxEntries is the most entries STATE keeps; 0 is unlimited.
	MaxEntries int64
	// MaxBytes bounds STATE's stored bytes; 0 is unlimited, otherwise at
	// least MinStateBytes, so that the largest event fits. On disk STATE
	// takes up to one file store block more (see docs/operations.md).
	MaxBytes int64
	// MaxAge forgets entries not updated for this long; 0 keeps them
	// forever, otherwise at least MinStateAge.
	MaxAge time.Duration
}

// Floors of StateLimits. A STATE smaller than one event would forget each
// event as soon as it stored it; the server takes no MaxAge under 100ms,
// and one that short would make the view useless anyway.
const (
	MinStateBytes = 1 << 20 // the server's default max_payload: the largest event
	MinStateAge   = time.Second
)

// validate refuses negative and useless limits.
func (l StateLimits) validate() error {
	switch {
	case l.MaxEntries < 0 || l.MaxBytes < 0 || l.MaxAge < 0:
		return herald.Errorf(herald.EINVALID, "engine: state limits must not be negative")
	case l.MaxBytes > 0 && l.MaxBytes < MinStateBytes:
		return herald.Errorf(herald.EINVALID, "engine: a state max bytes of %d is below the minimum of %d", l.MaxBytes, MinStateBytes)
	case l.MaxAge > 0 && l.MaxAge < MinStateAge:
		return herald.Errorf(herald.EINVALID, "engine: a state max age of %v is below the minimum of %v", l.MaxAge, MinStateAge)
	}
	return nil
}

// stateStreamConfig is STATE's configuration. STATE has no subjects: it
// only copies EVENTS, in log order, keeping the newest event per subject
// beyond the log's retention, which waits for it (see retention in
// state.go). Duplicates stays 0 (a sourcing stream then has no dedupe
// window) so that a key reused after EVENTS forgot it is not dropped
// here. CreateOrUpdateStream applies changed limits to an existing STATE,
// evicting at once what a lower one no longer admits.
func stateStreamConfig(limits StateLimits, replicas int) jetstream.StreamConfig {
	unlimitedIfZero := func(n int64) int64 {
		if n == 0 {
			return -1
		}
		return n
	}
	return jetstream.StreamConfig{
		Name:              stateStream,
		Description:       "herald state: newest event per subject of " + eventsStream,
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxMsgsPerSubject: 1,
		MaxMsgs:           unlimitedIfZero(limits.MaxEntries),
		MaxBytes:          unlimitedIfZero(limits.MaxBytes),
		MaxAge:            limits.MaxAge,
		Sources:           []*jetstream.StreamSource{{Name: eventsStream}},
	}
}
