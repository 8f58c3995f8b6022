package stomp

import (
	"slices"
	"strconv"
	"strings"
)

// ackRef is an ACK or NACK held in a transaction until COMMIT: the
// subscription and event it settles, resolved when it arrived (nothing
// of the frame is kept).
type ackRef struct {
	sub *subscription
	id  uint64
}

func (c *conn) ack(f *Frame) bool {
	tx, inTx := f.Get("transaction")
	if _, open := c.txs[tx]; inTx && !open {
		return c.fail(f, "unknown transaction", "No transaction "+tx+" is open.")
	}
	ref, ok := c.ackTarget(f)
	if !ok {
		return c.fail(f, "bad ack id", "The ACK/NACK does not name a message awaiting acknowledgement.")
	}
	switch {
	case inTx && len(c.txs[tx]) >= c.cfg.MaxPendingAcks:
		return c.fail(f, "transaction too large",
			"A transaction may hold "+strconv.Itoa(c.cfg.MaxPendingAcks)+" ACK/NACK frames (limits.max_pending_acks).")
	case inTx:
		c.txs[tx] = append(c.txs[tx], ref)
	case !ref.sub.settle(ref.id):
		return c.fail(f, "bad ack id", "The ACK/NACK does not name a message awaiting acknowledgement.")
	}
	return c.receipt(f)
}

func (c *conn) transaction(f *Frame) bool {
	tx, ok := f.Get("transaction")
	if !ok || tx == "" {
		return c.fail(f, "missing transaction header", f.Command+" requires a transaction header.")
	}
	refs, open := c.txs[tx]
	switch {
	case f.Command == "BEGIN" && open:
		return c.fail(f, "transaction already open", "Transaction "+tx+" is already open.")
	case f.Command == "BEGIN" && len(c.txs) >= c.cfg.MaxTransactions:
		return c.fail(f, "too many transactions",
			"A connection may hold "+strconv.Itoa(c.cfg.MaxTransactions)+" open transactions.")
	case f.Command == "BEGIN":
		if c.txs == nil {
			c.txs = make(map[string][]ackRef)
		}
		c.txs[strings.Clone(tx)] = nil
	case !open:
		return c.fail(f, "unknown transaction", "No transaction "+tx+" is open.")
	case f.Command == "COMMIT":
		c.endTransaction(tx)
		for _, ref := range refs {
			if !ref.sub.settle(ref.id) {
				return c.fail(f, "bad ack id", "An ACK/NACK of the transaction does not name a message awaiting acknowledgement.")
			}
		}
	default: // ABORT
		c.endTransaction(tx)
	}
	return c.receipt(f)
}

func (c *conn) endTransaction(tx string) {
	delete(c.txs, tx)
	if len(c.txs) == 0 {
		c.txs = nil // a map never shrinks
	}
}

// ackTarget finds the subscription and event an ACK names: the 1.2 `id`
// header (our `ack` token "<subscription id>.<event id>": the id is
// digits, so the last dot splits it), or 1.0/1.1's `subscription` +
// `message-id`.
func (c *conn) ackTarget(f *Frame) (ackRef, bool) {
	var subID, idText string
	if token, ok := f.Get("id"); ok && c.version == V12 {
		dot := strings.LastIndexByte(token, '.')
		if dot < 0 {
			return ackRef{}, false
		}
		subID, idText = token[:dot], token[dot+1:]
	} else {
		subID, idText = header(f, "subscription"), header(f, "message-id")
	}
	id, err := strconv.ParseUint(idText, 10, 64)
	if err != nil {
		return ackRef{}, false
	}
	s := c.session.Lookup(subID)
	if s == nil {
		return ackRef{}, false
	}
	sub, ok := s.Value.(*subscription)
	return ackRef{sub: sub, id: id}, ok && sub.mode != "auto"
}

// settle removes an acknowledged message: in client mode it and every
// earlier one, in client-individual mode only it. It reports whether the
// message was awaiting acknowledgement. Pending ids ascend, so finding
// one is a binary search.
func (s *subscription) settle(id uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, found := slices.BinarySearch(s.pending, id)
	if !found {
		return false
	}
	if s.mode == "client" {
		s.pending = append(s.pending[:0], s.pending[i+1:]...)
	} else {
		s.pending = append(s.pending[:i], s.pending[i+1:]...)
	}
	if len(s.pending) == 0 && cap(s.pending) > 64 {
		s.pending = nil // give a burst's memory back
	}
	return true
}

// track records a delivered message awaiting ACK and returns its ack
// token. It runs in the writer.
func (s *subscription) track(id uint64) string {
	s.mu.Lock()
	s.pending = append(s.pending, id)
	over := len(s.pending) > s.c.cfg.MaxPendingAcks && !s.over
	if over {
		s.over = true
		s.pending = nil
	}
	s.mu.Unlock()
	if over {
		s.c.fail(nil, "too many unacknowledged messages",
			"Subscription "+s.id+" has more than "+strconv.Itoa(s.c.cfg.MaxPendingAcks)+" messages awaiting ACK.")
	}
	return s.id + "." + strconv.FormatUint(id, 10)
}
