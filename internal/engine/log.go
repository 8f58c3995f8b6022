package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-gw/herald"
)

// followBuffer is how many events Follow lets the server push ahead of fn:
// enough to ride out a slow fn at 100k events/s, bounded so a stalled fn
// costs a fixed amount of memory.
const followBuffer = 2048

// consumerIdleLimit is how long the server keeps a reader's consumer
// after its reader vanished without deleting it (a crashed node).
const consumerIdleLimit = time.Minute

// LastID returns the sequence of the newest event in the log.
func (e *Engine) LastID(ctx context.Context) (uint64, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	info, err := e.events.Info(ctx)
	if err != nil {
		return 0, engineError("log info", err)
	}
	return info.State.LastSeq, nil
}

// Replay reads org's events with after < id <= until through a consumer
// filtered on the org's subjects (see pullReader).
func (e *Engine) Replay(ctx context.Context, org string, after, until uint64, fn func(*herald.Event) error) (uint64, error) {
	if err := checkOrg(org); err != nil {
		return after, err
	}
	return e.scan(ctx, org, after, until, func(seq uint64, data []byte) error {
		if event := e.decode(seq, data); event != nil && event.Org == org {
			return fn(event)
		}
		return nil
	})
}

// scan passes the stored bytes of org's events with after < id <= until
// to fn, undecoded.
func (e *Engine) scan(ctx context.Context, org string, after, until uint64, fn func(seq uint64, data []byte) error) (uint64, error) {
	info, err := e.streamState(ctx)
	if err != nil {
		return after, err
	}
	if after > 0 && after+1 < info.FirstSeq {
		return after, herald.Errorf(herald.ECONFLICT, "events after %d are no longer in the log (oldest is %d)", after, info.FirstSeq)
	}
	if until == 0 || until > info.LastSeq {
		until = info.LastSeq
	}
	filter := orgFilter(org)
	// end is the last event to deliver. It is known before consuming so
	// that the replay stops there instead of waiting for more.
	end, err := e.lastMatching(ctx, filter, until)
	if err != nil || end <= after {
		return after, err
	}

	r, err := e.startPull(ctx, filter, after+1, info.LastSeq-after)
	if err != nil {
		return after, engineError("replay", err)
	}
	defer r.stop(ctx)

	last := after
	if r.pendingAtStart == 0 {
		if end, err = e.lastMatching(ctx, filter, until); err != nil {
			return after, err
		}
	}
	for last < end {
		seq, pending, data, match, err := r.next(ctx)
		if err != nil {
			return last, engineError("replay", err)
		}
		if seq > until {
			break
		}
		if match && seq > last {
			if err := fn(seq, data); err != nil {
				return seq, err
			}
			last = seq
		}
		if pending == 0 && last < end {
			// Nothing more on the consumer's server, yet end is ahead:
			// either retention removed it meanwhile, or the consumer runs
			// on a replica that lags. Ask the stream leader again. (The
			// same holds above for a consumer that starts with nothing.)
			if end, err = e.lastMatching(ctx, filter, until); err != nil {
				return last, err
			}
		}
	}
	return last, nil
}

// streamState returns the log's current first and last sequence.
func (e *Engine) streamState(ctx context.Context) (jetstream.StreamState, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	info, err := e.events.Info(ctx)
	if err != nil {
		return jetstream.StreamState{}, engineError("log info", err)
	}
	return info.State, nil
}

// lastMatching returns the sequence of the newest event matching filter,
// or until if that is older, or 0 if none matches. The stream leader
// answers, so it is never stale.
func (e *Engine) lastMatching(ctx context.Context, filter string, until uint64) (uint64, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	msg, err := e.events.GetLastMsgForSubject(ctx, filter)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, engineError("replay", err)
	}
	return min(msg.Sequence, until), nil
}

// Follow reads the whole log from after+1 through one ordered consumer,
// until ctx is done. The ordered consumer recreates itself after a
// reconnect, from the last sequence it delivered; Follow still skips
// anything at or below the last id it passed to fn, so a reset can never
// repeat an event. Whatever else stops it — a consumer that cannot be
// made while the cluster elects, one that stopped delivering while the
// log grows (its node died and the client was not told) — it follows
// again from the last id it passed, after a pause that grows to 5s: a
// node's follower outlives any one NATS node.
func (e *Engine) Follow(ctx context.Context, after uint64, fn func(*herald.Event)) error {
	last, pause := after, 250*time.Millisecond
	for {
		from := last
		var err error
		last, err = e.followOnce(ctx, last, fn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if last > from {
			pause = 250 * time.Millisecond
		}
		e.log.Warn("following the event log stopped; following again", "after", last, "err", err)
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return ctx.Err()
		}
		pause = min(2*pause, 5*time.Second)
	}
}

