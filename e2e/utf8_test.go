package e2e

import (
	"strings"
	"testing"
	"time"
)

// badUTF8Alert is an alert whose textDescription holds raw bytes that are
// not UTF-8 inside a JSON string (issue 9): encoding/json reads them, so
// only a rule can keep them out of the log and out of text frames.
const badUTF8Alert = "{\"entity\":\"POLICY_ALERT\",\"type\":\"CREATE\",\"entityUuid\":\"bad-1\",\"deviceUuid\":\"" + camA +
	"\",\"severity\":\"critical\",\"title\":\"caf\xe9 \xff\",\"textDescription\":\"caf\xe9 \xff\"}"

// postBadUTF8 posts badUTF8Alert and checks that it is refused, naming
// the event and its first bad field. It reports a failure without stopping, so that
// the test goes on to show what an accepted event does to subscribers.
func postBadUTF8(t *testing.T, ts *testServer, field string) {
	t.Helper()
	var out struct {
		Error struct {
			Code, Message, Field string
			Index                *int
		}
	}
	status := ts.do("POST", "/api/events", keyA, []byte(badUTF8Alert), &out)
	if status != 400 || out.Error.Code != "invalid" || out.Error.Field != field ||
		out.Error.Index == nil || *out.Error.Index != 0 || !strings.Contains(out.Error.Message, "UTF-8") {
		t.Errorf("POST of invalid UTF-8: status %d, %+v; want 400 invalid, field %s, index 0", status, out.Error, field)
	}
}

// TestInvalidUTF8RhombusPythonClient: the seed's Python STOMP client
// (websocket-client, which decodes every text frame as UTF-8) gets the
// good event posted after a bad one; an event with invalid UTF-8 must
// never reach it, or it fails on it, and on every resume after.
func TestInvalidUTF8RhombusPythonClient(t *testing.T) {
	ts := startServer(t, testConfig(t.TempDir()))
	p := startClient(t, []string{"RHOMBUS_API_KEY=" + keyA, "HERALD_API=" + ts.base,
		"HERALD_WS=" + strings.Replace(ts.base, "http", "ws", 1)}, "", python, "-u", "python/rhombus_monitor.py")
	if got := p.next()["org"]; got != orgA {
		t.Fatalf("getOrgV2 gave org %v, want %s", got, orgA)
	}
	if _, ok := p.next()["connected"]; !ok {
		t.Fatal("no CONNECTED")
	}
	ts.waitSubscriptions(1)

	postBadUTF8(t, ts, "title")
	good := alert("good-1", camA)
	good["textDescription"] = "café ☕"
	ids := ts.publish(keyA, good)
	got, _ := p.next()["event"].(map[string]any)
	if got["id"] != ids[0] || got["textDescription"] != "café ☕" {
		t.Fatalf("next event %v, want the good one (id %s)", got, ids[0])
	}
}

// TestInvalidUTF8ChannelsPythonClient: the same for the channels sample
// (Python websockets, which closes with 1007 on a text frame that is not
// UTF-8).
func TestInvalidUTF8ChannelsPythonClient(t *testing.T) {
	ts := startServer(t, channelsConfig(t.TempDir()))
	p := startClient(t, []string{"HERALD_WS=" + strings.Replace(ts.base, "http", "ws", 1),
		"VALTRONICS_TOKEN=" + token(t, orgA, "alice", time.Hour), "COUNT=1"},
		"READY", python, "-u", "python/valtronics_client.py")
	if m := p.next(); m["type"] != "auth_response" {
		t.Fatalf("first message %v, want auth_response", m)
	}
	for range 3 {
		if m := p.next(); m["type"] != "subscribed" {
			t.Fatalf("got %v, want subscribed", m)
		}
	}
	postBadUTF8(t, ts, "title")
	good := severityAlert("good-1", camA, "critical")
	good["title"] = "café ☕"
	ids := ts.publish(keyA, good)
	m := p.next()
	checkFields(t, m, map[string]any{"type": "alert", "alert_id": "good-1", "title": "café ☕", "event_id": ids[0]})
}
