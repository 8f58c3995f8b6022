package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/herald-gw/herald/internal/server"
)

const processed = "Your request has been processed successfully."

// TestStreamsWalkthrough runs seed 004's walkthrough as written, with the
// real curl and the real wscat at a terminal: a session by POST /session
// (with X-Auth-User and the user's token, and with an API key and no
// user), wscat -c …/session/<id>/ws, the subscribe messages typed at the
// prompt by stream id and by path, their acknowledgements, events posted
// to /api/events arriving in Octave's envelope, and an unsubscribe that
// stops them.
func TestStreamsWalkthrough(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Orgs[0].Users = []server.UserConfig{{Name: "alice", Password: "alice-pw"}}
	ts := startServer(t, cfg)
	streamIDs := ts.streamIDs("acme", keyA)
	alerts, telemetryStream := streamIDs["/acme/devices/Lobby Camera/alerts"], streamIDs["/acme/devices/Lobby Camera/telemetry"]
	if !strings.HasPrefix(alerts, "s") || len(alerts) != 25 || telemetryStream == "" {
		t.Fatalf("GET /api/streams: %v", streamIDs)
	}

	// A user's token, from the documented REST call.
	resp, err := http.PostForm(ts.base+"/API/IDP/connect/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-pw"}, "client_id": {"octave"}})
	if err != nil {
		t.Fatal(err)
	}
	var grant struct {
		AccessToken string `json:"access_token"`
	}
	decodeJSON(resp, &grant)
	curl := func(headers ...string) string {
		t.Helper()
		args := []string{"-s", "-X", "POST", ts.base + "/session"}
		for _, h := range headers {
			args = append(args, "-H", h)
		}
		out, err := exec.Command("curl", args...).Output()
		if err != nil {
			t.Fatalf("curl: %v", err)
		}
		var answer struct {
			Head struct {
				OK     bool
				Status int
				Errors []string
			}
			Body struct{ ID string }
		}
		if err := json.Unmarshal(out, &answer); err != nil || !answer.Head.OK || answer.Head.Status != 201 || answer.Head.Errors == nil || answer.Body.ID == "" {
			t.Fatalf("curl printed %s", out)
		}
		return answer.Body.ID
	}
	curl("X-Auth-User: alice", "X-Auth-Company: acme", "X-Auth-Token: "+grant.AccessToken)
	session := curl("X-Auth-Company: acme", "X-Auth-Token: "+keyA) // a restricted token: no user

	w := startWscat(t, "-c", ts.streamsURL(session))
	w.typeLine(`{"msgId":"my-request","object":"event","type":"subscribe","streamId":"` + alerts + `"}`)
	w.typeLine(`{"msgId":"my-path-request","object":"event","type":"subscribe","path":"/acme/devices/Lobby Camera/telemetry"}`)
	for _, msgID := range []string{"my-request", "my-path-request"} {
		head := w.next()["head"].(map[string]any)
		if head["msgId"] != msgID || head["ok"] != true || !slices.Equal(head["messages"].([]any), []any{processed}) || len(head["errors"].([]any)) != 0 {
			t.Fatalf("acknowledgement %v, want %s's", head, msgID)
		}
	}

	alertID := ts.publish(keyA, alert("a-1", camA))[0]
	pushed := w.next()
	value := pushed["value"].(map[string]any)
	if pushed["type"] != "message" || pushed["resource"] != alerts || value["streamId"] != alerts || value["id"] != "e"+alertID ||
		value["path"] != "/acme/devices/Lobby Camera/alerts" || value["elems"].(map[string]any)["id"] != alertID {
		t.Fatalf("pushed %v", pushed)
	}
	for _, field := range []string{"creationDate", "generatedDate", "creatorId", "lastEditDate", "metadata", "location", "hash", "tags"} {
		if _, ok := value[field]; !ok {
			t.Fatalf("the event has no %s: %v", field, value)
		}
	}
	metricID := ts.publish(keyA, telemetry(camA, map[string]any{"temperature": 21.5}))[0]
	if m := w.next(); m["resource"] != telemetryStream || m["value"].(map[string]any)["id"] != "e"+metricID {
		t.Fatalf("telemetry pushed as %v", m)
	}

	w.typeLine(`{"msgId":"my-request","object":"event","type":"unsubscribe","streamId":"` + alerts + `"}`)
	if head := w.next()["head"].(map[string]any); head["msgId"] != "my-request" || head["ok"] != true {
		t.Fatalf("unsubscribe: %v", head)
	}
	ts.publish(keyA, alert("a-2", camA))
	sentinel := ts.publish(keyA, telemetry(camA, map[string]any{"temperature": 22}))[0]
	if m := w.next(); m["value"].(map[string]any)["id"] != "e"+sentinel {
		t.Fatalf("after the unsubscribe came %v, want the telemetry sentinel %s", m, sentinel)
	}
}

