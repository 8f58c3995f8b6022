package e2e

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
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

// TestOneOrgCannotStallAnother is defect 6 of issue 8: the hub dispatches
// every org's events on one goroutine, and one org's worst case (long
// trigger filters times an alert with 200,000 triggers; a conflated
// telemetry event with 75,000 metrics) delayed another org's deliveries
// by 9–12 s. Now over-limit filters and events are refused, and what the
// limits allow costs per event a constant times the event's size: org A
// posts its worst case while org B's latency is measured.
func TestOneOrgCannotStallAnother(t *testing.T) {
	ts := startServer(t, channelsConfig(t.TempDir()))
	dest := "/topic/change/" + orgA

	// Org A's subscribers hold the longest trigger filters allowed: 10
	// subscriptions (as in the report) of 256 triggers each, none of which
	// the events below carry. (More subscriptions cost more, linearly: the
	// defect was the cost growing with the lists' lengths.)
	var list []string
	for i := range 256 {
		list = append(list, "NOT_"+strconv.Itoa(i))
	}
	triggers := strings.Join(list, ",")
	heavy := dialRaw(t, ts.wsURL(), keyA)
	heavy.connect()
	for i := range 10 {
		heavy.send("SUBSCRIBE\nid:s" + strconv.Itoa(i) + "\ndestination:" + dest + "\nx-herald-trigger:" + triggers + "\n\n\x00")
	}
	heavy.send("SUBSCRIBE\nid:last\ndestination:" + dest + "\nreceipt:subscribed\n\n\x00")
	heavy.expect("RECEIPT\nreceipt-id:subscribed")
	// And a conflated telemetry subscriber of org A.
	ch := dialChannels(t, ts, "/ws")
	ch.login(token(t, orgA, "alice", time.Hour, "subscribe"))
	ch.send(map[string]any{"type": "subscribe", "channel": "telemetry", "frequency": "1s"})
	ch.expect("subscribed")

	// Beyond the limits, org A is refused.
	over := dialRaw(t, ts.wsURL(), keyA)
	over.connect()
	over.send("SUBSCRIBE\nid:x\ndestination:" + dest + "\nx-herald-trigger:" + triggers + ",ONE_MORE\n\n\x00")
	over.expectError("at most 256")
	var many []string
	for i := range 200_000 {
		many = append(many, "T"+strconv.Itoa(i))
	}
	big := alert("big", camA)
	big["policyAlertTriggers"] = many
	var refusal map[string]any
	if status := ts.do("POST", "/api/events", keyA, []any{big}, &refusal); status != 400 {
		t.Fatalf("an alert with 200,000 triggers: status %d %v, want 400", status, refusal)
	}

	// Org B's subscriber, and its latency with org A quiet.
	probe := dialRaw(t, ts.wsURL(), keyB)
	probe.connect()
	probe.send("SUBSCRIBE\nid:b\ndestination:/topic/change/" + orgB + "\nreceipt:b\n\n\x00")
	probe.expect("RECEIPT")
	latency := func(n int) time.Duration {
		start := time.Now()
		ts.publish(keyB, alert("b-"+strconv.Itoa(n), camB))
		probe.expect("MESSAGE")
		return time.Since(start)
	}
	quiet := latency(0)

	// Org A's worst case within the limits: alerts with 64 triggers each,
	// and telemetry with 256 metrics each, 200 events a request.
	var alerts, readings []any
	for i := range 200 {
		a := alert("a-"+strconv.Itoa(i), camA)
		a["policyAlertTriggers"] = many[:64]
		alerts = append(alerts, a)
		metrics := map[string]any{}
		for m := range 256 {
			metrics["m"+strconv.Itoa(m)] = map[string]any{"value": i, "unit": "C"}
		}
		readings = append(readings, telemetry(camA, metrics))
	}
	var worst time.Duration
	for round := range 3 {
		for _, batch := range [][]any{alerts, readings} {
			if status := ts.do("POST", "/api/events", keyA, batch, nil); status != 200 {
				t.Fatalf("org A's batch: status %d", status)
			}
		}
		worst = max(worst, latency(1+round))
	}
	t.Logf("org B's latency: %v with org A quiet, at most %v while org A posts its worst case", quiet, worst)
	// Bounded generously for a loaded CI machine; before the fix it was 9.4 s
	// with (then unrefused) bigger inputs.
	if worst > 5*time.Second {
		t.Fatalf("org B waited %v behind org A's events", worst)
	}
}

