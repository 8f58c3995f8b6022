package engine

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-gw/herald"
)

// headerStreamSource is set by the server on every message STATE copies:
// "EVENTS <sequence in EVENTS> ..." (server/stream.go genSourceHeader).
const headerStreamSource = "Nats-Stream-Source"

// Latest returns the newest event of org matching q. Fields are compared
// as subject tokens (see token). EVENTS answers first, because STATE is
// copied from it asynchronously and may not hold a just-appended event
// yet; STATE answers for subjects whose events retention has removed. The
// server's last-by-subject lookup takes wildcards (server/filestore.go
// loadLastLocked walks only the blocks its subject index names), so
// this is two index lookups at most, never a scan.
func (e *Engine) Latest(ctx context.Context, org string, q herald.StateQuery) (*herald.Event, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	filter := stateFilter(org, q)

	msg, err := e.events.GetLastMsgForSubject(ctx, filter)
	if err == nil {
		return e.latestEvent(msg.Sequence, msg, org)
	}
	if !errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, engineError("latest", err)
	}
	msg, err = e.state.GetLastMsgForSubject(ctx, filter)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, herald.Errorf(herald.ENOTFOUND, "no event of org %s matches", org)
	}
	if err != nil {
		return nil, engineError("latest", err)
	}
	seq, ok := sourceSequence(msg.Header.Get(headerStreamSource))
	if !ok {
		return nil, herald.Errorf(herald.EINTERNAL, "engine: state message %d has no source sequence", msg.Sequence)
	}
	return e.latestEvent(seq, msg, org)
}

func (e *Engine) latestEvent(id uint64, msg *jetstream.RawStreamMsg, org string) (*herald.Event, error) {
	event, err := herald.DecodeEvent(id, msg.Data)
	if err != nil {
		return nil, err
	}
	if event.Org != org {
		return nil, herald.Errorf(herald.ENOTFOUND, "no event of org %s matches", org)
	}
	return event, nil
}

// sourceSequence returns the EVENTS sequence a STATE message was copied
// from.
func sourceSequence(header string) (uint64, bool) {
	fields := strings.Fields(header)
	if len(fields) < 2 {
		return 0, false
	}
	seq, err := strconv.ParseUint(fields[1], 10, 64)
	return seq, err == nil
}

// StateLag returns how many of the newest log events the state view has
// not copied yet. Latest does not depend on it (it asks the log first);
// it tells a health check that STATE keeps up, and a test that an event
// has reached STATE before retention removes it from the log. An event
// removed from the log before STATE copied it is lost to STATE: keep
// retention far longer than any plausible lag.
func (e *Engine) StateLag(ctx context.Context) (uint64, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	events, err := e.events.Info(ctx)
	if err != nil {
		return 0, engineError("log info", err)
	}
	var copied uint64
	// The newest STATE message in one request: reading the last sequence
	// first and fetching it after would race with one-per-subject
	// retention replacing it.
	msg, err := e.state.GetLastMsgForSubject(ctx, "ev.>")
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		// STATE is empty: nothing copied yet.
	case err != nil:
		return 0, engineError("state info", err)
	default:
		seq, ok := sourceSequence(msg.Header.Get(headerStreamSource))
		if !ok {
			return 0, herald.Errorf(herald.EINTERNAL, "engine: state message %d has no source sequence", msg.Sequence)
		}
		copied = seq
	}
	if first := events.State.FirstSeq; first > 0 {
		copied = max(copied, first-1) // older events are gone from the log
	}
	if copied >= events.State.LastSeq {
		return 0, nil
	}
	return events.State.LastSeq - copied, nil
}