// dialRefused dials url and returns the refusal's status and envelope.
func dialRefused(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, nil)
	if err == nil {
		c.CloseNow()
		t.Fatalf("dial %s was accepted", url)
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	body, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(body, &out)
	return resp.StatusCode, out
}

// TestStreamsSessionLifetime: an unknown id, a used one and an expired
// one are refused before the upgrade; a drop and a re-connect within the
// window lose nothing, and ?after= replays from a named event.
func TestStreamsSessionLifetime(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Streams.SessionTTL = time.Second
	ts := startServer(t, cfg)

	if status, out := dialRefused(t, ts.streamsURL("0123456789abcdef0123456789abcdef")); status != 404 || out["head"].(map[string]any)["ok"] != false {
		t.Fatalf("unknown session: %d %v", status, out)
	}
	created := time.Now()
	unused := ts.newStreamsSession("acme", keyA)
	waitUntil(t, created.Add(1500*time.Millisecond))
	if status, _ := dialRefused(t, ts.streamsURL(unused)); status != 404 {
		t.Fatalf("a session unused for longer than its TTL: %d", status)
	}

	session := ts.newStreamsSession("acme", keyA)
	c := dialStreams(t, ts.streamsURL(session))
	if status, _ := dialRefused(t, ts.streamsURL(session)); status != 404 {
		t.Fatalf("a second connection to a live session: %d", status)
	}
	c.subscribe("path", "/acme/devices/Lobby Camera")
	first := ts.publish(keyA, alert("x-0", camA))[0]
	c.waitPushed(1)
	c.c.CloseNow() // a drop: no close frame
	ts.waitNoConnections()
	var missed []map[string]any
	for i := range 20 {
		missed = append(missed, alert("x-"+string(rune('a'+i)), camA))
	}
	want := ts.publish(keyA, missed...)
	c = dialStreams(t, ts.streamsURL(session))
	if got := eventIDs(c.waitPushed(20)); !slices.Equal(got, want) {
		t.Fatalf("after the re-connect %v, want %v", got, want)
	}
	sentinel := ts.publish(keyA, alert("x-z", camA))[0]
	if got := eventIDs(c.waitPushed(21))[20]; got != sentinel {
		t.Fatalf("after the replay %s, want the sentinel %s", got, sentinel)
	}

	// ?after= names the event to resume after.
	c.c.Close(websocket.StatusNormalClosure, "")
	ts.waitNoConnections()
	c = dialStreams(t, ts.streamsURL(session)+"?after=e"+first)
	if got := eventIDs(c.waitPushed(21)); !slices.Equal(got, append(want, sentinel)) {
		t.Fatalf("after=e%s replayed %v", first, got)
	}
	// A new session connected with ?after: its first subscribe replays
	// after the event named, whatever was published since.
	c.c.Close(websocket.StatusNormalClosure, "")
	ts.waitNoConnections()
	fresh := ts.newStreamsSession("acme", keyA)
	c = dialStreams(t, ts.streamsURL(fresh)+"?after=e"+first)
	ts.waitNoCatchUps() // however long the client takes to subscribe
	c.subscribe("path", "/acme")
	if got := eventIDs(c.waitPushed(21)); !slices.Equal(got, append(want, sentinel)) {
		t.Fatalf("a new session with after=e%s replayed %v", first, got)
	}
	if status, out := dialRefused(t, ts.streamsURL(session)+"?after=zz"); status != 400 || !strings.Contains(out["head"].(map[string]any)["errors"].([]any)[0].(string), "after must be an event id") {
		t.Fatalf("a bad after: %d %v", status, out)
	}
}

