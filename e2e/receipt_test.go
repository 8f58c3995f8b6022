package e2e

import (
	"fmt"
	"testing"
)

// TestSubscribeReceiptMeansActive: once a client has the RECEIPT of its
// SUBSCRIBE, an event published right then is delivered. Repeated, since
// the window it guards against is short.
func TestSubscribeReceiptMeansActive(t *testing.T) {
	ts := startServer(t, testConfig(t.TempDir()))
	for i := range 40 {
		c := dialRaw(t, ts.wsURL(), keyA)
		c.connect()
		c.send(fmt.Sprintf("SUBSCRIBE\nid:s%d\ndestination:/topic/change/%s\nreceipt:r%d\n\n\x00", i, orgA, i))
		c.expect(fmt.Sprintf("RECEIPT\nreceipt-id:r%d\n", i))
		id := ts.publish(keyA, alert(fmt.Sprintf("right-after-%d", i), camA))[0]
		if got := frameHeader(c.expect("MESSAGE\n"), "message-id"); got != id {
			t.Fatalf("round %d: got %s, want %s", i, got, id)
		}
		c.c.CloseNow()
	}
}

// TestSubscribeStartsAfterAcknowledgedEvents: a plain SUBSCRIBE delivers
// only events published after it; an event whose POST returned before the
// SUBSCRIBE never arrives, even if the node has not dispatched it yet.
func TestSubscribeStartsAfterAcknowledgedEvents(t *testing.T) {
	ts := startServer(t, testConfig(t.TempDir()))
	for i := range 20 {
		c := dialRaw(t, ts.wsURL(), keyA)
		c.connect()
		before := make([]map[string]any, 200)
		for j := range before {
			before[j] = alert(fmt.Sprintf("before-%d-%d", i, j), camA)
		}
		ts.publish(keyA, before...)
		c.send(fmt.Sprintf("SUBSCRIBE\nid:s\ndestination:/topic/change/%s\nreceipt:r\n\n\x00", orgA))
		c.expect("RECEIPT\nreceipt-id:r\n")
		id := ts.publish(keyA, alert(fmt.Sprintf("after-%d", i), camA))[0]
		if got := frameHeader(c.expect("MESSAGE\n"), "message-id"); got != id {
			t.Fatalf("round %d: first message is %s, want %s (an event acknowledged before the SUBSCRIBE leaked in)", i, got, id)
		}
		c.c.CloseNow()
	}
}

// TestSubscriptionLimit: a connection holds at most
// limits.max_subscriptions; one more is an ERROR, and an UNSUBSCRIBE frees
// a place.
func TestSubscriptionLimit(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Limits.MaxSubscriptions = 2
	ts := startServer(t, cfg)
	sub := func(c *rawConn, id string) {
		c.send("SUBSCRIBE\nid:" + id + "\ndestination:/topic/change/" + orgA + "\nreceipt:" + id + "\n\n\x00")
	}

	c := dialRaw(t, ts.wsURL(), keyA)
	c.connect()
	sub(c, "a")
	c.expect("RECEIPT\nreceipt-id:a\n")
	sub(c, "b")
	c.expect("RECEIPT\nreceipt-id:b\n")
	c.send("UNSUBSCRIBE\nid:a\nreceipt:u\n\n\x00")
	c.expect("RECEIPT\nreceipt-id:u\n")
	sub(c, "c")
	c.expect("RECEIPT\nreceipt-id:c\n")
	sub(c, "d")
	msg := c.expect("ERROR\n")
	if frameHeader(msg, "message") != "too many subscriptions" || frameHeader(msg, "receipt-id") != "d" {
		t.Fatalf("got %q, want ERROR too many subscriptions for receipt d", msg)
	}
}
