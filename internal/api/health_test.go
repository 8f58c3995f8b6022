package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/auth"
	"github.com/herald-gw/herald/internal/inmem"
	"github.com/herald-gw/herald/internal/session"
)

const testSecret = "0123456789abcdef0123456789abcdef"

// healthAPI is an API on the in-memory engine with two orgs: org-a's
// events end at id 3, org-b's at id 2, and the log at 3. Its node holds
// 5 connections and 4 subscriptions.
func healthAPI(t *testing.T) (*API, *bool) {
	t.Helper()
	ctx := context.Background()
	eng := inmem.New(inmem.Config{})
	for _, org := range []string{"org-a", "org-b"} {
		if err := eng.PutOrg(ctx, herald.Org{UUID: org, Name: org}); err != nil {
			t.Fatal(err)
		}
	}
	keys := map[string]herald.APIKey{
		"admin-key":   {Org: "org-a", Scopes: []string{herald.ScopeAdmin}},
		"b-key":       {Org: "org-b", Scopes: []string{herald.ScopeSubscribe, herald.ScopePublish}},
		"b-publisher": {Org: "org-b", Scopes: []string{herald.ScopePublish}},
	}
	for key, k := range keys {
		k.Hash = herald.HashAPIKey(key)
		if err := eng.PutAPIKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	for _, org := range []string{"org-a", "org-b", "org-a"} {
		data, _ := json.Marshal(map[string]any{"org": org, "channel": "alerts", "entity": "POLICY_ALERT", "deviceUuid": "d"})
		if _, err := eng.Append(ctx, []herald.Record{{Org: org, Channel: "alerts", Entity: "POLICY_ALERT", DeviceUUID: "d", Data: data}}); err != nil {
			t.Fatal(err)
		}
	}
	tokens, err := auth.NewVerifier(ctx, auth.JWTConfig{Secret: testSecret}, eng)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tokens.Close() })
	gauges := new(session.Gauges)
	gauges.Connections.Store(5)
	gauges.Subscriptions.Store(4)
	ready := true
	return &API{Log: eng, State: eng, Registry: eng, Keys: auth.Keys{Registry: eng}, Tokens: tokens,
		Health: Health{
			Ready:  func() bool { return ready },
			Engine: "embedded", Gauges: gauges, Head: func() uint64 { return 3 },
			StateLag: func(context.Context) (uint64, error) { return 0, nil },
		}}, &ready
}

// get serves GET path with the given header (name, value pairs).
func get(a *API, path string, header ...string) (int, map[string]any) {
	mux := http.NewServeMux()
	a.Register(mux)
	req := httptest.NewRequest("GET", path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	var out map[string]any
	json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

func token(t *testing.T, org string, scopes ...string) string {
	t.Helper()
	tok, err := auth.Issue([]byte(testSecret), org, "user-1", scopes, time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestHealthViews checks what each caller of /healthz sees: the status
// alone without a credential, the node's figures with the admin scope,
// and the caller's org's own figures (its last event, not the log's)
// with any other credential, by API key or bearer token.
func TestHealthViews(t *testing.T) {
	a, _ := healthAPI(t)
	node := map[string]any{"status": "ok", "scope": "node", "engine": "embedded", "connections": 5.0,
		"subscriptions": 4.0, "catchUps": 0.0, "lastEventId": "3", "stateLag": 0.0}
	orgB := map[string]any{"status": "ok", "scope": "org", "org": "org-b", "connections": 0.0,
		"subscriptions": 0.0, "lastEventId": "2"}
	tests := []struct {
		name   string
		header []string
		want   map[string]any
	}{
		{"no credential", nil, map[string]any{"status": "ok"}},
		{"admin key", []string{"x-auth-apikey", "admin-key"}, node},
		{"tenant key", []string{"x-auth-apikey", "b-key"}, orgB},
		{"publish-only key", []string{"x-auth-apikey", "b-publisher"}, orgB},
		{"admin token", []string{"Authorization", "Bearer " + token(t, "org-a", "subscribe", "admin")}, node},
		{"tenant token", []string{"Authorization", "Bearer " + token(t, "org-b", "subscribe")}, orgB},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, got := get(a, "/healthz", tt.header...)
			if code != http.StatusOK || !equalJSON(got, tt.want) {
				t.Errorf("got %d %v, want 200 %v", code, got, tt.want)
			}
		})
	}
}

// TestHealthRefusesBadCredentials checks that a credential that is not
// valid gets 401 in herald's error shape, and no figure.
func TestHealthRefusesBadCredentials(t *testing.T) {
	a, _ := healthAPI(t)
	for name, header := range map[string][]string{
		"unknown key":       {"x-auth-apikey", "nope"},
		"bad token":         {"Authorization", "Bearer not.a.jwt"},
		"token of no org":   {"Authorization", "Bearer " + token(t, "org-z", "admin")},
		"basic credentials": {"Authorization", "Basic YWRtaW46YWRtaW4="},
	} {
		t.Run(name, func(t *testing.T) {
			code, got := get(a, "/healthz", header...)
			e, _ := got["error"].(map[string]any)
			if code != http.StatusUnauthorized || len(got) != 1 || e["code"] != herald.EUNAUTHORIZED || e["message"] == "" {
				t.Errorf("got %d %v, want 401 and only {\"error\":{\"code\":\"unauthorized\",\"message\":…}}", code, got)
			}
		})
	}
}

// TestHealthStatus checks the status and HTTP code of /healthz and
// /readyz: degraded is still up (200), a node not serving is 503.
func TestHealthStatus(t *testing.T) {
	a, ready := healthAPI(t)
	lost := false
	a.Health.DataLoss = func() bool { return lost }
	check := func(when string, wantCode int, wantHealth, wantReady string) {
		t.Helper()
		if code, got := get(a, "/healthz"); code != wantCode || !equalJSON(got, map[string]any{"status": wantHealth}) {
			t.Errorf("/healthz %s: %d %v, want %d {status:%s}", when, code, got, wantCode, wantHealth)
		}
		if code, got := get(a, "/readyz"); code != wantCode || !equalJSON(got, map[string]any{"status": wantReady}) {
			t.Errorf("/readyz %s: %d %v, want %d {status:%s}", when, code, got, wantCode, wantReady)
		}
	}
	check("serving", http.StatusOK, "ok", "ready")
	lost = true
	check("after accepted data loss", http.StatusOK, "degraded", "ready")
	if _, got := get(a, "/healthz", "x-auth-apikey", "admin-key"); got["dataLoss"] == nil {
		t.Errorf("an admin's /healthz after data loss: %v, want a dataLoss note", got)
	}
	if _, got := get(a, "/healthz", "x-auth-apikey", "b-key"); got["dataLoss"] != nil {
		t.Errorf("a tenant's /healthz after data loss: %v, want no dataLoss note", got)
	}
	*ready = false
	check("not serving", http.StatusServiceUnavailable, "unavailable", "unavailable")
}

func equalJSON(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