// errFollowStalled ends a followOnce whose consumer delivers nothing
// while the log holds events after the last one it delivered.
var errFollowStalled = errors.New("the consumer stopped delivering while the log grew")

// followResets bounds how often an ordered consumer recreates itself
// before its Next gives up: the client's own retry, unbounded by
// default, holds the consumer's lock and ignores Next's context, so a
// reset that never succeeds would hang the follower with nothing logged.
const followResets = 2

// followAttempt is one followOnce's position, shared by its pump and its
// watchdog: once abandoned, its pump passes nothing more to fn.
type followAttempt struct {
	mu        sync.Mutex
	last      uint64 // guarded by mu: the last id passed to fn (or skipped)
	abandoned bool   // guarded by mu
	delivered atomic.Uint64
	waiting   atomic.Bool // in iter.Next: a quiet spell then is the consumer's, not fn's
}

// abandon stops the attempt and returns the last id it passed to fn.
func (a *followAttempt) abandon() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.abandoned = true
	return a.last
}

// followOnce follows through one ordered consumer until it fails or its
// watchdog finds it stalled; it returns the last id it passed to fn. A
// stalled consumer's pump may be stuck inside the client: it is left to
// end by itself, and passes nothing more to fn.
func (e *Engine) followOnce(ctx context.Context, after uint64, fn func(*herald.Event)) (uint64, error) {
	consumer, err := e.js.OrderedConsumer(ctx, eventsStream, jetstream.OrderedConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       after + 1,
		InactiveThreshold: consumerIdleLimit,
		MaxResetAttempts:  followResets,
	})
	if err != nil {
		return after, followError(ctx, err)
	}
	iter, err := consumer.Messages(jetstream.PullMaxMessages(followBuffer))
	if err != nil {
		return after, followError(ctx, err)
	}
	watched, stalled := context.WithCancelCause(ctx)
	defer stalled(nil)
	a := &followAttempt{last: after}
	a.delivered.Store(after)
	go e.watchFollow(watched, a, stalled)
	pumped := make(chan error, 1)
	go func() { pumped <- e.pump(watched, iter, a, fn) }()

	var pumpErr error
	stuck := false
	select {
	case pumpErr = <-pumped:
	case <-watched.Done():
		// Give a pump that sees the context a moment to end; one stuck in
		// the client is left behind.
		select {
		case pumpErr = <-pumped:
		case <-time.After(time.Second):
			stuck = true
		}
	}
	last := a.abandon()
	if stuck {
		go e.stopConsumer(context.WithoutCancel(ctx), consumer, iter) // Stop may wait for the stuck reset
	} else {
		e.stopConsumer(ctx, consumer, iter)
	}
	if ctx.Err() == nil && errors.Is(context.Cause(watched), errFollowStalled) {
		return last, errFollowStalled
	}
	if pumpErr == nil {
		pumpErr = ctx.Err()
	}
	return last, followError(ctx, pumpErr)
}

// pump passes the consumer's events to fn in order, each once, until
// iter fails or the attempt is abandoned.
func (e *Engine) pump(ctx context.Context, iter jetstream.MessagesContext, a *followAttempt, fn func(*herald.Event)) error {
	next := jetstream.NextContext(ctx)
	for {
		a.waiting.Store(true)
		msg, err := iter.Next(next)
		a.waiting.Store(false)
		if err != nil {
			return err
		}
		seq, _, _, ok := parseAckReply(msg.Reply())
		if !ok {
			meta, err := msg.Metadata()
			if err != nil {
				return err
			}
			seq = meta.Sequence.Stream
		}
		a.mu.Lock()
		if a.abandoned {
			a.mu.Unlock()
			return nil
		}
		if seq > a.last {
			a.last = seq
			if event := e.decode(seq, msg.Data()); event != nil {
				fn(event) // it may block while the hub is busy: that is no stall
			}
			a.delivered.Store(seq)
		}
		a.mu.Unlock()
	}
}

// watchFollow ends the follow (stall) when nothing was delivered for
// e.followStall while the log holds a newer event: it asks the stream
// for its last sequence only after such a quiet spell, so a busy or an
// idle follower costs one question per spell at most.
func (e *Engine) watchFollow(ctx context.Context, a *followAttempt, stall context.CancelCauseFunc) {
	delivered, waiting := &a.delivered, &a.waiting
	every := max(e.followStall/4, 10*time.Millisecond)
	tick := time.NewTicker(every)
	defer tick.Stop()
	seen, quietSince := delivered.Load(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if now := delivered.Load(); now != seen || !waiting.Load() {
			seen, quietSince = now, time.Now()
			continue
		}
		if time.Since(quietSince) < e.followStall {
			continue
		}
		quietSince = time.Now()
		qctx, cancel := context.WithTimeout(ctx, requestTimeout)
		info, err := e.events.Info(qctx)
		cancel()
		if err == nil && info.State.LastSeq > seen && delivered.Load() == seen && waiting.Load() {
			stall(errFollowStalled)
			return
		}
	}
}

