package engine

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/herald-gw/herald"
)

// Headers of JetStream's publish protocol (nats-server server/stream.go).
const (
	headerMsgID       = "Nats-Msg-Id"
	headerBatchID     = "Nats-Batch-Id"
	headerBatchSeq    = "Nats-Batch-Sequence"
	headerBatchCommit = "Nats-Batch-Commit"
)

// JetStream error codes the engine reacts to (nats-server
// server/jetstream_errors_generated.go).
const (
	errCodeBatchTooLarge  = 10199 // JSAtomicPublishTooLargeBatchErrF
	errCodeBatchDuplicate = 10201 // JSAtomicPublishContainsDuplicateMessageErr
)

// Append stores records, all of one org, with one publish or one atomic
// JetStream batch, and returns their ids once JetStream has acknowledged
// them (see the package documentation for what that guarantees). In
// embedded mode a batch costs a few milliseconds whatever its size (the
// server stages it in a store of its own on disk), a single record tens
// of microseconds: callers should not wrap single events in batches.
func (e *Engine) Append(ctx context.Context, records []herald.Record) ([]uint64, error) {
	if len(records) == 0 {
		return nil, nil
	}
	if len(records) > e.cfg.MaxBatch {
		return nil, herald.Errorf(herald.ETOOLARGE, "engine: %d records in one append, the limit is %d", len(records), e.cfg.MaxBatch)
	}
	org := records[0].Org
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()

	// A key repeated within the batch is stored once: the server would
	// reject the whole batch for it, and the producer means one event.
	msgs := make([]*nats.Msg, 0, len(records))
	slot := make([]int, len(records)) // records[i] is stored as msgs[slot[i]]
	var firstByKey map[string]int
	for i := range records {
		r := &records[i]
		if r.Org != org {
			err := herald.Errorf(herald.EINVALID, "engine: one append holds events of two orgs")
			err.Index = i
			return nil, err
		}
		if r.Key != "" {
			if strings.ContainsAny(r.Key, "\r\n") {
				err := herald.Errorf(herald.EINVALID, "engine: key holds a line break")
				err.Index, err.Field = i, "key"
				return nil, err
			}
			if j, seen := firstByKey[r.Key]; seen {
				slot[i] = slot[j]
				continue
			}
			if firstByKey == nil {
				firstByKey = make(map[string]int)
			}
			firstByKey[r.Key] = i
		}
		m := &nats.Msg{Subject: eventSubject(r), Data: r.Data, Header: make(nats.Header, 4)}
		if r.Key != "" {
			m.Header.Set(headerMsgID, org+":"+r.Key)
		}
		slot[i] = len(msgs)
		msgs = append(msgs, m)
	}

	var stored []uint64
	var err error
	if len(msgs) == 1 {
		var id uint64
		id, err = e.publishOne(ctx, msgs[0])
		stored = []uint64{id}
	} else {
		stored, err = e.publishBatch(ctx, msgs)
		var api *jetstream.APIError
		if errors.As(err, &api) && api.ErrorCode == errCodeBatchDuplicate {
			// The batch repeats a key the log already holds: most likely
			// a producer retrying a batch whose acknowledgement it lost.
			// The server rejects such a batch whole, so publish one by
			// one: each repeated key then answers with its original id.
			// Atomicity is given up only here, for a batch that repeats
			// already-stored keys; a retry of a fully stored batch stores
			// nothing new either way.
			stored, err = e.publishEach(ctx, msgs)
		}
	}
	if err != nil {
		return nil, engineError("append", err)
	}
	ids := make([]uint64, len(records))
	for i := range records {
		ids[i] = stored[slot[i]]
	}
	return ids, nil
}

// publishOne publishes m and returns its sequence; for a repeated
// Nats-Msg-Id, the sequence of the original.
func (e *Engine) publishOne(ctx context.Context, m *nats.Msg) (uint64, error) {
	ack, err := e.js.PublishMsg(ctx, m)
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

func (e *Engine) publishEach(ctx context.Context, msgs []*nats.Msg) ([]uint64, error) {
	ids := make([]uint64, len(msgs))
	for i, m := range msgs {
		m.Header.Del(headerBatchID)
		m.Header.Del(headerBatchSeq)
		m.Header.Del(headerBatchCommit)
		id, err := e.publishOne(ctx, m)
		if err != nil {
			return nil, err
		}
		ids[i] = id
	}
	return ids, nil
}

// batchAck is the server's answer to the commit of an atomic batch: the
// sequence of its last message and how many it stored.
type batchAck struct {
	Stream string              `json:"stream"`
	Seq    uint64              `json:"seq"`
	Batch  string              `json:"batch"`
	Count  int                 `json:"count"`
	Error  *jetstream.APIError `json:"error"`
}

// publishBatch publishes msgs as one JetStream atomic batch
// (server/stream.go processJetStreamAtomicBatchMsg). The server stages
// every message of the batch and stores them all, or none, when the last
// one (Nats-Batch-Commit: 1) arrives; only that one carries a reply
// subject, so the batch costs one round trip. A message lost on the way
// leaves a gap in Nats-Batch-Sequence, and the server then rejects the
// commit as incomplete. The commit holds the stream's isolation lock, and
// in a cluster it is one multi-entry Raft proposal, so no other publish
// interleaves: the batch occupies seq-count+1..seq.
func (e *Engine) publishBatch(ctx context.Context, msgs []*nats.Msg) ([]uint64, error) {
	select {
	case e.batchSlots <- struct{}{}:
		defer func() { <-e.batchSlots }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	id := nuid.Next()
	last := len(msgs) - 1
	for i, m := range msgs {
		m.Header.Set(headerBatchID, id)
		m.Header.Set(headerBatchSeq, strconv.Itoa(i+1))
		if i < last {
			if err := e.conn.PublishMsg(m); err != nil {
				return nil, err
			}
		}
	}
	msgs[last].Header.Set(headerBatchCommit, "1")
	resp, err := e.conn.RequestMsgWithContext(ctx, msgs[last])
	if err != nil {
		return nil, err
	}
	var ack batchAck
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return nil, errors.New("unreadable batch acknowledgement: " + err.Error())
	}
	if ack.Error != nil {
		return nil, ack.Error
	}
	if ack.Batch != id || ack.Count != len(msgs) || ack.Seq < uint64(len(msgs)) {
		return nil, errors.New("batch acknowledgement does not match the batch: " + string(resp.Data))
	}
	ids := make([]uint64, len(msgs))
	first := ack.Seq - uint64(len(msgs)) + 1
	for i := range ids {
		ids[i] = first + uint64(i)
	}
	return ids, nil
}
