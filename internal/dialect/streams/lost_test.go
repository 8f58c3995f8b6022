package streams

import (
	"context"
	"encoding/json"
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

const catchUpFailed = "catch-up failed: reconnect to the session to resume"

// TestLostTellsLossFromOutage: only events past the log's retention
// (ECONFLICT) are "events lost" (1011), and the session id goes with them;
// a log that could not be read (the engine electing a leader for longer
// than the catch-up retries) skipped nothing: the close is 1013 (Try
// Again Later), which no client reads as a loss, and the session is kept
// for the client to connect to again. A revoked credential ends it as
// before.
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
		{"log unavailable", unavailable, CloseCatchUpFailed, catchUpFailed, true},
		{"log unavailable, wrapped", fmt.Errorf("catch-up after 5: %w", unavailable), CloseCatchUpFailed, catchUpFailed, true},
		{"an error without a code", fmt.Errorf("a bug"), CloseCatchUpFailed, catchUpFailed, true},
		{"a long message", herald.Errorf(herald.EUNAVAILABLE, "%s", strings.Repeat("é", 100)), CloseCatchUpFailed, catchUpFailed, true},
		{"a long loss", herald.Errorf(herald.ECONFLICT, "%s", strings.Repeat("é", 100)), ws.StatusInternalServerError, "events lost: ", false},
		{"revoked", herald.Errorf(herald.EUNAUTHORIZED, "the API key was revoked"), ws.StatusPolicyViolation, "unauthorized: ", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newTestNode(t, nil)
			server, client := pipe(t)
			wc := wsconn.NewConn(server, wsconn.Options{})
			c := &conn{cfg: n.cfg, conn: wc, org: acme, orgName: "acme"}
			c.subs.Store(&[]subscription{})
			c.session = session.New(n.cfg.Node, wc)
			c.session.Start(herald.Principal{Org: acme})
			c.session.Keep("s1", Name, c.detachedState)

			c.Lost(tt.err)
			code, reason := readClose(t, client)
			wc.Close()
			wc.WaitWriter()
			c.session.Close() // as the driver ends it: saved now if kept
			checkClose(t, code, reason, tt.close, tt.reason)
			if _, kept := n.take(t, "s1"); kept != tt.kept {
				t.Errorf("session kept for a resume: %v, want %v", kept, tt.kept)
			}
		})
	}
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
			server, client := pipe(t)
			ended := make(chan struct{})
			after := uint64(5) // beyond this node's head, so the log is asked
			Serve(wsconn.NewConn(server, wsconn.Options{}), n.cfg, d, "acme", &after, func() { close(ended) })
			code, reason := readClose(t, client)
			client.Close()
			select {
			case <-ended:
			case <-time.After(10 * time.Second):
				t.Fatal("the session did not end")
			}
			checkClose(t, code, reason, tt.close, tt.reason)
			kept, ok := n.take(t, "s1")
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
	store *inmem.Engine
	cfg   *Config
}

// newTestNode is a node on the in-memory engine, whose log wrap, if not
// nil, replaces.
func newTestNode(t *testing.T, wrap func(herald.EventLog) herald.EventLog) *testNode {
	t.Helper()
	eng := inmem.New(inmem.Config{})
	h := hub.New(0)
	var log herald.EventLog = eng
	if wrap != nil {
		log = wrap(eng)
	}
	node := session.Node{Log: log, Hub: h, Store: eng, Acked: h.Head}.WithDefaults()
	cfg := Config{Node: &node, Index: NewIndex(), Dir: testDirectory{}}.WithDefaults()
	return &testNode{store: eng, cfg: &cfg}
}

// take takes the stored session id; ok is false if there is none.
func (n *testNode) take(t *testing.T, id string) (d herald.DetachedSession, ok bool) {
	t.Helper()
	d, err := n.store.TakeSession(context.Background(), id)
	if err != nil && herald.ErrorCode(err) != herald.ENOTFOUND {
		t.Fatal(err)
	}
	return d, err == nil
}

func pipe(t *testing.T) (server, client net.Conn) {
	server, client = net.Pipe()
	t.Cleanup(func() { client.Close() })
	client.SetDeadline(time.Now().Add(10 * time.Second)) // only spent if nothing comes
	return server, client
}

func checkClose(t *testing.T, code ws.StatusCode, reason string, wantCode ws.StatusCode, wantReason string) {
	t.Helper()
	if code != wantCode || !strings.HasPrefix(reason, wantReason) {
		t.Errorf("closed %d %q, want %d %q…", code, reason, wantCode, wantReason)
	}
	if len(reason) > 123 || !utf8.ValidString(reason) {
		t.Errorf("close reason %q: %d bytes, valid UTF-8 %v; want at most 123 bytes of UTF-8", reason, len(reason), utf8.ValidString(reason))
	}
	if strings.Contains(reason, "events lost") != (wantCode == ws.StatusInternalServerError) {
		t.Errorf("close reason %q: clients read \"events lost\" as a loss", reason)
	}
}

// readClose reads the server's frames up to its close frame.
func readClose(t *testing.T, r io.Reader) (ws.StatusCode, string) {
	t.Helper()
	for {
		h, err := ws.ReadHeader(r)
		if err != nil {
			t.Fatalf("no close frame: %v", err)
		}
		if h.Length > 4<<10 {
			t.Fatalf("a %d-byte frame", h.Length)
		}
		payload := make([]byte, h.Length)
		if _, err := io.ReadFull(r, payload); err != nil {
			t.Fatal(err)
		}
		if h.OpCode == ws.OpClose {
			return ws.ParseCloseFrameData(payload)
		}
	}
}
