package wsconn

import (
	"strconv"
	"testing"
	"time"

	"github.com/herald-gw/herald"
)

// batchRenderer frames every event of a run in one message, as the ess
// dialect's {"events":[…]} does.
type batchRenderer struct{}

func (batchRenderer) AppendEvents(parts [][]byte, scratch []byte, events []Message) ([][]byte, []byte, int) {
	start := len(scratch)
	scratch = append(scratch, '[')
	for i, m := range events {
		if i > 0 {
			scratch = append(scratch, ',')
		}
		scratch = strconv.AppendUint(scratch, m.Event.ID, 10)
	}
	scratch = append(scratch, ']')
	return append(parts, scratch[start:]), scratch, len(events)
}

// TestBatchRendering: the renderer gets each run of consecutive events and
// may frame them in one message; a reply between two runs stays between
// them, and what was written is counted.
func TestBatchRendering(t *testing.T) {
	server, client := pair(t, Options{})
	server.SetRenderer(batchRenderer{})
	event := func(id uint64) Message { return Message{Event: &herald.Event{ID: id}} }
	server.mu.Lock() // queue everything before the writer runs
	server.pushLocked(event(1))
	server.pushLocked(event(2))
	server.pushLocked(Message{Data: []byte("reply")})
	server.pushLocked(event(3))
	server.mu.Unlock()
	for _, want := range []string{"[1,2]", "reply", "[3]"} {
		if got := readText(t, client); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	waitUntil(t, func() bool { id, unwritten := server.Written(); return id == 3 && !unwritten })
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(time.Millisecond)
	}
}

// evenFramer frames events with even ids whole, and leaves the odd ones
// to AppendEvents.
type evenFramer struct{ oneRenderer }

func (evenFramer) AppendFramed(parts [][]byte, events []Message) ([][]byte, int) {
	n := 0
	for _, m := range events {
		if m.Event.ID%2 != 0 {
			break
		}
		payload := "framed " + strconv.FormatUint(m.Event.ID, 10)
		parts = append(parts, append(AppendTextHeader(nil, len(payload)), payload...))
		n++
	}
	return parts, n
}

// TestFramerMixed: whole frames from a Framer and messages it leaves to
// AppendEvents keep the queue's order, replies included, and are counted.
func TestFramerMixed(t *testing.T) {
	server, client := pair(t, Options{})
	server.SetRenderer(evenFramer{})
	event := func(id uint64) Message {
		return Message{Event: &herald.Event{ID: id, Body: []byte("body " + strconv.FormatUint(id, 10))}}
	}
	server.mu.Lock()
	for _, m := range []Message{event(2), event(4), event(5), {Data: []byte("reply")}, event(6), event(7), event(8)} {
		server.pushLocked(m)
	}
	server.mu.Unlock()
	for _, want := range []string{"framed 2", "framed 4", "body 5", "reply", "framed 6", "body 7", "framed 8"} {
		if got := readText(t, client); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	waitUntil(t, func() bool { id, unwritten := server.Written(); return id == 8 && !unwritten })
	if got := server.Stats().Events; got != 6 {
		t.Fatalf("%d events counted, want 6", got)
	}
}