// TestStreamsTargets: an id and a path name one stream (one subscription);
// a parent path covers the streams below it; an unregistered device's
// stream is reachable by path, then by the id its events carry.
func TestStreamsTargets(t *testing.T) {
	ts := startServer(t, testConfig(t.TempDir()))
	ids := ts.streamIDs("acme", keyA)
	c := dialStreams(t, ts.streamsURL(ts.newStreamsSession("acme", keyA)))
	c.subscribe("streamId", ids["/acme/devices/Lobby Camera/alerts"])
	c.subscribe("path", "/acme/devices/Lobby Camera/alerts")
	head := c.request(map[string]any{"msgId": "u", "object": "event", "type": "unsubscribe", "path": "/acme/devices/Lobby Camera/alerts"})
	if head["ok"] != true {
		t.Fatalf("unsubscribe by path after subscribing by id and path: %v", head)
	}
	// Both were one subscription: nothing of the stream comes now.
	c.subscribe("path", "/acme/org")
	ts.publish(keyA, alert("y-1", camA))
	orgEvent := ts.publish(keyA, map[string]any{"channel": "system", "entity": "SYSTEM_NOTICE", "entityUuid": "n-1"})[0]
	if got := eventIDs(c.waitPushed(1)); got[0] != orgEvent {
		t.Fatalf("got %v, want only the org's own event %s", got, orgEvent)
	}
	if r := c.pushed[0]["resource"]; r != ids["/acme/org/system"] {
		t.Fatalf("the org event's stream %v, want %s", r, ids["/acme/org/system"])
	}

	// A parent path covers every channel of the device.
	c.subscribe("path", "/acme/devices/Lobby Camera")
	want := ts.publish(keyA, alert("y-2", camA), telemetry(camA, map[string]any{"t": 1}))
	if got := eventIDs(c.waitPushed(3))[1:]; !slices.Equal(got, want) {
		t.Fatalf("the device's path delivered %v, want %v", got, want)
	}

	// An unregistered device, by its uuid in the path.
	const stranger = "c0ffee00-0000-4000-8000-000000000009"
	head = c.request(map[string]any{"msgId": "p", "object": "event", "type": "subscribe", "path": "/acme/devices/" + stranger + "/alerts"})
	if head["ok"] != true || len(head["messages"].([]any)) != 2 {
		t.Fatalf("an unregistered device's path: %v", head)
	}
	strangerEvent := ts.publish(keyA, alert("y-3", stranger))[0]
	pushed := c.waitPushed(4)[3]
	if eventIDs([]map[string]any{pushed})[0] != strangerEvent {
		t.Fatalf("pushed %v, want %s", pushed, strangerEvent)
	}
	byID := dialStreams(t, ts.streamsURL(ts.newStreamsSession("acme", keyA)))
	byID.subscribe("streamId", pushed["resource"].(string))
	next := ts.publish(keyA, alert("y-4", stranger))[0]
	if got := eventIDs(byID.waitPushed(1)); got[0] != next {
		t.Fatalf("by the unregistered device's stream id came %v, want %s", got, next)
	}
}

