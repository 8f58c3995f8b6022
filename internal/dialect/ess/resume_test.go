package ess

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/dialect/dialecttest"
	"github.com/herald-gw/herald/internal/session"
	"github.com/herald-gw/herald/internal/wsconn"
)

// outageLog is a log whose Replay fails while down is set.
type outageLog struct {
	herald.EventLog
	down *atomic.Bool
}

func (l outageLog) Replay(ctx context.Context, org string, after, until uint64, fn func(*herald.Event) error) (uint64, error) {
	if l.down.Load() {
		return after, herald.Errorf(herald.EUNAVAILABLE, "engine: replay: no responders")
	}
	return l.EventLog.Replay(ctx, org, after, until, fn)
}

// Resuming a kept session while the log cannot be read answers 503 and
// keeps the session for the next try, instead of making a new session
// (201), which a vendor's client reads as "events may be lost".
func TestResumeDuringOutageKeepsTheSession(t *testing.T) {
	var down atomic.Bool
	n := dialecttest.NewNode(func(l herald.EventLog) herald.EventLog { return outageLog{l, &down} })
	const id = "5a58488d-bcbf-df5a-cb59-e297b090a5f5"
	if err := n.Engine.SaveSession(context.Background(), herald.DetachedSession{ID: id, Org: "org-a", Dialect: Name,
		State: []byte("[]"), Expires: time.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	resume := func() int {
		t.Helper()
		cfg := Config{Node: n.Session}.WithDefaults()
		server, client := dialecttest.Pipe(t)
		wc := wsconn.NewConn(server, wsconn.Options{})
		c := &conn{cfg: &cfg, conn: wc, principal: herald.Principal{Org: "org-a"}, authed: true}
		c.subs.Store(&subscriptions{})
		c.session = session.New(n.Session, wc)
		c.session.Start(c.principal)
		c.startSession(Command{Name: CommandStartSession, CommandID: 7, SessionID: id})
		f, err := dialecttest.ReadFrame(client)
		if err != nil {
			t.Fatal(err)
		}
		var reply struct {
			Status int `json:"status"`
		}
		if err := json.Unmarshal(f.Payload, &reply); err != nil {
			t.Fatalf("reply %q: %v", f.Payload, err)
		}
		c.session.Forget()
		wc.Close()
		wc.WaitWriter()
		c.session.Close()
		return reply.Status
	}

	down.Store(true)
	if status := resume(); status != StatusUnavailable {
		t.Fatalf("resume while the log is down: status %d, want %d", status, StatusUnavailable)
	}
	down.Store(false)
	if status := resume(); status != StatusOK {
		t.Fatalf("resume once the log is back: status %d, want %d (the session was kept)", status, StatusOK)
	}
}
