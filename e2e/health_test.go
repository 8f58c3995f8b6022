package e2e

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// stompSubscriber connects to org's topic with key and holds the given
// subscriptions, each confirmed by a receipt.
func stompSubscriber(t *testing.T, ts *testServer, key, org string, ids ...string) *rawConn {
	t.Helper()
	c := dialRaw(t, ts.wsURL(), key)
	c.connect()
	for _, id := range ids {
		c.send("SUBSCRIBE\nid:" + id + "\ndestination:/topic/change/" + org + "\nreceipt:" + id + "\n\n\x00")
		c.expect("RECEIPT\nreceipt-id:" + id + "\n")
	}
	return c
}

// TestHealthShowsEachCallerItsOwn is item 7 of issue 9: /healthz showed
// node-wide counters, and the log's head, to anyone. Now a caller without
// a credential sees the status alone, a tenant its org's connections,
// subscriptions and last event, and only an admin the node's.
func TestHealthShowsEachCallerItsOwn(t *testing.T) {
	ts := startServer(t, channelsConfig(t.TempDir()))
	stompSubscriber(t, ts, keyA, orgA, "a1")
	stompSubscriber(t, ts, keyA, orgA, "a2")
	stompSubscriber(t, ts, keyB, orgB, "b1", "b2")
	ts.publish(keyA, alert("a-1", camA), alert("a-2", camA))
	lastB := ts.publish(keyB, alert("b-1", camB))[0]
	head := ts.publish(keyA, alert("a-3", camA))[0]
	waitFor(t, patience, "the node to dispatch "+head, func() bool { return ts.health()["lastEventId"] == head })

	if got := ts.healthAs(""); len(got) != 1 || got["status"] != "ok" {
		t.Errorf("/healthz without a credential: %v, want only {\"status\":\"ok\"}", got)
	}
	orgView := map[string]any{"status": "ok", "scope": "org", "org": orgB,
		"connections": 1.0, "subscriptions": 2.0, "lastEventId": lastB}
	checkHealth := func(who string, got map[string]any, want map[string]any) {
		t.Helper()
		if !equalJSON(got, want) {
			t.Errorf("/healthz for %s: %v, want %v", who, got, want)
		}
	}
	checkHealth("org B's key", ts.healthAs(keyB), orgView)
	checkHealth("org B's token", ts.healthBearer(token(t, orgB, "bob", time.Hour)), orgView)

	// The state view copies the log behind it: compare the two admin views
	// once it has caught up, so that both see the same lag.
	waitFor(t, patience, "the state view to catch up", func() bool { return ts.health()["stateLag"] == 0.0 })
	admin := ts.health()
	for k, want := range map[string]any{"status": "ok", "scope": "node", "engine": "embedded",
		"connections": 3.0, "subscriptions": 4.0, "lastEventId": head, "stateLag": nil} {
		if got, ok := admin[k]; !ok || (want != nil && got != want) {
			t.Errorf("/healthz for an admin: %s is %v, want %v (all: %v)", k, got, want, admin)
		}
	}
	checkHealth("an admin token", ts.healthBearer(token(t, orgA, "ops", time.Hour, "subscribe", "admin")), admin)

	for name, header := range map[string][2]string{
		"an unknown key": {"x-auth-apikey", "not-a-key"},
		"a forged token": {"Authorization", "Bearer " + signed(t, "another-secret-of-32-bytes-xxxxx", jwt.SigningMethodHS256,
			jwt.MapClaims{"org": orgB, "sub": "bob", "scopes": []string{"admin"}, "exp": time.Now().Add(time.Hour).Unix()})},
	} {
		req, _ := http.NewRequest("GET", ts.base+"/healthz", nil)
		req.Header.Set(header[0], header[1])
		var out map[string]any
		code := ts.doRequest(req, &out)
		e, _ := out["error"].(map[string]any)
		if code != http.StatusUnauthorized || len(out) != 1 || e["code"] != "unauthorized" {
			t.Errorf("/healthz with %s: %d %v, want 401 and herald's error alone", name, code, out)
		}
	}
}

// TestChannelsSystemStatusPerOrg: the system channel told any user of
// any org the node's connections and usages. A tenant now gets its org's
// connections on this node and no usage; an admin the node's figures.
func TestChannelsSystemStatusPerOrg(t *testing.T) {
	ts := startServer(t, channelsConfig(t.TempDir()))
	stompSubscriber(t, ts, keyA, orgA, "a1")
	stompSubscriber(t, ts, keyA, orgA, "a2")
	stompSubscriber(t, ts, keyB, orgB, "b1")

	tenant := dialChannels(t, ts, "/ws")
	tenant.login(token(t, orgB, "bob", time.Hour))
	tenant.send(map[string]any{"type": "subscribe", "channel": "system", "frequency": "1h"})
	tenant.expect("subscribed")
	status := tenant.expect("system_status_update")
	if want := map[string]any{"active_connections": 2.0}; !equalJSON(status["metrics"].(map[string]any), want) {
		t.Errorf("org B's system status: %v, want metrics %v (its STOMP connection and this one)", status, want)
	}

	admin := dialChannels(t, ts, "/ws")
	admin.login(token(t, orgA, "ops", time.Hour, "subscribe", "admin"))
	admin.send(map[string]any{"type": "subscribe", "channel": "system", "frequency": "1h"})
	admin.expect("subscribed")
	metrics := admin.expect("system_status_update")["metrics"].(map[string]any)
	for _, k := range []string{"cpu_usage", "memory_usage", "disk_usage"} {
		if _, ok := metrics[k]; !ok {
			t.Errorf("an admin's system status %v lacks %s", metrics, k)
		}
	}
	if metrics["active_connections"] != 5.0 {
		t.Errorf("an admin's active_connections: %v, want the node's 5", metrics["active_connections"])
	}
}

// healthBearer returns /healthz's JSON as the holder of a JWT sees it.
func (ts *testServer) healthBearer(tok string) map[string]any {
	ts.t.Helper()
	req, _ := http.NewRequest("GET", ts.base+"/healthz", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	var out map[string]any
	if code := ts.doRequest(req, &out); code != http.StatusOK {
		ts.t.Fatalf("healthz with a bearer token: %d %v", code, out)
	}
	return out
}

func equalJSON(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
