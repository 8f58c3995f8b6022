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
