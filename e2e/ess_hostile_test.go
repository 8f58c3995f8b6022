package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/herald-gw/herald/internal/auth"
)

// TestESSBadInput gives each kind of bad input its documented answer:
// an error reply for what can be answered, a close with 1008 and a reason
// for a message that is not a command, 1009 for one too large, 401 before
// the upgrade for a bad token on it.
func TestESSBadInput(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Auth.JWTSecret = jwtSecret
	ts := startServer(t, cfg)

	replies := []struct {
		name    string
		before  []map[string]any // commands sent first
		command map[string]any
		status  int
		text    string
	}{
		{"unknown command", nil, map[string]any{"command": "fly"}, 400, `Unknown command "fly"`},
		{"subscription before startSession", nil, map[string]any{"command": "addSubscription", "filters": []any{cameraFilter()}}, 400, "startSession first"},
		{"getState before startSession", nil, map[string]any{"command": "getState"}, 400, "startSession first"},
		{"second startSession", []map[string]any{{"command": "startSession", "sessionId": "", "eventId": ""}},
			map[string]any{"command": "startSession", "sessionId": "", "eventId": ""}, 400, "already has session"},
		{"remove an unknown subscription", []map[string]any{{"command": "startSession", "sessionId": "", "eventId": ""}},
			map[string]any{"command": "removeSubscription", "subscriptionId": "nope"}, 404, "No subscription"},
		{"authenticate with a bad token", nil, map[string]any{"command": "authenticate", "token": "Bearer nope"}, 401, "Authentication failed"},
	}
	for _, r := range replies {
		t.Run(r.name, func(t *testing.T) {
			c := dialESS(t, ts.essURL(), keyA)
			for _, cmd := range r.before {
				c.command(cmd)
			}
			reply := c.command(r.command)
			errorText, _ := reply["error"].(map[string]any)["errorText"].(string)
			if reply["status"] != float64(r.status) || !strings.Contains(errorText, r.text) {
				t.Fatalf("reply %v, want status %d and %q", reply, r.status, r.text)
			}
			// The connection goes on.
			if got := c.startSession("", ""); r.name != "second startSession" && r.name != "remove an unknown subscription" && got["status"] != float64(201) {
				t.Fatalf("startSession after the error: %v", got)
			}
		})
	}

	closes := []struct {
		name    string
		message string
		code    websocket.StatusCode
		reason  string
	}{
		{"not JSON", `{"command":`, websocket.StatusPolicyViolation, "not JSON"},
		{"not an object", `[1,2]`, websocket.StatusPolicyViolation, "JSON object"},
		{"no command", `{"commandId":1}`, websocket.StatusPolicyViolation, `no "command"`},
		{"no commandId", `{"command":"getState"}`, websocket.StatusPolicyViolation, `no "commandId"`},
		{"commandId not an integer", `{"command":"getState","commandId":"x"}`, websocket.StatusPolicyViolation, "integer"},
		{"filters not an array", `{"command":"addSubscription","commandId":1,"filters":{}}`, websocket.StatusPolicyViolation, "filters"},
		{"bad modifier", `{"command":"addSubscription","commandId":1,"filters":[{"modifier":"maybe"}]}`, websocket.StatusPolicyViolation, "modifier"},
		{"too large", `{"command":"getState","commandId":1,"pad":"` + strings.Repeat("x", 300<<10) + `"}`, websocket.StatusMessageTooBig, "larger than"},
	}
	for _, cl := range closes {
		t.Run(cl.name, func(t *testing.T) {
			c := dialESS(t, ts.essURL(), keyA)
			c.sendRaw(cl.message)
			code, reason := c.expectClosed()
			if code != cl.code || !strings.Contains(reason, cl.reason) {
				t.Fatalf("closed with %d %q, want %d and %q", code, reason, cl.code, cl.reason)
			}
		})
	}

	t.Run("commands before authenticate", func(t *testing.T) {
		c := dialESS(t, ts.essURL(), "")
		if r := c.startSession("", ""); r["status"] != float64(401) {
			t.Fatalf("startSession before authenticate: %v", r)
		}
		c.ok(200, map[string]any{"command": "authenticate", "token": keyA}) // no "Bearer ": accepted too
		c.ok(201, map[string]any{"command": "startSession", "sessionId": "", "eventId": ""})
	})
	t.Run("three bad authenticates", func(t *testing.T) {
		c := dialESS(t, ts.essURL(), "")
		for range 2 {
			c.ok(401, map[string]any{"command": "authenticate", "token": "Bearer nope"})
		}
		c.ok(401, map[string]any{"command": "authenticate", "token": "Bearer nope"})
		if code, _ := c.expectClosed(); code != websocket.StatusPolicyViolation {
			t.Fatalf("closed with %d after three failures", code)
		}
	})
	expired, err := auth.Issue([]byte(jwtSecret), orgA, "u", []string{"subscribe"}, time.Minute, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	upgrades := []struct {
		name, header string
		status       int
		want         string
	}{
		{"no such key", "Bearer nope", 401, "neither a JWT nor a valid API key"},
		{"not bearer", "Basic abc", 401, "Bearer"},
		{"publish-only key", "Bearer " + keyAPub, 403, "subscribe scope"},
		{"malformed JWT", "Bearer a.b.c", 401, "invalid_token"},
		{"expired JWT", "Bearer " + expired, 401, "token_expired"},
		{"publish-only JWT", "Bearer " + token(t, orgA, "u", time.Hour, "publish"), 403, "subscribe scope"},
		{"unknown org", "Bearer " + token(t, "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f", "u", time.Hour), 401, "unknown_org"},
	}
	for _, tt := range upgrades {
		t.Run("upgrade with "+tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), patience)
			defer cancel()
			_, resp, err := websocket.Dial(ctx, ts.essURL(), &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {tt.header}}})
			if err == nil || resp == nil {
				t.Fatalf("dial: %v, response %v; want %d", err, resp, tt.status)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.want) {
				t.Fatalf("%d %s, want %d with %q", resp.StatusCode, body, tt.status, tt.want)
			}
		})
		t.Run("authenticate with "+tt.name, func(t *testing.T) {
			if tt.name == "not bearer" {
				return
			}
			c := dialESS(t, ts.essURL(), "")
			r := c.ok(tt.status, map[string]any{"command": "authenticate", "token": tt.header})
			if text := r["error"].(map[string]any)["errorText"].(string); !strings.Contains(text, tt.want) {
				t.Fatalf("errorText %q, want %q in it", text, tt.want)
			}
		})
	}
}

