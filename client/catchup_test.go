package client_test

import (
	"encoding/json"
	"net/http"
	"sync/atomic"
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
	resumesAfterCatchUpFailed(t, f, client.ESS, "catch-up failed", client.WithToken("a-jwt"))
	want := []string{"session  after 5", "session " + essSession + " after 6"}
	if got := f.started.all(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("startSession commands %q, want %q", got, want)
	}
}

// TestStreamsCatchUpFailedResumes: a streams server that could not read
// its log (close 1013) skipped nothing and kept the session, so the Stream
// connects to the same session again, after the last event it got, and
// goes on with the next event: no loss, no duplicate, no ErrEventsLost.
func TestStreamsCatchUpFailedResumes(t *testing.T) {
	f := &fakeStreams{}
	resumesAfterCatchUpFailed(t, f, client.Streams, "catch-up failed", client.WithAPIKey(key), client.WithCompany("acme"))
	want := []string{"/session/sess-1/ws?after=e5", "/session/sess-1/ws?after=e6"}
	if got := f.conns.all(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("connections %q, want %q", got, want)
	}
	if n := f.made.Load(); n != 1 {
		t.Fatalf("%d sessions made, want 1: the kept one is resumed", n)
	}
}

// essEvent is an ess push of the alert id.
func essEvent(id string) string {
	return `{"events":[{"id":"` + id + `","datatype":"POLICY_ALERT","data":{"id":"` + id + `","org":"` + org +
		`","channel":"alerts","entity":"POLICY_ALERT","type":"CREATE","deviceUuid":"` + camera + `"}}]}`
}

// essSession is the session fakeESS makes.
const essSession = "5a58488d-bcbf-df5a-cb59-e297b090a5f5"

// fakeESS is an ess server whose first connection makes the session
// essSession, delivers event 6 and then fails its catch-up; the next ones
// resume the session and deliver event 7.
type fakeESS struct {
	started seen // each startSession's "session <id> after <eventId>"
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
	play(w, r, f.script)
}

// script is what the server does on each connection.
func (f *fakeESS) script(c fakeConn) {
	read := func() (essCommand, bool) {
		var cmd essCommand
		data, err := c.read()
		return cmd, err == nil && json.Unmarshal(data, &cmd) == nil
	}
	cmd, ok := read()
	if !ok || cmd.Command != "startSession" {
		return
	}
	first := f.started.add("session " + cmd.SessionID + " after " + cmd.EventID)
	resumed := cmd.SessionID == essSession
	reply := func(status, field, value string) bool {
		return c.send(`{"commandId":` + itoa(cmd.CommandID) + `,"status":` + status + `,"` + field + `":"` + value + `"}`)
	}
	switch {
	case first:
		if !reply("201", "sessionId", essSession) {
			return
		}
		if cmd, ok = read(); !ok || cmd.Command != "addSubscription" || !reply("200", "subscriptionId", "sub-1") {
			return
		}
		if c.send(essEvent("6")) {
			c.Close(websocket.StatusTryAgainLater, essCatchUpFailed)
		}
		return
	case resumed:
		if !reply("200", "sessionId", essSession) || !c.send(essEvent("7")) {
			return
		}
	default: // the test fails on the startSession it recorded
		reply("201", "sessionId", "a-new-session")
	}
	c.drain()
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
	made  atomic.Int64 // POST /session
	conns seen         // each WebSocket's path and query
}

func (f *fakeStreams) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == "POST" && r.URL.Path == "/session" && r.Header.Get("X-Auth-Token") == key && r.Header.Get("X-Auth-Company") == "acme":
		f.made.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"head":{"ok":true,"status":201,"errors":[]},"body":{"id":"sess-1"}}`))
		return
	case r.URL.Path != "/session/sess-1/ws":
		http.NotFound(w, r)
		return
	}
	play(w, r, f.script)
}

// script is what the server does on each connection.
func (f *fakeStreams) script(c fakeConn) {
	if f.conns.add(c.r.URL.Path + "?" + c.r.URL.RawQuery) {
		var sub struct {
			MsgID string `json:"msgId"`
			Type  string `json:"type"`
		}
		data, err := c.read()
		if err != nil || json.Unmarshal(data, &sub) != nil || sub.Type != "subscribe" ||
			!c.send(`{"head":{"msgId":"`+sub.MsgID+`","ok":true,"errors":[],"messages":["Your request has been processed successfully."]},"body":{}}`) {
			return
		}
		if c.send(streamsEvent("6")) {
			c.Close(websocket.StatusTryAgainLater, streamsCatchUpFailed)
		}
		return
	}
	if !c.send(streamsEvent("7")) {
		return
	}
	c.drain()
}
