package engine

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-gw/herald"
)

// headerStreamSource is set by the server on every message STATE copies:
// "EVENTS <sequence in EVENTS> ..." (server/stream.go genSourceHeader).
const headerStreamSource = "Nats-Stream-Source"

// Latest returns the newest event of org matching q. EVENTS answers
// first, because STATE is copied from it asynchronously and may not hold
// a just-appended event yet; STATE answers for subjects whose events
// retention has removed, which it does only once STATE has copied them
// (see retention). The server's last-by-subject lookup takes wildcards
// (server/filestore.go loadLastLocked walks only the blocks its subject
// index names), so each lookup is an index lookup, never a scan.
//
// Events stored before subjects became injective sit under their legacy
// subjects (see legacyToken), and stay there: the log cannot be rewritten
// without changing ids, and STATE copies the log. So when a queried field
// is not a safe token, each stream is asked under both subjects and the
// newer event wins; a legacy one only if its own fields are the queried
// ones, since its subject may be shared with other ids. Migrating would
// cost a pass over STATE at every upgrade and still leave the log as it
// is; reading both costs two more lookups, only for such fields.
func (e *Engine) Latest(ctx context.Context, org string, q herald.StateQuery) (*herald.Event, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	filter, legacy := stateFilter(org, q), legacyStateFilter(org, q)
	if legacy == filter {
		legacy = ""
	}
	for _, copied := range [...]bool{false, true} {
		event, err := e.latestIn(ctx, copied, org, q, filter, legacy)
		if err != nil || event != nil {
			return event, err
		}
	}
	return nil, herald.Errorf(herald.ENOTFOUND, "no event of org %s matches", org)
}

// latestIn returns the newest event of org in EVENTS, or in STATE if
// copied, under filter or legacy (if not ""), or nil if there is none.
func (e *Engine) latestIn(ctx context.Context, copied bool, org string, q herald.StateQuery, filter, legacy string) (*herald.Event, error) {
	event, err := e.lastUnder(ctx, copied, org, filter)
	if err != nil || legacy == "" {
		return event, err
	}
	old, err := e.lastUnder(ctx, copied, org, legacy)
	if err != nil {
		return nil, err
	}
	if old != nil && hasFields(old, q) && (event == nil || old.ID > event.ID) {
		return old, nil
	}
	return event, nil
}

func (e *Engine) lastUnder(ctx context.Context, copied bool, org, filter string) (*herald.Event, error) {
	stream := e.events
	if copied {
		stream = e.state
	}
	msg, err := stream.GetLastMsgForSubject(ctx, filter)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, engineError("latest", err)
	}
	id := msg.Sequence
	if copied {
		var ok bool
		if id, ok = sourceSequence(msg.Header.Get(headerStreamSource)); !ok {
			return nil, herald.Errorf(herald.EINTERNAL, "engine: state message %d has no source sequence", msg.Sequence)
		}
	}
	event, err := herald.DecodeEvent(id, msg.Data)
	if err != nil {
		return nil, err
	}
	if event.Org != org {
		return nil, nil
	}
	return event, nil
}

// hasFields reports whether event's fields are q's non-empty ones.
func hasFields(event *herald.Event, q herald.StateQuery) bool {
	return (q.Channel == "" || q.Channel == event.Channel) &&
		(q.Entity == "" || q.Entity == event.Entity) &&
		(q.DeviceUUID == "" || q.DeviceUUID == event.DeviceUUID) &&
		(q.EntityUUID == "" || q.EntityUUID == event.EntityUUID)
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

// stateCopied returns the sequence of the last EVENTS message STATE has
// copied, 0 if none. STATE copies in log order, so every event up to it
// has been copied (or was gone before STATE reached it).
//
// Two lower bounds, the larger wins. The server records the source
// position with every message it stores (nats-server 2.15 reports it as
// the source's Seq); it outlives the messages, so it stays right when
// state limits evict STATE's entries, even all of them (StateLimits.MaxAge
// on a quiet fleet). Older servers do not report it; there the newest
// STATE message tells, which the limits never evict while newer ones
// arrive. Each is read in one request: reading STATE's last sequence
// first and fetching it after would race with one-per-subject retention
// replacing it.
func (e *Engine) stateCopied(ctx context.Context) (uint64, error) {
	info, err := e.state.Info(ctx)
	if err != nil {
		return 0, engineError("state info", err)
	}
	var recorded uint64
	for _, source := range info.Sources {
		if source.Name == eventsStream {
			recorded = source.Seq
		}
	}
	msg, err := e.state.GetLastMsgForSubject(ctx, eventsSubjects)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return recorded, nil
	case err != nil:
		return 0, engineError("state info", err)
	}
	seq, ok := sourceSequence(msg.Header.Get(headerStreamSource))
	if !ok {
		return 0, herald.Errorf(herald.EINTERNAL, "engine: state message %d has no source sequence", msg.Sequence)
	}
	return max(seq, recorded), nil
}

