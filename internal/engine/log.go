package engine

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-gw/herald"
)

// followBuffer is how many events Follow lets the server push ahead of fn:
// enough to ride out a slow fn at 100k events/s, bounded so a stalled fn
// costs a fixed amount of memory.
const followBuffer = 2048

// replayBuffer is the same for each Replay; many may run at once, for
// every client catching up.
const replayBuffer = 1000

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

// Replay reads org's events with after < id <= until through an ordered
// consumer filtered on the org's subjects.
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

	consumer, err := e.js.OrderedConsumer(ctx, eventsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{filter},
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       after + 1,
		InactiveThreshold: consumerIdleLimit,
	})
	if err != nil {
		return after, engineError("replay", err)
	}
	iter, err := consumer.Messages(jetstream.PullMaxMessages(replayBuffer))
	if err != nil {
		return after, engineError("replay", err)
	}
	defer e.stopConsumer(ctx, consumer, iter)

	last := after
	if info := consumer.CachedInfo(); info != nil && info.NumPending == 0 {
		if end, err = e.lastMatching(ctx, filter, until); err != nil {
			return after, err
		}
	}
	next := jetstream.NextContext(ctx)
	for last < end {
		msg, err := iter.Next(next)
		if err != nil {
			return last, engineError("replay", err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return last, engineError("replay", err)
		}
		seq := meta.Sequence.Stream
		if seq <= last {
			continue
		}
		if seq > until {
			break
		}
		if err := fn(seq, msg.Data()); err != nil {
			return seq, err
		}
		last = seq
		if meta.NumPending == 0 && last < end {
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

// Follow reads the whole log from after+1 through one ordered consumer.
// The ordered consumer recreates itself after a reconnect, from the last
// sequence it delivered; Follow still skips anything at or below the last
// id it passed to fn, so a reset can never repeat an event.
func (e *Engine) Follow(ctx context.Context, after uint64, fn func(*herald.Event)) error {
	consumer, err := e.js.OrderedConsumer(ctx, eventsStream, jetstream.OrderedConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       after + 1,
		InactiveThreshold: consumerIdleLimit,
	})
	if err != nil {
		return followError(ctx, err)
	}
	iter, err := consumer.Messages(jetstream.PullMaxMessages(followBuffer))
	if err != nil {
		return followError(ctx, err)
	}
	defer e.stopConsumer(ctx, consumer, iter)

	last := after
	next := jetstream.NextContext(ctx)
	for {
		msg, err := iter.Next(next)
		if err != nil {
			return followError(ctx, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return followError(ctx, err)
		}
		seq := meta.Sequence.Stream
		if seq <= last {
			continue
		}
		last = seq
		if event := e.decode(seq, msg.Data()); event != nil {
			fn(event)
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
