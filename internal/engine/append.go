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

// Append stores records, all of one org, in order, and returns their ids
// once JetStream has acknowledged every one of them (see the package
// documentation for what that guarantees).
//
// Records are, by default, publishes pipelined on the engine's
// connection (pipeline.go): each is acknowledged on its own, so if Append
// fails some of several records may be stored; a retry with the same
// Keys stores none twice and returns the original ids.
// In embedded mode with Sync "always", and for AppendAtomic, they are one
// JetStream atomic batch instead: stored whole or not at all, and fsynced
// once for the batch rather than once per record.
func (e *Engine) Append(ctx context.Context, records []herald.Record) ([]uint64, error) {
	return e.append(ctx, records, e.server != nil && e.cfg.Sync == SyncAlways)
}

// AppendAtomic is Append that stores records whole or not at all, as one
// JetStream atomic batch. In embedded mode an atomic batch costs a few
// milliseconds of fixed work (the server stages it in a store of its own
// on disk), and batches commit one at a time.
func (e *Engine) AppendAtomic(ctx context.Context, records []herald.Record) ([]uint64, error) {
	return e.append(ctx, records, true)
}

func (e *Engine) append(ctx context.Context, records []herald.Record, atomic bool) ([]uint64, error) {
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

	msgs, slot, err := e.messages(records)
	if err != nil {
		return nil, err
	}
	var stored []uint64
	if atomic && len(msgs) > 1 {
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
			for _, m := range msgs {
				m.Header.Del(headerBatchID)
				m.Header.Del(headerBatchSeq)
				m.Header.Del(headerBatchCommit)
				m.Reply = ""
			}
			stored, err = e.publishPipelined(ctx, msgs)
		}
	} else {
		// A single publish is atomic anyway.
		stored, err = e.publishPipelined(ctx, msgs)
	}
	if err != nil {
		return nil, engineError("append", err)
	}
	ids := make([]uint64, len(records))
	for i := range records {
		ids[i] = stored[slot[i]]
	}
	e.noteAcked(stored)
	e.appended(ctx, msgs) // MaxBytes: see retention in state.go
	return ids, nil
}

// messages builds the message of each record: records[i] is published as
// msgs[slot[i]]. A key repeated within records is published once: the
// server would reject an atomic batch for it, and the producer means one
// event. Every message is checked against the payload limit here, so that
// no path fails on size after publishing part of the records.
func (e *Engine) messages(records []herald.Record) (msgs []*nats.Msg, slot []int, err error) {
	org := records[0].Org
	maxPayload := e.conn.MaxPayload()
	msgs = make([]*nats.Msg, 0, len(records))
	slot = make([]int, len(records))
	var firstByKey map[string]int
	for i := range records {
		r := &records[i]
		if r.Org != org {
			err := herald.Errorf(herald.EINVALID, "engine: one append holds events of two orgs")
			err.Index = i
			return nil, nil, err
		}
		m := &nats.Msg{Subject: eventSubject(r), Data: r.Data}
		if len(m.Subject) > maxSubjectBytes {
			err := herald.Errorf(herald.ETOOLARGE, "engine: append: channel, entity and uuids take %d bytes as a subject, the limit is %d", len(m.Subject), maxSubjectBytes)
			err.Index = i
			return nil, nil, err
		}
		size := int64(len(r.Data))
		if r.Key != "" {
			if strings.ContainsAny(r.Key, "\r\n") {
				err := herald.Errorf(herald.EINVALID, "engine: key holds a line break")
				err.Index, err.Field = i, "key"
				return nil, nil, err
			}
			if j, seen := firstByKey[r.Key]; seen {
				slot[i] = slot[j]
				continue
			}
			if firstByKey == nil {
				firstByKey = make(map[string]int)
			}
			firstByKey[r.Key] = i
			m.Header = nats.Header{headerMsgID: []string{org + ":" + r.Key}}
			size += int64(len(headerMsgID) + len(org) + len(r.Key) + 4)
		}
		// Room for the headers an atomic batch adds, and the framing.
		if size+256 > maxPayload {
			err := herald.Errorf(herald.ETOOLARGE, "engine: append: event of %d bytes, the limit is about %d", len(r.Data), maxPayload-256)
			err.Index = i
			return nil, nil, err
		}
		slot[i] = len(msgs)
		msgs = append(msgs, m)
	}
	return msgs, slot, nil
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
		if m.Header == nil {
			m.Header = make(nats.Header, 3)
		}
		m.Header.Set(headerBatchID, id)
		m.Header.Set(headerBatchSeq, strconv.Itoa(i+1))
	}
	msgs[last].Header.Set(headerBatchCommit, "1")
	// Publish under the pipeline's lock, like pipelined calls, so that
	// no batch commits between two messages of a pipelined call; wait
	// for the commit's ack outside it.
	inbox := e.conn.NewInbox()
	sub, err := e.conn.SubscribeSync(inbox)
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	msgs[last].Reply = inbox
	e.pipe.publishing.Lock()
	for _, m := range msgs {
		if err = e.conn.PublishMsg(m); err != nil {
			break
		}
	}
	e.pipe.publishing.Unlock()
	if err != nil {
		return nil, err
	}
	resp, err := sub.NextMsgWithContext(ctx)
	if err != nil {
		return nil, err
	}
	if len(resp.Data) == 0 && resp.Header.Get("Status") == "503" {
		return nil, nats.ErrNoResponders
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