// stopConsumer stops iter and deletes its consumer at once: every Replay
// creates one, and the server would otherwise keep each for
// consumerIdleLimit.
func (e *Engine) stopConsumer(ctx context.Context, consumer jetstream.Consumer, iter jetstream.MessagesContext) {
	iter.Stop()
	info := consumer.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := e.js.DeleteConsumer(ctx, eventsStream, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		e.log.Debug("leaving a consumer to expire", "consumer", info.Name, "err", err)
	}
}

func followError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return engineError("follow", err)
}

// decode decodes a stored event, or logs and returns nil for one that is
// not an event at all (something foreign published on ev.>): skipping it
// keeps one bad message from stopping every reader at the same place.
func (e *Engine) decode(seq uint64, data []byte) *herald.Event {
	event, err := herald.DecodeEvent(seq, data)
	if err != nil {
		e.log.Warn("skipping unreadable event", "id", seq, "err", err)
		return nil
	}
	return event
}

// replayBatch is how many messages one pull request of a replay asks for;
// a replay keeps two requests outstanding, so the server always has the
// next batch under way while the reader works. Many replays may run at
// once, one per client catching up: this bounds each one's buffer.
const replayBatch = 2048

// replayStall is how long a replay waits for its next message before it
// assumes the pull requests were lost (a reconnect, a consumer that moved)
// and starts a new consumer from where it is.
const replayStall = 5 * time.Second

// pullReader reads a filtered range of the log in order through an
// ephemeral, unacknowledged pull consumer, with pull requests of its own
// on a plain subscription. It is what jetstream's ordered consumer does,
// minus its per-message costs: it reads the stream sequence, the consumer
// sequence and the pending count from the reply subject by hand (where
// Msg.Metadata splits it into strings, twice per message), and it keeps a
// fixed number of messages in flight. Any gap in the consumer sequence, a
// status message or a stall recreates the consumer after the last
// sequence read, so it never skips or repeats an event.
type pullReader struct {
	e      *Engine
	filter string

	all            bool   // the consumer reads every event; next filters
	prefix         string // subject prefix of filter's events, for all
	consumer       string // current consumer's name
	sub            *nats.Subscription
	subject        string // the consumer's pull request subject
	request        []byte
	outstanding    int    // messages requested and not received
	delivered      uint64 // last consumer sequence received
	last           uint64 // last stream sequence received
	pendingAtStart uint64 // the first consumer's NumPending when created
}

// A replay reads every event and skips other orgs' itself, instead of
// having the server filter, when its org holds at least 3/4 of the events
// to read and they are at least readAllMin: the server's subject matching
// costs more per event than reading an event and skipping it (see
// docs/benchmarks.md), and choosing costs a second consumer, which only a
// long replay wins back.
const (
	readAllShare = 0.75
	readAllMin   = 10_000
)

// startPull starts a reader of the events matching filter (an org's
// ev.<org>.>) from sequence start; total is how many events the log
// holds from start on.
func (e *Engine) startPull(ctx context.Context, filter string, start, total uint64) (*pullReader, error) {
	r := &pullReader{e: e, filter: filter, prefix: strings.TrimSuffix(filter, ">"), last: start - 1,
		request: fmt.Appendf(nil, `{"batch":%d}`, replayBatch)}
	pending, err := r.open(ctx)
	if err != nil {
		return nil, err
	}
	r.pendingAtStart = pending
	if total >= readAllMin && float64(pending) >= readAllShare*float64(total) {
		r.close(ctx)
		r.all = true
		if _, err := r.open(ctx); err != nil {
			return nil, err
		}
	}
	if err := r.pull(); err != nil {
		r.close(ctx)
		return nil, err
	}
	return r, nil
}

// open creates a consumer from r.last+1 and returns its pending count;
// pull starts it.
func (r *pullReader) open(ctx context.Context) (uint64, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	filter := r.filter
	if r.all {
		filter = ""
	}
	consumer, err := r.e.js.CreateConsumer(ctx, eventsStream, jetstream.ConsumerConfig{
		FilterSubject:     filter,
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       r.last + 1,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: consumerIdleLimit,
		Replicas:          1,
		MemoryStorage:     true,
	})
	if err != nil {
		return 0, err
	}
	info := consumer.CachedInfo()
	// A new inbox per consumer: messages still in flight from a previous
	// one can never be mistaken for this one's.
	sub, err := r.e.conn.SubscribeSync(r.e.conn.NewInbox())
	if err != nil {
		r.deleteConsumer(ctx, info.Name)
		return 0, err
	}
	r.consumer, r.sub, r.outstanding, r.delivered = info.Name, sub, 0, 0
	r.subject = "$JS.API.CONSUMER.MSG.NEXT." + eventsStream + "." + info.Name
	return info.NumPending, nil
}

