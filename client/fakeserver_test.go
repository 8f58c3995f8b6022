package client_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/herald-gw/herald/client"
)

// What the fake dialect servers of the catch-up tests share: each plays
// one script per connection, records what it was asked for the test to
// check, and the test watches the Stream's statuses.

// serve runs h for the test's life and returns its URL.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// seen is what a fake server was asked, in order. Its handlers add to it
// while the test reads it.
type seen struct {
	mu   sync.Mutex
	list []string
}

// add records v and reports whether it is the first.
func (s *seen) add(v string) (first bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, v)
	return len(s.list) == 1
}

// all returns a copy of what was recorded.
func (s *seen) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.list...)
}

// fakeConn is a fake server's WebSocket and the request that opened it,
// whose context ends when the client goes.
type fakeConn struct {
	*websocket.Conn
	r *http.Request
}

// play upgrades r to a WebSocket, plays script on it and closes it once
// script returns.
func play(w http.ResponseWriter, r *http.Request, script func(c fakeConn)) {
	wc, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer wc.CloseNow()
	script(fakeConn{Conn: wc, r: r})
}

// send writes msg as a text message and reports whether it went.
func (c fakeConn) send(msg string) bool {
	return c.Write(c.r.Context(), websocket.MessageText, []byte(msg)) == nil
}

// read reads the client's next message.
func (c fakeConn) read() ([]byte, error) {
	_, data, err := c.Read(c.r.Context())
	return data, err
}

// drain reads until the client goes, which keeps the connection open.
func (c fakeConn) drain() {
	for {
		if _, err := c.read(); err != nil {
			return
		}
	}
}

// resumesAfterCatchUpFailed streams from the fake server h with opts,
// after event 5, and fails unless the Stream hands out events 6 and 7 and
// one status tells of the close with reason, none of a loss.
func resumesAfterCatchUpFailed(t *testing.T, h http.Handler, d client.Dialect, reason string, opts ...client.Option) {
	t.Helper()
	statuses := &statusLog{}
	s := dial(t, serve(t, h), d, append(opts, client.After(5), client.OnStatus(statuses.add))...)
	if got := next(t, s, 2); got[0] != "6" || got[1] != "7" {
		t.Fatalf("handed out %v, want [6 7]", got)
	}
	statuses.check(t, reason)
}

// statusLog keeps a Stream's statuses.
type statusLog struct {
	mu   sync.Mutex
	list []client.Status
}

func (l *statusLog) add(st client.Status) {
	l.mu.Lock()
	l.list = append(l.list, st)
	l.mu.Unlock()
}

// check fails unless exactly one status tells of the close with reason
// and none is ErrEventsLost.
func (l *statusLog) check(t *testing.T, reason string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	closed := 0
	for _, st := range l.list {
		if errors.Is(st.Err, client.ErrEventsLost) {
			t.Fatalf("status %+v: a close with %q reported as events lost", st, reason)
		}
		if st.Err != nil && strings.Contains(st.Err.Error(), reason) {
			closed++
		}
	}
	if closed != 1 {
		t.Fatalf("statuses %+v: want one %q", l.list, reason)
	}
}