// TestStreamsBadInput: every bad request gets ok:false with its msgId if
// it has one, and the socket stays open; another org's stream is refused
// exactly like an unknown one; POST /session refuses bad credentials in
// Octave's envelope.
func TestStreamsBadInput(t *testing.T) {
	ts := startServer(t, testConfig(t.TempDir()))
	globex := ts.streamIDs("globex", keyB)["/globex/devices/Dock Camera/alerts"]
	c := dialStreams(t, ts.streamsURL(ts.newStreamsSession("acme", keyA)))
	tests := []struct {
		name, msg string
		msgID     any
		want      string
	}{
		{"not JSON", `{"msgId":`, nil, "not JSON"},
		{"not an object", `["subscribe"]`, nil, "JSON object"},
		{"no msgId", `{"object":"event","type":"subscribe","path":"/acme"}`, nil, `no "msgId"`},
		{"msgId not a string", `{"msgId":7,"object":"event","type":"subscribe","path":"/acme"}`, nil, `"msgId" must be a string`},
		{"wrong object", `{"msgId":"a","object":"device","type":"subscribe","path":"/acme"}`, "a", `"object" must be "event"`},
		{"wrong type", `{"msgId":"b","object":"event","type":"watch","path":"/acme"}`, "b", `"type" must be`},
		{"neither", `{"msgId":"c","object":"event","type":"subscribe"}`, "c", `needs a "streamId" or a "path"`},
		{"both", `{"msgId":"d","object":"event","type":"subscribe","streamId":"s1","path":"/acme"}`, "d", "not both"},
		{"unknown stream", `{"msgId":"e","object":"event","type":"subscribe","streamId":"s000000000000000000000000"}`, "e", `no stream has the id "s000000000000000000000000"`},
		{"another org's stream", `{"msgId":"f","object":"event","type":"subscribe","streamId":"` + globex + `"}`, "f", `no stream has the id "` + globex + `"`},
		{"unknown path", `{"msgId":"g","object":"event","type":"subscribe","path":"/acme/cameras"}`, "g", `no stream has the path "/acme/cameras"`},
		{"another org's path", `{"msgId":"h","object":"event","type":"subscribe","path":"/globex/devices/Dock Camera/alerts"}`, "h", `no stream has the path "/globex/devices/Dock Camera/alerts"`},
		{"not subscribed", `{"msgId":"i","object":"event","type":"unsubscribe","path":"/acme"}`, "i", "not subscribed"},
		{"too large", `{"msgId":"j","path":"` + strings.Repeat("x", 5000) + `"}`, nil, "larger than"},
	}
	for _, tt := range tests {
		c.sendRaw(tt.msg)
		head := c.ack()
		errs, _ := head["errors"].([]any)
		if head["ok"] != false || head["msgId"] != tt.msgID || len(errs) != 1 || !strings.Contains(errs[0].(string), tt.want) {
			t.Errorf("%s: %v, want ok:false, msgId %v, an error with %q", tt.name, head, tt.msgID, tt.want)
		}
		if strings.Contains(errs[0].(string), "globex") && !strings.Contains(tt.want, "globex") {
			t.Errorf("%s: the error names the other org: %v", tt.name, errs)
		}
	}
	c.subscribe("path", "/acme") // still open

	sessions := []struct {
		name, company, user, token string
		status                     int
		want                       string
	}{
		{"no token", "acme", "", "", 401, "X-Auth-Token is missing"},
		{"no company", "", "", keyA, 401, "X-Auth-Company is missing"},
		{"not a key", "acme", "", "nope", 401, "not an API key"},
		{"another company", "globex", "", keyA, 403, `not valid for company "globex"`},
		{"no such company", "initech", "", keyA, 403, `not valid for company "initech"`},
		{"publish-only key", "acme", "", keyAPub, 403, "subscribe scope"},
		{"a key as a user's token", "acme", "alice", keyA, 401, `not a token of user "alice"`},
	}
	for _, tt := range sessions {
		status, out := ts.postSession(tt.company, tt.user, tt.token)
		head, _ := out["head"].(map[string]any)
		errs, _ := head["errors"].([]any)
		if status != tt.status || head["ok"] != false || head["status"] != float64(tt.status) || len(errs) != 1 || !strings.Contains(errs[0].(string), tt.want) {
			t.Errorf("POST /session %s: %d %v, want %d with %q", tt.name, status, out, tt.status, tt.want)
		}
	}
}

// TestStreamsTenancy: org B's session, subscribed to everything of its
// own, sees none of org A's events.
func TestStreamsTenancy(t *testing.T) {
	ts := startServer(t, testConfig(t.TempDir()))
	b := dialStreams(t, ts.streamsURL(ts.newStreamsSession("globex", keyB)))
	b.subscribe("path", "/globex")
	ts.publish(keyA, alert("t-1", camA), alert("t-2", camB))
	own := ts.publish(keyB, alert("t-3", camB))[0]
	if got := eventIDs(b.waitPushed(1)); got[0] != own {
		t.Fatalf("org B got %v first, want its own %s", got, own)
	}
}
