package channels

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/gobwas/ws"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/dialect/dialecttest"
	"github.com/herald-gw/herald/internal/wsconn"
)

// TestLostTellsLossFromOutage: only events past the log's retention
// (ECONFLICT) are events_lost, after which a client starts afresh; a log
// that could not be read (the engine electing a leader for longer than
// the catch-up retries) skipped nothing, and the client is told to resume
// from its last event_id, with a close code that is not events lost's.
func TestLostTellsLossFromOutage(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		code   string
		close  ws.StatusCode
		reason string
	}{
		{"past retention", herald.Errorf(herald.ECONFLICT, "the events after 5 are past the log's retention"), CodeEventsLost, CloseEventsLost, "events lost"},
		{"log unavailable", dialecttest.Unavailable, CodeCatchUpFailed, CloseCatchUpFailed, "catch-up failed"},
		{"log unavailable, wrapped", fmt.Errorf("catch-up after 5: %w", dialecttest.Unavailable), CodeCatchUpFailed, CloseCatchUpFailed, "catch-up failed"},
		{"an error without a code", fmt.Errorf("a bug"), CodeCatchUpFailed, CloseCatchUpFailed, "catch-up failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, code, reason := lostFrames(t, tt.err)
			if msg["type"] != "error" || msg["error"] != tt.code || msg["message"] == "" {
				t.Errorf("message %v, want an error %q with a message", msg, tt.code)
			}
			if code != tt.close || reason != tt.reason {
				t.Errorf("closed %d %q, want %d %q", code, reason, tt.close, tt.reason)
			}
		})
	}
}

// lostFrames calls Lost on a connection and returns the message and the
// close frame the client receives.
func lostFrames(t *testing.T, err error) (msg map[string]string, code ws.StatusCode, reason string) {
	t.Helper()
	server, client := dialecttest.Pipe(t)
	c := &conn{conn: wsconn.NewConn(server, wsconn.Options{})}
	t.Cleanup(func() { c.conn.Close() }) // before the client's end closes
	c.Lost(err)
	f, rerr := dialecttest.ReadFrame(client)
	if rerr != nil || f.Header.OpCode != ws.OpText {
		t.Fatalf("first frame: %+v %v, want a text message", f.Header, rerr)
	}
	if jerr := json.Unmarshal(f.Payload, &msg); jerr != nil {
		t.Fatalf("message %q: %v", f.Payload, jerr)
	}
	f, rerr = dialecttest.ReadFrame(client)
	if rerr != nil || f.Header.OpCode != ws.OpClose {
		t.Fatalf("second frame: %+v %v, want a close frame", f.Header, rerr)
	}
	code, reason = ws.ParseCloseFrameData(f.Payload)
	return msg, code, reason
}
