package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestSlowConsumerCatchesUpFromLog: a client that stops reading while
// thousands of events arrive overflows its queue, is switched to catch-up
// from the log, and — once it reads again — receives every event in order
// with no duplicate, while a normal client on the same org is unaffected.
func TestSlowConsumerCatchesUpFromLog(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Limits.QueueMessages = 16
	cfg.Limits.WriteTimeout = time.Minute // the slow client pauses; it does not stop for good
	ts := startServer(t, cfg)
	sub := "SUBSCRIBE\nid:s\ndestination:/topic/change/" + orgA + "\n\n\x00"
	slow := dialRawSmallBuffer(t, ts.wsURL(), keyA)
	slow.connect()
	slow.send(sub)
	fast := dialRaw(t, ts.wsURL(), keyA)
	fast.connect()
	fast.send(sub)
	ts.waitSubscriptions(2)

	// ~12 MB: more than the server's socket send buffer (at most 4 MB here)
	// and the slow client's tiny receive buffer hold, so its queue fills
	// while it is not reading.
	ids := publishPadded(ts, 6, 1000)
	readAll := func(name string, c *rawConn) {
		t.Helper()
		for i, want := range ids {
			msg, err := c.next(30 * time.Second)
			if err != nil {
				t.Fatalf("%s: message %d of %d: %v", name, i, len(ids), err)
			}
			if got := frameHeader(msg, "message-id"); got != want {
				t.Fatalf("%s: message %d: id %s, want %s", name, i, got, want)
			}
		}
	}
	readAll("fast", fast)
	// The hub may deliver the last events to fast before it finds slow's
	// queue full, so the gauge is waited for, not read once.
	waitFor(t, patience, "the slow client to leave the live path (catchUps ≥ 1): else the test did not exercise catch-up", func() bool {
		return ts.health()["catchUps"].(float64) >= 1
	})
	readAll("slow", slow)
	last, _ := strconv.Atoi(ids[len(ids)-1])
	live := ts.publish(keyA, alert("after", camA))[0]
	if got := frameHeader(slow.expect("MESSAGE\n"), "message-id"); got != live {
		t.Fatalf("slow client after catch-up: got %s, want live %s (last replayed %d)", got, live, last)
	}
	ts.expectNothingMore(slow)
}

// dialRawSmallBuffer dials with a 4 KiB socket receive buffer, so that a
// client that stops reading backs up into the server quickly.
func dialRawSmallBuffer(t *testing.T, url, key string) *rawConn {
	t.Helper()
	dialer := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		c.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return err
	}}
	client := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient: client, HTTPHeader: http.Header{"x-auth-apikey": {key}},
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return &rawConn{t: t, c: c}
}

// TestSlowReaderIsNotCutOff: a client that keeps reading, only slowly, is
// never disconnected, even when what it is behind takes many times the
// write deadline to drain; it receives everything in order.
func TestSlowReaderIsNotCutOff(t *testing.T) {
	cfg := testConfig(t.TempDir())
	// Long enough that a loaded machine's scheduling pauses do not look
	// like a client that stopped reading.
	cfg.Limits.WriteTimeout = time.Second
	ts := startServer(t, cfg)
	slow := dialRawSmallBuffer(t, ts.wsURL(), keyA)
	slow.connect()
	slow.send("SUBSCRIBE\nid:s\ndestination:/topic/change/" + orgA + "\n\n\x00")
	ts.waitSubscriptions(1)

	// ~3 MB in two requests: the server queues far more than the client
	// drains within one write deadline.
	ids := publishPadded(ts, 2, 750)
	// Read at about 500 KB/s: draining takes ~6 s, six write deadlines.
	start := time.Now()
	for i, want := range ids {
		if i%5 == 0 {
			time.Sleep(20 * time.Millisecond)
		}
		msg, err := slow.next(10 * time.Second)
		if err != nil {
			t.Fatalf("message %d of %d after %v: %v (the server cut off a reading client)", i, len(ids), time.Since(start), err)
		}
		if got := frameHeader(msg, "message-id"); got != want {
			t.Fatalf("message %d: id %s, want %s", i, got, want)
		}
	}
	if d := time.Since(start); d < 4*cfg.Limits.WriteTimeout {
		t.Fatalf("drained in %v: too fast to show anything about a %v write deadline", d, cfg.Limits.WriteTimeout)
	}
	if n := ts.health()["connections"].(float64); n != 1 {
		t.Fatalf("connections %v, want 1", n)
	}
}

// TestStalledReaderIsCutOffAndResumes: a client that stops reading for
// longer than the write deadline is disconnected; resuming from the last
// message-id it received, it gets every later event exactly once.
func TestStalledReaderIsCutOffAndResumes(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Limits.WriteTimeout = 300 * time.Millisecond
	ts := startServer(t, cfg)
	stalled := dialRawSmallBuffer(t, ts.wsURL(), keyA)
	stalled.connect()
	stalled.send("SUBSCRIBE\nid:s\ndestination:/topic/change/" + orgA + "\n\n\x00")
	ts.waitSubscriptions(1)

	ids := publishPadded(ts, 4, 1000)
	// The client reads nothing: the server gives up on it.
	waitFor(t, patience, "the stalled connection to be closed", func() bool {
		return ts.health()["connections"].(float64) == 0
	})
	// What reached the client before the cut, then the end.
	last := "0"
	for i := 0; ; i++ {
		msg, err := stalled.next(patience)
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("after %d messages: the server closed the connection, but the client never saw the end", i)
		}
		if err != nil {
			break
		}
		if !strings.HasPrefix(msg, "MESSAGE\n") {
			t.Fatalf("got %q, want MESSAGE frames until the connection ends", msg)
		}
		if got := frameHeader(msg, "message-id"); got != ids[i] {
			t.Fatalf("before the cut, message %d: id %s, want %s", i, got, ids[i])
		}
		last = ids[i]
	}
	if last == ids[len(ids)-1] {
		t.Fatal("the stalled client received everything: the test did not stall it")
	}

	resumed := dialRaw(t, ts.wsURL(), keyA)
	resumed.connect()
	resumed.send("SUBSCRIBE\nid:s\ndestination:/topic/change/" + orgA + "\nx-herald-after:" + last + "\n\n\x00")
	rest := ids[slices.Index(append([]string{"0"}, ids...), last):]
	for i, want := range rest {
		msg, err := resumed.next(10 * time.Second)
		if err != nil {
			t.Fatalf("resumed: message %d of %d: %v", i, len(rest), err)
		}
		if got := frameHeader(msg, "message-id"); got != want {
			t.Fatalf("resumed: message %d: id %s, want %s", i, got, want)
		}
	}
	ts.expectNothingMore(resumed)
}

// publishPadded publishes requests × perRequest alerts of ~2 KB each to
// org A and returns their ids.
func publishPadded(ts *testServer, requests, perRequest int) []string {
	ts.t.Helper()
	padding := strings.Repeat("x", 2000)
	var ids []string
	for r := range requests {
		batch := make([]map[string]any, perRequest)
		for i := range batch {
			e := alert(fmt.Sprintf("e-%d-%d", r, i), camA)
			e["notes"] = padding
			batch[i] = e
		}
		ids = append(ids, ts.publish(keyA, batch...)...)
	}
	return ids
}
