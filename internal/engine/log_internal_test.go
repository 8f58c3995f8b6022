package engine

import (
	"fmt"
	"testing"

	"github.com/herald-gw/herald"
)

func TestParseAckReply(t *testing.T) {
	for _, c := range []struct {
		reply                     string
		stream, consumer, pending uint64
		ok                        bool
	}{
		{"$JS.ACK.EVENTS.c1.1.42.7.1700000000000000000.5", 42, 7, 5, true},
		{"$JS.ACK.hub.ACCHASH.EVENTS.c1.1.42.7.1700000000000000000.5.x9", 42, 7, 5, true},
		{"$JS.ACK._.ACCHASH.EVENTS.c1.1.42.7.1700000000000000000.0", 42, 7, 0, true},
		{"$JS.ACK.EVENTS.c1.1.42.7.1700000000000000000", 0, 0, 0, false},
		{"$JS.ACK.EVENTS.c1.1.x.7.1.5", 0, 0, 0, false},
		{"_INBOX.abc", 0, 0, 0, false},
		{"", 0, 0, 0, false},
	} {
		stream, consumer, pending, ok := parseAckReply(c.reply)
		if ok != c.ok || ok && (stream != c.stream || consumer != c.consumer || pending != c.pending) {
			t.Errorf("parseAckReply(%q) = %d, %d, %d, %v; want %d, %d, %d, %v",
				c.reply, stream, consumer, pending, ok, c.stream, c.consumer, c.pending, c.ok)
		}
	}
}

// TestReplayRestartsLostConsumer: a replay whose consumer disappears
// under it (deleted, as after a server restart or an idle timeout)
// carries on from the last event it passed, without a gap or a repeat,
// whether the server filters (other is as large as the org) or the
// reader does (other is small; see readAllShare).
func TestReplayRestartsLostConsumer(t *testing.T) {
	for _, other := range []int{1000, 100} {
		t.Run(fmt.Sprint("other=", other), func(t *testing.T) { testReplayRestarts(t, other) })
	}
}

func testReplayRestarts(t *testing.T, other int) {
	e, err := Open(t.Context(), Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var want []uint64
	for b := range 12 {
		for org, n := range map[string]int{"org-a": 1000, "org-b": other} {
			batch := make([]herald.Record, n)
			for i := range batch {
				batch[i] = herald.Record{Org: org, Data: fmt.Appendf(nil, `{"org":%q,"n":%d}`, org, b*1000+i)}
			}
			ids, err := e.Append(t.Context(), batch)
			if err != nil {
				t.Fatal(err)
			}
			if org == "org-a" {
				want = append(want, ids...)
			}
		}
	}
	var got []uint64
	_, err = e.Replay(t.Context(), "org-a", 0, 0, func(event *herald.Event) error {
		got = append(got, event.ID)
		if event.Org != "org-a" {
			t.Fatalf("event %d of %s", event.ID, event.Org)
		}
		if len(got) == 100 {
			for name := range e.events.ListConsumers(t.Context()).Info() {
				if err := e.js.DeleteConsumer(t.Context(), eventsStream, name.Name); err != nil {
					t.Errorf("delete consumer %s: %v", name.Name, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("replayed %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d is %d, want %d", i, got[i], want[i])
		}
	}
}
