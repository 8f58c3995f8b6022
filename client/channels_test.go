package client_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/coder/websocket"

	"github.com/herald-gw/herald/client"
)

// TestChannelsCatchUpFailedResumes: a channels server that could not read
// its log (catch_up_failed, close 1013) skipped nothing, so the Stream
// reconnects and resumes from its cursor, not from the newest event.
func TestChannelsCatchUpFailedResumes(t *testing.T) {
	f := &fakeChannels{}
	resumesAfterCatchUpFailed(t, f, client.Channels, "catch_up_failed", client.WithToken("a-jwt"))
	if got := f.after.all(); len(got) != 2 || got[0] != "5" || got[1] != "6" {
		t.Fatalf("connections subscribed with last_event_id %q, want [5 6]", got)
	}
}

// fakeChannels is a channels server whose first connection delivers
// event 6 and then fails its catch-up; the next ones deliver event 7.
type fakeChannels struct {
	after seen // each connection's last_event_id
}

func (f *fakeChannels) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/ws" {
		http.NotFound(w, r)
		return
	}
	play(w, r, f.script)
}

// script is what the server does on each connection.
func (f *fakeChannels) script(c fakeConn) {
	if _, err := c.read(); err != nil || !c.send(`{"type":"auth_response","success":true,"user":"alice","org":"`+org+`"}`) {
		return
	}
	data, err := c.read()
	var batch struct {
		Messages []struct {
			Channel     string `json:"channel"`
			LastEventID string `json:"last_event_id"`
		} `json:"messages"`
	}
	if err != nil || json.Unmarshal(data, &batch) != nil || len(batch.Messages) == 0 {
		return
	}
	for _, m := range batch.Messages {
		if !c.send(`{"type":"subscribed","channel":"` + m.Channel + `","filters":{}}`) {
			return
		}
	}
	push := func(id string) bool {
		return c.send(`{"type":"alert","channel":"alerts","event_id":"` + id + `","device_id":1,"alert_id":"a` + id +
			`","severity":"critical","title":"t","message":"m","timestamp":"2026-01-02T03:04:05Z"}`)
	}
	if f.after.add(batch.Messages[0].LastEventID) {
		if push("6") && c.send(`{"type":"error","error":"catch_up_failed","message":"Reading the event log failed; nothing was skipped: reconnect and subscribe with last_event_id."}`) {
			c.Close(websocket.StatusTryAgainLater, "catch-up failed")
		}
		return
	}
	if !push("7") {
		return
	}
	c.drain()
}