// StateLag returns how many of the newest log events the state view has
// not copied yet. Latest does not depend on it (it asks the log first),
// and retention waits for it (see retention), so a lag costs no event;
// it tells a health check that STATE keeps up (a lag that grows holds the
// log beyond its limits), and a test that STATE has caught up.
func (e *Engine) StateLag(ctx context.Context) (uint64, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	events, err := e.events.Info(ctx)
	if err != nil {
		return 0, engineError("log info", err)
	}
	copied, err := e.stateCopied(ctx)
	if err != nil {
		return 0, err
	}
	if first := events.State.FirstSeq; first > 0 {
		// Events removed before STATE reached them, which only a version
		// whose retention ignored STATE did, are not behind.
		copied = max(copied, first-1)
	}
	if copied >= events.State.LastSeq {
		return 0, nil
	}
	return events.State.LastSeq - copied, nil
}

// retentionInterval is how often the engine applies Config.MaxAge, and
// Config.MaxBytes to what other nodes appended.
const retentionInterval = time.Second

// maxRetentionSlack bounds how far past MaxBytes a node lets its appends
// take the log before it purges: one purge holds the stream's lock while
// it removes what the slack let in.
const maxRetentionSlack = 8 << 20

// retention applies Config.MaxAge and Config.MaxBytes to EVENTS. The
// server could do it (StreamConfig.MaxAge, MaxBytes), but it removes
// events whether or not STATE has copied them: STATE sources EVENTS
// asynchronously, so a burst of appends larger than MaxBytes, or a STATE
// stalled for longer than MaxAge, would lose newest-per-subject events
// for good. So EVENTS has no limits of its own, and the engine purges its
// oldest events, never past the last one STATE has copied.
//
// A pass runs every retentionInterval, and as soon as this node's appends
// take the log a slack (MaxBytes/16, at most maxRetentionSlack) past
// MaxBytes. An Append that finds the log two slacks past waits for a
// pass, so that appends never outrun retention by more than that (with a
// small MaxBytes, that is every Append past it). Every node runs passes;
// purging up to a sequence is idempotent. Without MaxBytes, ingest pays
// nothing for it.
type retention struct {
	maxAge   time.Duration
	maxBytes uint64
	slack    uint64

	passing  sync.Mutex    // held by the pass under way
	heldBack time.Time     // when a pass last warned that STATE held it back; guarded by passing
	size     atomic.Uint64 // EVENTS' bytes after the last pass, plus what this node appended since
	kick     chan struct{} // asks for a pass now

	stop context.CancelFunc
	done chan struct{}
}

// startRetention starts the passes if the configuration asks for any.
func (e *Engine) startRetention() {
	if e.cfg.MaxAge == 0 && e.cfg.MaxBytes == 0 {
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	r := &retention{
		maxAge:   e.cfg.MaxAge,
		maxBytes: uint64(e.cfg.MaxBytes),
		slack:    min(uint64(e.cfg.MaxBytes)/16, maxRetentionSlack),
		kick:     make(chan struct{}, 1),
		stop:     stop,
		done:     make(chan struct{}),
	}
	e.retention = r
	go func() {
		defer close(r.done)
		ticker := time.NewTicker(retentionInterval)
		defer ticker.Stop()
		for {
			r.passing.Lock()
			e.retain(ctx)
			r.passing.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			case <-r.kick:
			}
		}
	}()
}

// stopRetention stops the passes and waits for the one under way.
func (e *Engine) stopRetention() {
	if r := e.retention; r != nil {
		r.stop()
		<-r.done
	}
}

