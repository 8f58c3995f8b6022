package ess

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/hub"
	"github.com/herald-gw/herald/internal/inmem"
	"github.com/herald-gw/herald/internal/session"
	"github.com/herald-gw/herald/internal/wsconn"
)

// TestLostTellsLossFromOutage: only events past the log's retention
// (ECONFLICT) are "events lost" (1011), and the session goes with them, so
// that the client's resume gets 201; a log that could not be read (the
// engine electing a leader for longer than the catch-up retries) skipped
// nothing: the close is 1013 (Try Again Later), which no client reads as a
// loss, and the session is kept for the client to resume with its
// sessionId and eventId. A revoked credential ends it as before.
func TestLostTellsLossFromOutage(t *testing.T) {
	unavailable := herald.Errorf(herald.EUNAVAILABLE, "engine: replay: nats: no responders available for request")
	tests := []struct {
		name   string
		err    error
		close  ws.StatusCode
		reason string // its start
		kept   bool
	}{
		{"past retention", herald.Errorf(herald.ECONFLICT, "events after 5 are no longer in the log (oldest is 9)"), ws.StatusInternalServerError, "events lost: ", false},
		{"log unavailable", unavailable, CloseCatchUpFailed, "catch-up failed: reconnect and resume", true},
		{"log unavailable, wrapped", fmt.Errorf("catch-up after 5: %w", unavailable), CloseCatchUpFailed, "catch-up failed: reconnect and resume", true},
		{"an error without a code", fmt.Errorf("a bug"), CloseCatchUpFailed, "catch-up failed: reconnect and resume", true},
		{"a long message", herald.Errorf(herald.EUNAVAILABLE, "%s", strings.Repeat("é", 100)), CloseCatchUpFailed, "catch-up failed: reconnect and resume", true},
		{"revoked", herald.Errorf(herald.EUNAUTHORIZED, "the API key was revoked"), ws.StatusPolicyViolation, "unauthorized: ", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, reason, kept := lost(t, tt.err)
			if code != tt.close || !strings.HasPrefix(reason, tt.reason) {
				t.Errorf("closed %d %q, want %d %q…", code, reason, tt.close, tt.reason)
			}
			if len(reason) > 123 || !utf8.ValidString(reason) {
				t.Errorf("close reason %q: %d bytes, valid UTF-8 %v; want at most 123 bytes of UTF-8", reason, len(reason), utf8.ValidString(reason))
			}
			if strings.Contains(reason, "events lost") != (tt.close == ws.StatusInternalServerError) {
				t.Errorf("close reason %q: clients read \"events lost\" as a loss", reason)
			}
			if kept != tt.kept {
				t.Errorf("session kept for a resume: %v, want %v", kept, tt.kept)
			}
		})
	}
}

// lost calls Lost on a started session that is kept, and returns the
// close frame its client receives and whether the session was saved for
// a resume once the connection ended.
func lost(t *testing.T, err error) (code ws.StatusCode, reason string, kept bool) {
	t.Helper()
	eng := inmem.New(inmem.Config{})
	h := hub.New(0)
	node := session.Node{Log: eng, Hub: h, Store: eng, Acked: h.Head}.WithDefaults()
	cfg := Config{Node: &node}.WithDefaults()
	server, client := net.Pipe()
	t.Cleanup(func() { client.Close() })
	wc := wsconn.NewConn(server, wsconn.Options{})
	c := &conn{cfg: &cfg, conn: wc, sessionID: "5a58488d-bcbf-df5a-cb59-e297b090a5f5"}
	c.subs.Store(&subscriptions{})
	c.session = session.New(&node, wc)
	c.session.Start(herald.Principal{Org: "org-a"})
	c.session.Keep(c.sessionID, Name, c.detachedState)
	client.SetDeadline(time.Now().Add(10 * time.Second)) // only spent if Lost sends nothing

	c.Lost(err)
	f, rerr := readFrame(client)
	if rerr != nil || f.Header.OpCode != ws.OpClose {
		t.Fatalf("frame: %+v %v, want a close frame", f.Header, rerr)
	}
	code, reason = ws.ParseCloseFrameData(f.Payload)
	wc.Close()
	wc.WaitWriter()
	c.session.Close() // as the driver ends it: saved now if kept
	_, terr := eng.TakeSession(context.Background(), c.sessionID)
	if terr != nil && herald.ErrorCode(terr) != herald.ENOTFOUND {
		t.Fatal(terr)
	}
	return code, reason, terr == nil
}

// readFrame reads one server frame of at most 4 KiB, more than Lost sends.
func readFrame(r io.Reader) (ws.Frame, error) {
	h, err := ws.ReadHeader(r)
	if err != nil {
		return ws.Frame{}, err
	}
	if h.Length > 4<<10 {
		return ws.Frame{Header: h}, fmt.Errorf("a %d-byte frame", h.Length)
	}
	payload := make([]byte, h.Length)
	_, err = io.ReadFull(r, payload)
	return ws.Frame{Header: h, Payload: payload}, err
}
