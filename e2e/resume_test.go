package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestResumeAfterDisconnect: a client disconnects, 100 events are posted,
// it reconnects with the resume header and receives exactly those 100, in
// order, then live events, with no duplicate.
func TestResumeAfterDisconnect(t *testing.T) {
	ts := startServer(t, testConfig(t.TempDir()))
	sub := "SUBSCRIBE\nid:sub-0\ndestination:/topic/change/" + orgA + "\n\n\x00"

	first := dialRaw(t, ts.wsURL(), keyA)
	first.connect()
	first.send(sub)
	ts.waitSubscriptions(1)
	seen := ts.publish(keyA, alert("before", camA))[0]
	if got := frameHeader(first.expect("MESSAGE\n"), "message-id"); got != seen {
		t.Fatalf("first connection got %s, want %s", got, seen)
	}
	first.c.CloseNow()
	ts.waitSubscriptions(0)

	var missed []string
	for i := range 100 {
		// Interleave another org's events: they must not appear.
		ts.publish(keyB, alert(fmt.Sprintf("b-%d", i), camB))
		missed = append(missed, ts.publish(keyA, alert(fmt.Sprintf("missed-%d", i), camA))...)
	}

	second := dialRaw(t, ts.wsURL(), keyA)
	second.connect()
	second.send("SUBSCRIBE\nid:sub-0\ndestination:/topic/change/" + orgA + "\nx-herald-after:" + seen + "\n\n\x00")
	for i, want := range missed {
		msg := second.expect("MESSAGE\n")
		if got := frameHeader(msg, "message-id"); got != want {
			t.Fatalf("replayed message %d: id %s, want %s", i, got, want)
		}
	}
	live := ts.publish(keyA, alert("live", camA))[0]
	if got := frameHeader(second.expect("MESSAGE\n"), "message-id"); got != live {
		t.Fatalf("after replay: got %s, want the live event %s", got, live)
	}
	ts.expectNothingMore(second)
}

// TestResumeWhileLive: events posted while a resume replays are neither
// lost nor duplicated at the hand-over from replay to live.
func TestResumeWhileLive(t *testing.T) {
	ts := startServer(t, testConfig(t.TempDir()))
	var all []string
	batch := make([]map[string]any, 500)
	for i := range batch {
		batch[i] = alert(fmt.Sprintf("a-%d", i), camA)
	}
	all = append(all, ts.publish(keyA, batch...)...)

	c := dialRaw(t, ts.wsURL(), keyA)
	c.connect()
	c.send("SUBSCRIBE\nid:s\ndestination:/topic/change/" + orgA + "\nx-herald-after:0\n\n\x00")
	done := make(chan []string)
	go func() {
		var more []string
		for i := range 20 {
			more = append(more, ts.publish(keyA, alert(fmt.Sprintf("live-%d", i), camA))...)
		}
		done <- more
	}()
	more := <-done
	all = append(all, more...)
	prev := uint64(0)
	for i, want := range all {
		got := frameHeader(c.expect("MESSAGE\n"), "message-id")
		if got != want {
			t.Fatalf("message %d: id %s, want %s", i, got, want)
		}
		n, _ := strconv.ParseUint(got, 10, 64)
		if n <= prev {
			t.Fatalf("ids out of order: %d after %d", n, prev)
		}
		prev = n
	}
	ts.expectNothingMore(c)
}

// TestResumeBeyondRetention: a cursor older than the log's retention gets
// an explicit "events lost" ERROR, never a silent gap; after:0 means
// "everything still there" and is not an error.
func TestResumeBeyondRetention(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Retention.MaxAge = time.Second
	ts := startServer(t, cfg)
	first := ts.publish(keyA, alert("old-1", camA), alert("old-2", camA))[0]
	deadline := time.Now().Add(20 * time.Second)
	for {
		c := dialRaw(t, ts.wsURL(), keyA)
		c.connect()
		c.send("SUBSCRIBE\nid:s\ndestination:/topic/change/" + orgA + "\nx-herald-after:" + first + "\n\n\x00")
		msg, err := c.next(patience)
		if err != nil {
			t.Fatalf("no answer to the resume: %v", err)
		}
		c.c.CloseNow()
		if strings.HasPrefix(msg, "ERROR\n") {
			if frameHeader(msg, "message") != "events lost" || !strings.Contains(frameBody(msg), "no longer in the log") {
				t.Fatalf("ERROR for an expired cursor: %q", msg)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("events never expired from the log")
		}
		time.Sleep(200 * time.Millisecond) // retention runs on the server's own schedule
	}
	c := dialRaw(t, ts.wsURL(), keyA)
	c.connect()
	c.send("SUBSCRIBE\nid:s\ndestination:/topic/change/" + orgA + "\nx-herald-after:0\nreceipt:r\n\n\x00")
	c.expect("RECEIPT\n")
	id := ts.publish(keyA, alert("new", camA))[0]
	if got := frameHeader(c.expect("MESSAGE\n"), "message-id"); got != id {
		t.Fatalf("after:0 with an expired log: got %s, want %s", got, id)
	}
}