// TestESSTenancy: org B's sessions see none of org A's events or state,
// whatever they subscribe to, and cannot take org A's sessions.
func TestESSTenancy(t *testing.T) {
	ts := startServer(t, testConfig(t.TempDir()))
	ts.publish(keyA, motion("MOTION_STARTED", camA))
	b := dialESS(t, ts.essURL(), keyB)
	b.startSession("", "")
	b.subscribe(map[string]any{"modifier": "include", "resourceTypes": []string{"*"}, "sourceIds": []string{"*", camA}, "eventTypes": []string{"*"}})
	if states := b.ok(200, map[string]any{"command": "getState"})["states"].([]any); len(states) != 0 {
		t.Fatalf("org B's state shows %v", states)
	}
	ts.publish(keyA, motion("MOTION_STOPPED", camA), alert("x", camA))
	own := ts.publish(keyB, motion("MOTION_STARTED", camB))[0]
	if got := ids(b.waitEvents(1)); got[0] != own {
		t.Fatalf("org B got %v first, want its own %s", got, own)
	}
	if src := b.pushed[0]["source"]; src != "cameras/"+camB {
		t.Fatalf("org B's event source %v", src)
	}

	// A custom type org A's session saw is named to org A only.
	a := dialESS(t, ts.essURL(), keyA)
	a.startSession("", "")
	a.subscribe(map[string]any{"modifier": "include", "eventTypes": []string{"*"}})
	ts.publish(keyA, map[string]any{"entity": "PROJECT_NIGHTFALL_BREACH", "deviceUuid": camA})
	custom := a.waitEvents(1)[0]["type"].(string)
	lookup := func(key, path string) (int, string) {
		req, _ := http.NewRequest("GET", ts.base+"/api/rest/v1/"+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		var out any
		status := ts.doRequest(req, &out)
		raw, _ := json.Marshal(out)
		return status, string(raw)
	}
	if status, body := lookup(keyA, "eventTypes/"+custom); status != 200 || !strings.Contains(body, "PROJECT_NIGHTFALL_BREACH") {
		t.Fatalf("org A's lookup of its type: %d %s", status, body)
	}
	if status, body := lookup(keyB, "eventTypes/"+custom); status != 404 {
		t.Fatalf("org B names org A's type: %d %s", status, body)
	}
	if _, body := lookup(keyB, "eventTypes"); strings.Contains(body, "NIGHTFALL") {
		t.Fatalf("org B's list shows org A's type: %s", body)
	}
}