// pull tops the outstanding requests up to two batches.
func (r *pullReader) pull() error {
	for r.outstanding <= replayBatch {
		if err := r.e.conn.PublishRequest(r.subject, r.sub.Subject, r.request); err != nil {
			return err
		}
		r.outstanding += replayBatch
	}
	return nil
}

// next returns the next message's stream sequence, the number of messages
// after it, its data, and whether it matches the filter (when the
// consumer reads everything, other orgs' events come with match false and
// no data).
func (r *pullReader) next(ctx context.Context) (seq, pending uint64, data []byte, match bool, err error) {
	waited := time.Duration(0)
	for {
		msg, err := r.sub.NextMsg(250 * time.Millisecond)
		switch {
		case errors.Is(err, nats.ErrTimeout):
			if ctx.Err() != nil {
				return 0, 0, nil, false, ctx.Err()
			}
			if waited += 250 * time.Millisecond; waited < replayStall {
				continue
			}
			err = errors.New("no message for " + replayStall.String())
		case err != nil:
		case msg.Reply == "":
			err = errors.New("status " + msg.Header.Get("Status") + " " + msg.Header.Get("Description"))
		default:
			var delivered uint64
			var ok bool
			seq, delivered, pending, ok = parseAckReply(msg.Reply)
			switch {
			case !ok:
				return 0, 0, nil, false, fmt.Errorf("unexpected reply subject %q", msg.Reply)
			case delivered != r.delivered+1:
				err = fmt.Errorf("consumer sequence %d after %d", delivered, r.delivered)
			default:
				r.delivered, r.last = delivered, seq
				if r.outstanding--; r.outstanding <= replayBatch {
					if err := r.pull(); err != nil {
						return 0, 0, nil, false, err
					}
				}
				if r.all && !strings.HasPrefix(msg.Subject, r.prefix) {
					return seq, pending, nil, false, nil
				}
				return seq, pending, msg.Data, true, nil
			}
		}
		if ctx.Err() != nil {
			return 0, 0, nil, false, ctx.Err()
		}
		// Start over after the last message read.
		r.e.log.Debug("replay consumer restarts", "consumer", r.consumer, "after", r.last, "reason", err)
		r.close(ctx)
		if _, err := r.open(ctx); err != nil {
			return 0, 0, nil, false, err
		}
		if err := r.pull(); err != nil {
			return 0, 0, nil, false, err
		}
		waited = 0
	}
}

// stop ends the reader and deletes its consumer at once: every Replay
// creates one, and the server would otherwise keep each for
// consumerIdleLimit.
func (r *pullReader) stop(ctx context.Context) { r.close(ctx) }

func (r *pullReader) close(ctx context.Context) {
	if r.sub != nil {
		r.sub.Unsubscribe()
		r.sub = nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	r.deleteConsumer(ctx, r.consumer)
}

func (r *pullReader) deleteConsumer(ctx context.Context, name string) {
	if err := r.e.js.DeleteConsumer(ctx, eventsStream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		r.e.log.Debug("leaving a consumer to expire", "consumer", name, "err", err)
	}
}

// parseAckReply reads a JetStream message's reply subject, in either form
// the server uses (nats-server jsAckPfx; nats.go jetstream parser):
//
//	$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>
//	$JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>[.<token>…]
//
// and returns the stream sequence, the consumer sequence and the pending
// count, without allocating.
func parseAckReply(reply string) (stream, consumer, pending uint64, ok bool) {
	const prefix = "$JS.ACK."
	if !strings.HasPrefix(reply, prefix) {
		return 0, 0, 0, false
	}
	var tokens [12]string
	n := 0
	rest := reply[len(prefix):]
	for n < len(tokens) {
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			tokens[n] = rest
			n++
			break
		}
		tokens[n], rest = rest[:i], rest[i+1:]
		n++
	}
	// Positions of sseq, dseq, pending after the prefix.
	at := 3
	switch {
	case n == 7:
	case n >= 9:
		at = 5
	default:
		return 0, 0, 0, false
	}
	var ok1, ok2, ok3 bool
	stream, ok1 = parseUint(tokens[at])
	consumer, ok2 = parseUint(tokens[at+1])
	pending, ok3 = parseUint(tokens[at+3])
	return stream, consumer, pending, ok1 && ok2 && ok3
}

func parseUint(s string) (uint64, bool) {
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}
