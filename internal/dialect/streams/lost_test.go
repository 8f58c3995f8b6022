package streams

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/dialect/dialecttest"
	"github.com/herald-gw/herald/internal/session"
	"github.com/herald-gw/herald/internal/wsconn"
)

const catchUpFailed = "catch-up failed: reconnect to the session to resume"

// TestLostTellsLossFromOutage: only events past the log's retention
// (ECONFLICT) are "events lost" (1011), and the session id goes with them;
// a log that could not be read (the engine electing a leader for longer
// than the catch-up retries) skipped nothing: the close is 1013 (Try
// Again Later), which no client reads as a loss, and the session is kept
// for the client to connect to again. A revoked credential ends it as
// before.
func TestLostTellsLossFromOutage(t *testing.T) {
	longLoss := dialecttest.LostCase{Name: "a long loss", Err: herald.Errorf(herald.ECONFLICT, "%s", strings.Repeat("é", 100)),
		Close: ws.StatusInternalServerError, Reason: "events lost: "}
	cases := append(dialecttest.LostCases(CloseCatchUpFailed, catchUpFailed), longLoss)
	dialecttest.RunLost(t, cases, func(t *testing.T, err error) (ws.StatusCode, string, bool) {
		n := newTestNode(t, nil)
		server, client := dialecttest.Pipe(t)
		wc := wsconn.NewConn(server, wsconn.Options{})
		c := &conn{cfg: n.cfg, conn: wc, org: acme, orgName: "acme"}
		c.subs.Store(&[]subscription{})
		c.session = session.New(n.cfg.Node, wc)
		c.session.Start(herald.Principal{Org: acme})
		c.session.Keep("s1", Name, c.detachedState)

		c.Lost(err)
		code, reason := dialecttest.ReadClose(t, client)
		wc.Close()
		wc.WaitWriter()
		c.session.Close() // as the driver ends it: saved now if kept
		_, kept := n.Take(t, "s1")
		return code, reason, kept
	})
}

// TestServeCannotStartReplay: a connection whose replay cannot start ends
// as the catch-up's would: a log that cannot say where it ends is an
// outage (1013, the session kept, its subscriptions with it, with a cursor
// that skips nothing), while ?after beyond the log's newest event names no
// event of this log (1011, events lost, the session forgotten).
func TestServeCannotStartReplay(t *testing.T) {
	tests := []struct {
		name   string
		log    func(herald.EventLog) herald.EventLog
		close  ws.StatusCode
		reason string
		kept   bool
	}{
		{"log unavailable", func(l herald.EventLog) herald.EventLog { return endlessLog{l} }, CloseCatchUpFailed, catchUpFailed, true},
		{"after beyond the newest event", nil, ws.StatusInternalServerError, "events lost: ", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newTestNode(t, tt.log)
			subs, _ := json.Marshal([]subscription{{Target: Target{Scope: ScopeAll}, Named: "/acme"}})
			d := herald.DetachedSession{ID: "s1", Org: acme, Dialect: Name, State: subs}
			server, client := dialecttest.Pipe(t)
			ended := make(chan struct{})
			after := uint64(5) // beyond this node's head, so the log is asked
			Serve(wsconn.NewConn(server, wsconn.Options{}), n.cfg, d, "acme", &after, func() { close(ended) })
			code, reason := dialecttest.ReadClose(t, client)
			client.Close()
			select {
			case <-ended:
			case <-time.After(10 * time.Second):
				t.Fatal("the session did not end")
			}
			dialecttest.CheckClose(t, code, reason, tt.close, tt.reason)
			kept, ok := n.Take(t, "s1")
			if ok != tt.kept {
				t.Fatalf("session kept for a resume: %v, want %v", ok, tt.kept)
			}
			if ok && (kept.After > after || string(kept.State) != string(subs)) {
				t.Errorf("kept after %d with %s; want after at most %d, with %s", kept.After, kept.State, after, subs)
			}
		})
	}
}

// endlessLog is a log that cannot say where it ends, as while the engine
// elects a leader.
type endlessLog struct{ herald.EventLog }

func (endlessLog) LastID(context.Context) (uint64, error) {
	return 0, herald.Errorf(herald.EUNAVAILABLE, "engine: log info: nats: no responders available for request")
}

type testNode struct {
	*dialecttest.Node
	cfg *Config
}

// newTestNode is a node on the in-memory engine, whose log wrap, if not
// nil, replaces.
func newTestNode(t *testing.T, wrap func(herald.EventLog) herald.EventLog) *testNode {
	t.Helper()
	n := dialecttest.NewNode(wrap)
	cfg := Config{Node: n.Session, Index: NewIndex(), Dir: testDirectory{}}.WithDefaults()
	return &testNode{Node: n, cfg: &cfg}
}
