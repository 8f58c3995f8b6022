package engine

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-gw/herald"
)

// statesStall bounds the wait for a message the consumer said was
// pending and that one-per-subject retention replaced meanwhile.
const statesStall = time.Second

// States implements herald.StateView: one consumer over STATE, filtered
// by the server to the org's subjects of the given entities (as Latest
// asks, under the legacy tokens too where they differ), read up to the
// last message STATE held when it began. What STATE copies meanwhile may
// or may not be seen; copied, taken first, says what is certainly in.
func (e *Engine) States(ctx context.Context, org string, entities []string, fn func(*herald.Event) error) (uint64, error) {
	if err := checkOrg(org); err != nil {
		return 0, err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	copied, err := e.stateCopied(ctx)
	if err != nil {
		return 0, err
	}
	events, err := e.events.Info(ctx)
	if err != nil {
		return 0, engineError("log info", err)
	}
	if first := events.State.FirstSeq; first > 0 {
		// Events removed before STATE reached them are not in the log
		// either: a replay after copied must not ask for them.
		copied = max(copied, first-1)
	}
	var filters []string
	for _, entity := range entities {
		q := herald.StateQuery{Entity: entity}
		for _, f := range [...]string{stateFilter(org, q), legacyStateFilter(org, q)} {
			if !slices.Contains(filters, f) {
				filters = append(filters, f)
			}
		}
	}
	if len(filters) == 0 {
		return copied, nil
	}
	info, err := e.state.Info(ctx)
	if err != nil {
		return 0, engineError("state info", err)
	}
	end := info.State.LastSeq
	if end == 0 {
		return copied, nil
	}
	consumer, err := e.js.CreateConsumer(ctx, stateStream, jetstream.ConsumerConfig{
		FilterSubjects:    filters,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: consumerIdleLimit,
		Replicas:          1,
		MemoryStorage:     true,
	})
	if err != nil {
		return 0, engineError("state read", err)
	}
	defer func() {
		if err := e.js.DeleteConsumer(context.Background(), stateStream, consumer.CachedInfo().Name); err != nil &&
			!errors.Is(err, jetstream.ErrConsumerNotFound) {
			e.log.Debug("leaving a consumer to expire", "stream", stateStream, "err", err)
		}
	}()
	if consumer.CachedInfo().NumPending == 0 {
		return copied, nil
	}
	msgs, err := consumer.Messages(jetstream.PullMaxMessages(512))
	if err != nil {
		return 0, engineError("state read", err)
	}
	defer msgs.Stop()
	for {
		msg, err := msgs.Next(jetstream.NextMaxWait(statesStall))
		switch {
		case errors.Is(err, nats.ErrTimeout) && ctx.Err() == nil:
			return copied, nil // what was pending is gone: replaced by what follows end
		case ctx.Err() != nil:
			return 0, ctx.Err()
		case err != nil:
			return 0, engineError("state read", err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return 0, engineError("state read", err)
		}
		if meta.Sequence.Stream > end {
			return copied, nil
		}
		id, ok := sourceSequence(msg.Headers().Get(headerStreamSource))
		if !ok {
			return 0, herald.Errorf(herald.EINTERNAL, "engine: state message %d has no source sequence", meta.Sequence.Stream)
		}
		if event, err := herald.DecodeEvent(id, msg.Data()); err == nil && event.Org == org && slices.Contains(entities, event.Entity) {
			if err := fn(event); err != nil {
				return 0, err
			}
		}
		if meta.Sequence.Stream == end || meta.NumPending == 0 {
			return copied, nil
		}
	}
}
