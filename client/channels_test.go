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

// TestChannelsCatchUpFailedResumes: a channels server that could not read
// its log (catch_up_failed, close 1013) skipped nothing, so the Stream
// reconnects and resumes from its cursor, not from the newest event.
func TestChannelsCatchUpFailedResumes(t *testing.T) {
	f := &fakeChannels{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	var mu sync.Mutex
	var statuses []client.Status
	s := dial(t, srv.URL, client.Channels, client.WithToken("a-jwt"), client.After(5), client.OnStatus(func(st client.Status) {
		mu.Lock()
		statuses = append(statuses, st)
		mu.Unlock()
	}))

	if got := next(t, s, 2); got[0] != "6" || got[1] != "7" {
		t.Fatalf("handed out %v, want [6 7]", got)
	}
	if got := f.resumedAfter(); len(got) != 2 || got[0] != "5" || got[1] != "6" {
		t.Fatalf("connections subscribed with last_event_id %q, want [5 6]", got)
	}
	mu.Lock()
	defer mu.Unlock()
	failed := 0
	for _, st := range statuses {
		if errors.Is(st.Err, client.ErrEventsLost) {
			t.Fatalf("status %+v: catch_up_failed reported as events lost", st)
		}
		if st.Err != nil && strings.Contains(st.Err.Error(), "catch_up_failed") {
			failed++
		}
	}
	if failed != 1 {
		t.Fatalf("statuses %+v: want one catch_up_failed", statuses)
	}
}

// fakeChannels is a channels server whose first connection delivers
// event 6 and then fails its catch-up; the next ones deliver event 7.
type fakeChannels struct {
	mu    sync.Mutex
	after []string // each connection's last_event_id
}

func (f *fakeChannels) resumedAfter() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.after...)
}

func (f *fakeChannels) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/ws" {
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
	if _, _, err := c.Read(ctx); err != nil || !send(`{"type":"auth_response","success":true,"user":"alice","org":"`+org+`"}`) {
		return
	}
	_, data, err := c.Read(ctx)
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
		if !send(`{"type":"subscribed","channel":"` + m.Channel + `","filters":{}}`) {
			return
		}
	}
	f.mu.Lock()
	f.after = append(f.after, batch.Messages[0].LastEventID)
	first := len(f.after) == 1
	f.mu.Unlock()
	push := func(id string) bool {
		return send(`{"type":"alert","channel":"alerts","event_id":"` + id + `","device_id":1,"alert_id":"a` + id +
			`","severity":"critical","title":"t","message":"m","timestamp":"2026-01-02T03:04:05Z"}`)
	}
	if first {
		if push("6") && send(`{"type":"error","error":"catch_up_failed","message":"Reading the event log failed; nothing was skipped: reconnect and subscribe with last_event_id."}`) {
			c.Close(websocket.StatusTryAgainLater, "catch-up failed")
		}
		return
	}
	if !push("7") {
		return
	}
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return
		}
	}
}