// TestChannelsMaxConnectionsUnderBurst: the node-wide channels limit holds
// when many clients connect at once. The count was checked before the
// upgrade and raised after it, so a burst of 20 dials against a limit of
// 3 got 5 to 12 connections through.
func TestChannelsMaxConnectionsUnderBurst(t *testing.T) {
	cfg := channelsConfig(t.TempDir())
	cfg.Limits.Channels.MaxConnections = 3
	ts := startServer(t, cfg)
	url := strings.Replace(ts.base, "http", "ws", 1) + "/ws"
	const dials = 200
	accepted := make(chan *websocket.Conn, dials)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range dials {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), patience)
			defer cancel()
			if c, _, err := websocket.Dial(ctx, url, nil); err == nil {
				accepted <- c
			}
		}()
	}
	close(start)
	wg.Wait()
	close(accepted)
	n := 0
	for c := range accepted {
		n++
		c.CloseNow()
	}
	if n > 3 {
		t.Fatalf("%d of %d simultaneous dials were upgraded with max_connections 3", n, dials)
	}
}

// TestCursorBeyondTheEndRefused is defect 7 of issue 8: a resume cursor
// beyond the log's end was accepted, and then nothing was ever delivered
// (the session waited for ids the log would reach only much later).
func TestCursorBeyondTheEndRefused(t *testing.T) {
	ts := startServer(t, channelsConfig(t.TempDir()))
	ids := ts.publish(keyA, alert("c-1", camA), alert("c-2", camA), alert("c-3", camA))
	beyond := "1003"
	if ids[2] == beyond {
		t.Fatal("the log unexpectedly reached the test's cursor")
	}

	c := dialRaw(t, ts.wsURL(), keyA)
	c.connect()
	c.send("SUBSCRIBE\nid:s\ndestination:/topic/change/" + orgA + "\nx-herald-after:" + beyond + "\n\n\x00")
	c.expectError("beyond the newest event")

	ch := dialChannels(t, ts, "/ws")
	ch.login(token(t, orgA, "alice", time.Hour, "subscribe"))
	ch.send(map[string]any{"type": "subscribe", "channel": "alerts", "last_event_id": beyond})
	if m := ch.expect("error"); m["error"] != "invalid_last_event_id" {
		t.Fatalf("channels subscribe after %s: %v", beyond, m)
	}
	// The end itself is a valid cursor.
	ch.send(map[string]any{"type": "subscribe", "channel": "alerts", "last_event_id": ids[2]})
	ch.expect("subscribed")
	next := ts.publish(keyA, alert("c-4", camA))[0]
	if m := ch.expect("alert"); m["event_id"] != next {
		t.Fatalf("after resuming at the end: %v, want event %s", m, next)
	}
}

// TestSubscribeUnsubscribeChurn is defect 2 of issue 8: one STOMP
// connection sending SUBSCRIBE then UNSUBSCRIBE with fresh ids made the
// server do quadratic work (8,000 pairs took 3.3 s, 20,000 did not finish
// in 10 s) and keep every entry. 200,000 pairs are linear work now (about
// a second); before, they took over four minutes, far past the generous
// wait below.
func TestSubscribeUnsubscribeChurn(t *testing.T) {
	ts := startServer(t, testConfig(t.TempDir()))
	c := dialRaw(t, ts.wsURL(), keyA)
	c.connect()
	dest := "/topic/change/" + orgA
	var b strings.Builder
	const pairs = 200_000
	for i := range pairs {
		id := "churn-" + strconv.Itoa(i)
		b.WriteString("SUBSCRIBE\nid:" + id + "\ndestination:" + dest + "\n\n\x00UNSUBSCRIBE\nid:" + id + "\n\n\x00")
		if b.Len() > 32<<10 || i == pairs-1 {
			c.send(b.String())
			b.Reset()
		}
	}
	c.send("SUBSCRIBE\nid:last\ndestination:" + dest + "\nreceipt:done\n\n\x00")
	msg, err := c.next(time.Minute)
	if err != nil || !strings.HasPrefix(msg, "RECEIPT\nreceipt-id:done") {
		t.Fatalf("after %d subscribe/unsubscribe pairs: %q, %v", pairs, msg, err)
	}
	ts.waitSubscriptions(1)
}
