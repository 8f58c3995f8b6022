package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// pipeline publishes the messages of many Appends without waiting for
// each acknowledgement in turn, and routes every PubAck back to the
// Append that waits for it.
//
// Each message carries the reply subject {prefix}{call}.{index}; one
// subscription on {prefix}> receives every PubAck. The server handles one
// connection's publishes in order and stores them in that order, and one
// call's messages go out back to back, so a call's records get
// consecutive ids unless another client writes to the stream at the same
// time (another herald node on the same cluster) or a record repeats a
// stored key (it answers with its original id).
type pipeline struct {
	conn   *nats.Conn
	prefix string
	sub    *nats.Subscription

	publishing sync.Mutex // held while one call publishes its messages

	mu    sync.Mutex // guards next and calls
	next  uint64
	calls map[uint64]*pipelineCall
}

// pipelineCall is one Append waiting for its PubAcks. Only the
// subscription's goroutine writes ids, err and left, and only until left
// reaches 0, which it announces by closing done.
type pipelineCall struct {
	ids  []uint64
	err  error
	left int
	done chan struct{}
}

// publishPipelined publishes msgs through the pipeline. It shares the
// limit on in-flight batches, which keeps the stream's ingest queue
// (100k messages in nats-server) from overflowing into 429 errors.
func (e *Engine) publishPipelined(ctx context.Context, msgs []*nats.Msg) ([]uint64, error) {
	select {
	case e.batchSlots <- struct{}{}:
		defer func() { <-e.batchSlots }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return e.pipe.publish(ctx, msgs)
}

func newPipeline(conn *nats.Conn) (*pipeline, error) {
	// Under the connection's inbox prefix, which deployments with
	// permissions already let herald subscribe to.
	p := &pipeline{conn: conn, prefix: conn.NewInbox() + ".", calls: make(map[uint64]*pipelineCall)}
	sub, err := conn.Subscribe(p.prefix+">", p.receive)
	if err != nil {
		return nil, err
	}
	// Acks arrive as fast as the stream stores; never drop one.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		sub.Unsubscribe()
		return nil, err
	}
	p.sub = sub
	return p, nil
}

// publish publishes msgs in order and returns their sequences once every
// one is acknowledged. On an error, any of msgs may have been stored.
func (p *pipeline) publish(ctx context.Context, msgs []*nats.Msg) ([]uint64, error) {
	call := &pipelineCall{ids: make([]uint64, len(msgs)), left: len(msgs), done: make(chan struct{})}
	p.mu.Lock()
	p.next++
	id := p.next
	p.calls[id] = call
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.calls, id)
		p.mu.Unlock()
	}()

	reply := make([]byte, 0, len(p.prefix)+24)
	reply = append(reply, p.prefix...)
	reply = strconv.AppendUint(reply, id, 10)
	reply = append(reply, '.')
	base := len(reply)
	for i, m := range msgs {
		m.Reply = string(strconv.AppendInt(reply[:base], int64(i), 10))
	}
	p.publishing.Lock()
	for _, m := range msgs {
		if err := p.conn.PublishMsg(m); err != nil {
			p.publishing.Unlock()
			return nil, err
		}
	}
	p.publishing.Unlock()
	select {
	case <-call.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if call.err != nil {
		return nil, call.err
	}
	return call.ids, nil
}

func (p *pipeline) receive(m *nats.Msg) {
	tail := m.Subject[len(p.prefix):]
	dot := strings.IndexByte(tail, '.')
	if dot < 0 {
		return
	}
	id, err1 := strconv.ParseUint(tail[:dot], 10, 64)
	i, err2 := strconv.Atoi(tail[dot+1:])
	if err1 != nil || err2 != nil {
		return
	}
	p.mu.Lock()
	call := p.calls[id]
	p.mu.Unlock()
	if call == nil || i < 0 || i >= len(call.ids) || call.left == 0 {
		return // the call gave up
	}
	var seq uint64
	var err error
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		err = nats.ErrNoResponders
	} else {
		seq, err = parsePubAck(m.Data)
	}
	if err != nil {
		if call.err == nil {
			call.err = err
		}
	} else {
		call.ids[i] = seq
	}
	if call.left--; call.left == 0 {
		close(call.done)
	}
}

// parsePubAck reads the sequence from a PubAck ({"stream":"EVENTS","seq":7}
// or with "duplicate":true) or returns the error it carries.
func parsePubAck(data []byte) (uint64, error) {
	const seqField = `"seq":`
	if !bytes.Contains(data, []byte(`"error"`)) {
		if at := bytes.Index(data, []byte(seqField)); at >= 0 {
			rest := data[at+len(seqField):]
			n := 0
			for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
				n++
			}
			if seq, err := strconv.ParseUint(string(rest[:n]), 10, 64); err == nil && seq > 0 {
				return seq, nil
			}
		}
	}
	var ack struct {
		Seq   uint64              `json:"seq"`
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(data, &ack); err != nil {
		return 0, errors.New("unreadable acknowledgement: " + err.Error())
	}
	if ack.Error != nil {
		return 0, ack.Error
	}
	if ack.Seq == 0 {
		return 0, errors.New("acknowledgement without a sequence: " + string(data))
	}
	return ack.Seq, nil
}
