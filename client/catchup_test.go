package client_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/herald-gw/herald/client"
)

// The close a herald ess or streams server sends when it could not read
// its log for a while: 1013 (Try Again Later), nothing skipped, the
// session kept. The reason is cut at a close frame's 123 bytes.
const (
	essCatchUpFailed     = "catch-up failed: reconnect and resume with sessionId and eventId (engine: replay: nats: no responders available for request"
	streamsCatchUpFailed = "catch-up failed: reconnect to the session to resume (engine: replay: nats: no responders available for request)"
)

// TestESSCatchUpFailedResumes: an ess server that could not read its log
// (close 1013) skipped nothing and kept the session, so the Stream resumes
// it with its sessionId and the id of the last event it got, and goes on
// with the next event: no loss, no duplicate, no ErrEventsLost.
func TestESSCatchUpFailedResumes(t *testing.T) {
	f := &fakeESS{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	statuses := &statusLog{}
	s := dial(t, srv.URL, client.ESS, client.WithToken("a-jwt"), client.After(5), client.OnStatus(statuses.add))

	if got := next(t, s, 2); got[0] != "6" || got[1] != "7" {
		t.Fatalf("handed out %v, want [6 7]", got)
	}
	want := []string{"session  after 5", "session " + f.session() + " after 6"}
	if got := f.starts(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("startSession commands %q, want %q", got, want)
	}
	statuses.check(t, "catch-up failed")
}

// TestStreamsCatchUpFailedResumes: a streams server that could not read
// its log (close 1013) skipped nothing and kept the session, so the Stream
// connects to the same session again, after the last event it got, and
// goes on with the next event: no loss, no duplicate, no ErrEventsLost.
func TestStreamsCatchUpFailedResumes(t *testing.T) {
	f := &fakeStreams{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	statuses := &statusLog{}
	s := dial(t, srv.URL, client.Streams, client.WithAPIKey(key), client.WithCompany("acme"), client.After(5), client.OnStatus(statuses.add))

	if got := next(t, s, 2); got[0] != "6" || got[1] != "7" {
		t.Fatalf("handed out %v, want [6 7]", got)
	}
	want := []string{"/session/sess-1/ws?after=e5", "/session/sess-1/ws?after=e6"}
	if got := f.connections(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("connections %q, want %q", got, want)
	}
	if n := f.sessions(); n != 1 {
		t.Fatalf("%d sessions made, want 1: the kept one is resumed", n)
	}
	statuses.check(t, "catch-up failed")
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
			t.Fatalf("status %+v: a catch-up that failed reported as events lost", st)
		}
		if st.Err != nil && strings.Contains(st.Err.Error(), reason) {
			closed++
		}
	}
	if closed != 1 {
		t.Fatalf("statuses %+v: want one %q", l.list, reason)
	}
}

// essEvent is an ess push of the alert id.
func essEvent(id string) string {
	return `{"events":[{"id":"` + id + `","datatype":"POLICY_ALERT","data":{"id":"` + id + `","org":"` + org +
		`","channel":"alerts","entity":"POLICY_ALERT","type":"CREATE","deviceUuid":"` + camera + `"}}]}`
}

// fakeESS is an ess server whose first connection makes a session,
// delivers event 6 and then fails its catch-up; the next ones resume the
// session and deliver event 7.
type fakeESS struct {
	mu      sync.Mutex
	id      string
	started []string // each startSession's "session <id> after <eventId>"
}

func (f *fakeESS) session() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.id
}

func (f *fakeESS) starts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.started...)
}

type essCommand struct {
	Command   string `json:"command"`
	CommandID int    `json:"commandId"`
	SessionID string `json:"sessionId"`
	EventID   string `json:"eventId"`
}

func (f *fakeESS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/ws/events/v1" || r.Header.Get("Authorization") != "Bearer a-jwt" {
		http.NotFound(w, r)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := r.Context()
	send := func(msg string) bool { return c.Write(ctx, websocket.MessageText, []byte(msg)) == nil }
	read := func() (essCommand, bool) {
		var cmd essCommand
		_, data, err := c.Read(ctx)
		return cmd, err == nil && json.Unmarshal(data, &cmd) == nil
	}
	cmd, ok := read()
	if !ok || cmd.Command != "startSession" {
		return
	}
	f.mu.Lock()
	f.started = append(f.started, "session "+cmd.SessionID+" after "+cmd.EventID)
	first := len(f.started) == 1
	resumed := cmd.SessionID != "" && cmd.SessionID == f.id
	if first {
		f.id = "5a58488d-bcbf-df5a-cb59-e297b090a5f5"
	}
	id := f.id
	f.mu.Unlock()
	reply := func(status, field, value string) bool {
		return send(`{"commandId":` + itoa(cmd.CommandID) + `,"status":` + status + `,"` + field + `":"` + value + `"}`)
	}
	switch {
	case first:
		if !reply("201", "sessionId", id) {
			return
		}
		if cmd, ok = read(); !ok || cmd.Command != "addSubscription" || !reply("200", "subscriptionId", "sub-1") {
			return
		}
		if send(essEvent("6")) {
			c.Close(websocket.StatusTryAgainLater, essCatchUpFailed)
		}
		return
	case resumed:
		if !reply("200", "sessionId", id) || !send(essEvent("7")) {
			return
		}
	default: // the test fails on the startSession it recorded
		reply("201", "sessionId", "a-new-session")
	}
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return
		}
	}
}

// streamsEvent is a streams push of the alert id.
func streamsEvent(id string) string {
	return `{"type":"message","resource":"s1","value":{"id":"e` + id + `","streamId":"s1","elems":{"id":"` + id + `","org":"` + org +
		`","channel":"alerts","entity":"POLICY_ALERT","type":"CREATE","deviceUuid":"` + camera + `"}}}`
}

// fakeStreams is a streams server that makes one session, sess-1, whose
// first connection subscribes, delivers event 6 and then fails its
// catch-up; the next connections to it deliver event 7.
type fakeStreams struct {
	mu    sync.Mutex
	made  int      // POST /session
	conns []string // each WebSocket's path and query
}

func (f *fakeStreams) sessions() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.made
}

func (f *fakeStreams) connections() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.conns...)
}

func (f *fakeStreams) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == "POST" && r.URL.Path == "/session" && r.Header.Get("X-Auth-Token") == key && r.Header.Get("X-Auth-Company") == "acme":
		f.mu.Lock()
		f.made++
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"head":{"ok":true,"status":201,"errors":[]},"body":{"id":"sess-1"}}`))
		return
	case r.URL.Path != "/session/sess-1/ws":
		http.NotFound(w, r)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := r.Context()
	f.mu.Lock()
	f.conns = append(f.conns, r.URL.Path+"?"+r.URL.RawQuery)
	first := len(f.conns) == 1
	f.mu.Unlock()
	send := func(msg string) bool { return c.Write(ctx, websocket.MessageText, []byte(msg)) == nil }
	if first {
		var sub struct {
			MsgID string `json:"msgId"`
			Type  string `json:"type"`
		}
		_, data, err := c.Read(ctx)
		if err != nil || json.Unmarshal(data, &sub) != nil || sub.Type != "subscribe" ||
			!send(`{"head":{"msgId":"`+sub.MsgID+`","ok":true,"errors":[],"messages":["Your request has been processed successfully."]},"body":{}}`) {
			return
		}
		if send(streamsEvent("6")) {
			c.Close(websocket.StatusTryAgainLater, streamsCatchUpFailed)
		}
		return
	}
	if !send(streamsEvent("7")) {
		return
	}
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return
		}
	}
}