// appended counts msgs, just stored, toward MaxBytes, and asks for a pass
// or runs one (see retention).
func (e *Engine) appended(ctx context.Context, msgs []*nats.Msg) {
	r := e.retention
	if r == nil || r.maxBytes == 0 {
		return
	}
	var n uint64
	for _, m := range msgs {
		// About what the file store spends on a message (record header,
		// subject, headers, data, checksum).
		n += uint64(len(m.Subject)+len(m.Data)) + 32
		for k, v := range m.Header {
			n += uint64(len(k) + 4)
			for _, s := range v {
				n += uint64(len(s))
			}
		}
	}
	switch size := r.size.Add(n); {
	case size > r.maxBytes+2*r.slack:
		// Not TryLock: a pass under way may have read the log's size
		// before these messages were stored.
		r.passing.Lock()
		e.retain(ctx)
		r.passing.Unlock()
	case size > r.maxBytes+r.slack:
		select {
		case r.kick <- struct{}{}:
		default: // a pass is asked for already
		}
	}
}

// retain runs one pass; r.passing must be held. A failed pass is only
// logged: the next one retries, and Append must not fail for it.
func (e *Engine) retain(ctx context.Context) {
	r := e.retention
	held, err := e.purgeExpired(ctx)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("retention pass failed", "err", err)
		}
		return
	}
	if held > 0 && time.Since(r.heldBack) > time.Minute {
		r.heldBack = time.Now()
		e.log.Warn("retention waits for STATE to copy the events it would remove", "events", held)
	}
}

// purgeExpired purges the events the limits remove and STATE has copied,
// and returns how many more the limits would remove.
func (e *Engine) purgeExpired(ctx context.Context) (held uint64, err error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	r := e.retention
	info, err := e.events.Info(ctx)
	if err != nil {
		return 0, engineError("log info", err)
	}
	state := info.State
	r.size.Store(state.Bytes)
	if state.Msgs == 0 {
		return 0, nil
	}
	var young uint64 // the first event younger than MaxAge
	if r.maxAge > 0 {
		if young, err = e.firstSince(ctx, time.Now().Add(-r.maxAge), state.LastSeq); err != nil {
			return 0, err
		}
	}
	want := retentionCut(state, young, r.maxBytes)
	if want <= state.FirstSeq {
		return 0, nil
	}
	copied, err := e.stateCopied(ctx)
	if err != nil {
		return 0, err
	}
	cut := min(want, copied+1)
	if cut > state.FirstSeq {
		if err := e.events.Purge(ctx, jetstream.WithPurgeSequence(cut)); err != nil {
			return 0, engineError("retention purge", err)
		}
		// The next pass reads the exact size; until then, the mean.
		removed := min(state.Bytes/state.Msgs*(cut-state.FirstSeq), state.Bytes)
		r.size.Store(state.Bytes - removed)
	}
	return want - cut, nil
}

// retentionCut returns the first sequence the log keeps under its limits:
// none before young (the first event younger than MaxAge, 0 without
// MaxAge), and no more than maxBytes (0 for no limit), estimated with the
// mean size of its events since the store cannot tell a range's size.
func retentionCut(state jetstream.StreamState, young, maxBytes uint64) uint64 {
	cut := max(state.FirstSeq, young)
	if maxBytes > 0 && state.Bytes > maxBytes && state.Msgs > 0 {
		drop := math.Ceil(float64(state.Bytes-maxBytes) * float64(state.Msgs) / float64(state.Bytes))
		cut = max(cut, state.FirstSeq+uint64(drop))
	}
	return min(cut, state.LastSeq+1)
}

// firstSince returns the sequence of the first event stored at or after
// t, or last+1 if there is none.
func (e *Engine) firstSince(ctx context.Context, t time.Time, last uint64) (uint64, error) {
	req, err := json.Marshal(struct {
		StartTime time.Time `json:"start_time"`
	}{t.UTC()})
	if err != nil {
		return 0, err
	}
	resp, err := e.conn.RequestWithContext(ctx, jetstream.DefaultAPIPrefix+"STREAM.MSG.GET."+eventsStream, req)
	if err != nil {
		return 0, engineError("retention", err)
	}
	var answer struct {
		Message *struct {
			Seq uint64 `json:"seq"`
		} `json:"message"`
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &answer); err != nil {
		return 0, herald.Errorf(herald.EINTERNAL, "engine: unreadable message lookup: %v", err)
	}
	switch {
	case answer.Error != nil && answer.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return last + 1, nil
	case answer.Error != nil:
		return 0, engineError("retention", answer.Error)
	case answer.Message == nil:
		return 0, herald.Errorf(herald.EINTERNAL, "engine: message lookup answered %s", resp.Data)
	}
	return answer.Message.Seq, nil
}
