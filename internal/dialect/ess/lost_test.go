package ess

import (
	"testing"

	"github.com/gobwas/ws"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/dialect/dialecttest"
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
	dialecttest.RunLost(t, dialecttest.LostCases(CloseCatchUpFailed, "catch-up failed: reconnect and resume"), lost)
}

// lost calls Lost on a started session that is kept, and returns the
// close frame its client receives and whether the session was saved for
// a resume once the connection ended.
func lost(t *testing.T, err error) (code ws.StatusCode, reason string, kept bool) {
	t.Helper()
	n := dialecttest.NewNode(nil)
	cfg := Config{Node: n.Session}.WithDefaults()
	server, client := dialecttest.Pipe(t)
	wc := wsconn.NewConn(server, wsconn.Options{})
	c := &conn{cfg: &cfg, conn: wc, sessionID: "5a58488d-bcbf-df5a-cb59-e297b090a5f5"}
	c.subs.Store(&subscriptions{})
	c.session = session.New(n.Session, wc)
	c.session.Start(herald.Principal{Org: "org-a"})
	c.session.Keep(c.sessionID, Name, c.detachedState)

	c.Lost(err)
	f, rerr := dialecttest.ReadFrame(client)
	if rerr != nil || f.Header.OpCode != ws.OpClose {
		t.Fatalf("frame: %+v %v, want a close frame", f.Header, rerr)
	}
	code, reason = ws.ParseCloseFrameData(f.Payload)
	wc.Close()
	wc.WaitWriter()
	c.session.Close() // as the driver ends it: saved now if kept
	_, kept = n.Take(t, c.sessionID)
	return code, reason, kept
}
