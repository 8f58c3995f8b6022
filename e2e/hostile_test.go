package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// expectError reads until the ERROR frame and checks that its message
// header or body mentions want.
func (r *rawConn) expectError(want string) {
	r.t.Helper()
	for {
		msg, err := r.next(10 * time.Second)
		if err != nil {
			r.t.Fatalf("no ERROR mentioning %q: %v", want, err)
		}
		if !strings.HasPrefix(msg, "ERROR\n") {
			continue
		}
		if !strings.Contains(strings.ToLower(msg), want) {
			r.t.Fatalf("ERROR %q does not mention %q", msg, want)
		}
		return
	}
}

// TestTransactionsBounded is defect 8 of issue 8: ACKs inside one open
// transaction, or BEGINs with fresh names, grew the live heap without
// bound (640 MB and 313 MB in seconds on one connection). Both are
// bounded now, with an ERROR that says which limit was hit.
func TestTransactionsBounded(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Limits.MaxPendingAcks = 50
	ts := startServer(t, cfg)

	t.Run("open transactions", func(t *testing.T) {
		c := dialRaw(t, ts.wsURL(), keyA)
		c.connect()
		for i := range 17 {
			c.send("BEGIN\ntransaction:tx-" + strconv.Itoa(i) + "\n\n\x00")
		}
		c.expectError("too many transactions")
	})
	t.Run("acks in one transaction", func(t *testing.T) {
		c := dialRaw(t, ts.wsURL(), keyA)
		c.connect()
		c.send("SUBSCRIBE\nid:s\ndestination:/topic/change/" + orgA + "\nack:client-individual\nreceipt:r\n\n\x00")
		c.expect("RECEIPT")
		ts.publish(keyA, alert("a-1", camA))
		msg := c.expect("MESSAGE")
		ack := frameHeader(msg, "ack")
		c.send("BEGIN\ntransaction:tx\n\n\x00")
		for range 51 {
			c.send("ACK\nid:" + ack + "\ntransaction:tx\n\n\x00")
		}
		c.expectError("transaction too large")
	})
	t.Run("a committed transaction settles its acks", func(t *testing.T) {
		c := dialRaw(t, ts.wsURL(), keyA)
		c.connect()
		c.send("SUBSCRIBE\nid:s\ndestination:/topic/change/" + orgA + "\nack:client\nreceipt:r\n\n\x00")
		c.expect("RECEIPT")
		ts.publish(keyA, alert("a-2", camA))
		ack := frameHeader(c.expect("MESSAGE"), "ack")
		c.send("BEGIN\ntransaction:tx\n\n\x00")
		c.send("ACK\nid:" + ack + "\ntransaction:tx\n\n\x00")
		c.send("COMMIT\ntransaction:tx\nreceipt:done\n\n\x00")
		c.expect("RECEIPT\nreceipt-id:done")
		c.send("ACK\nid:" + ack + "\nreceipt:again\n\n\x00") // settled: no longer awaiting
		c.expectError("bad ack id")
	})
}

// TestChannelsBatchCountsEachMessage is defect 8 of issue 8: a batch
// counted as one message against the rate limit, so one client made
// 55,000 subscribes in 25 s. Each message of a batch counts now.
func TestChannelsBatchCountsEachMessage(t *testing.T) {
	cfg := channelsConfig(t.TempDir())
	cfg.Limits.Channels.MessagesPerSecond = 10
	ts := startServer(t, cfg)
	c := dialChannels(t, ts, "/ws")
	c.login(token(t, orgA, "alice", time.Hour, "subscribe"))
	var batch []any
	for range 20 {
		batch = append(batch, map[string]any{"type": "subscribe", "channel": "alerts"})
	}
	c.send(map[string]any{"type": "batch", "messages": batch})
	if got := c.expect("error"); got["error"] != "rate_limited" {
		t.Fatalf("a batch of 20 at 10 messages/s: %v, want rate_limited", got)
	}
}
