package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/herald-gw/herald/internal/server"
)

// chClient is a channels-dialect test client.
type chClient struct {
	t *testing.T
	c *websocket.Conn
}

func dialChannels(t *testing.T, ts *testServer, path string) *chClient {
	t.Helper()
	c := dialOpen(t, strings.Replace(ts.base, "http", "ws", 1)+path, nil)
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return &chClient{t: t, c: c}
}

func (c *chClient) send(msg any) {
	c.t.Helper()
	raw, ok := msg.(string)
	if !ok {
		b, _ := json.Marshal(msg)
		raw = string(b)
	}
	writeText(c.t, c.c, raw)
}

// read returns the next message, or nil and the error.
func (c *chClient) read(d time.Duration) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, data, err := c.c.Read(ctx)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		c.t.Fatalf("not JSON: %q", data)
	}
	return m, nil
}

// expect returns the next message, which must have the given type.
func (c *chClient) expect(typ string) map[string]any {
	c.t.Helper()
	m, err := c.read(patience)
	if err != nil {
		c.t.Fatalf("waiting for %s: %v", typ, err)
	}
	if m["type"] != typ {
		raw, _ := json.Marshal(m)
		c.t.Fatalf("got %s, want type %s", raw, typ)
	}
	return m
}

// login authenticates with tok and checks the answer.
func (c *chClient) login(tok string) {
	c.t.Helper()
	c.send(map[string]any{"type": "auth", "token": tok})
	if m := c.expect("auth_response"); m["success"] != true {
		c.t.Fatalf("auth refused: %v", m)
	}
}

// closedWith waits for the connection to end and returns its close code.
func (c *chClient) closedWith() websocket.StatusCode {
	c.t.Helper()
	for {
		_, err := c.read(patience)
		if err == nil {
			continue
		}
		if errors.Is(err, context.DeadlineExceeded) {
			c.t.Fatal("the connection was not closed")
		}
		return websocket.CloseStatus(err)
	}
}

// signed makes an HS256 token with the given claims and secret.
func signed(t *testing.T, secret string, method jwt.SigningMethod, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestChannelsAuth(t *testing.T) {
	// The default auth timeout (10s): each case's first message must reach
	// the server before it, however slow the machine.
	ts := startServer(t, channelsConfig(t.TempDir()))
	now := time.Now()
	claims := func(org string, exp time.Time) jwt.MapClaims {
		return jwt.MapClaims{"org": org, "sub": "alice", "scopes": []string{"subscribe"}, "exp": exp.Unix(), "iat": now.Unix()}
	}
	none := func() string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims(orgA, now.Add(time.Hour))).SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tests := []struct {
		name, first, code string
	}{
		{"expired", `{"type":"auth","token":"` + signed(t, jwtSecret, jwt.SigningMethodHS256, claims(orgA, now.Add(-time.Hour))) + `"}`, "token_expired"},
		{"wrongly signed", `{"type":"auth","token":"` + signed(t, "another-secret-entirely-0123456789", jwt.SigningMethodHS256, claims(orgA, now.Add(time.Hour))) + `"}`, "invalid_token"},
		{"alg none", `{"type":"auth","token":"` + none() + `"}`, "algorithm_not_allowed"},
		{"HS512 not allowed", `{"type":"auth","token":"` + signed(t, jwtSecret, jwt.SigningMethodHS512, claims(orgA, now.Add(time.Hour))) + `"}`, "algorithm_not_allowed"},
		{"unknown org", `{"type":"auth","token":"` + signed(t, jwtSecret, jwt.SigningMethodHS256, claims("00000000-0000-4000-8000-000000000000", now.Add(time.Hour))) + `"}`, "unknown_org"},
		{"missing token", `{"type":"auth"}`, "missing_token"},
		{"garbage token", `{"type":"auth","token":"not.a.jwt"}`, "invalid_token"},
		{"subscribe first", `{"type":"subscribe","channel":"alerts"}`, "auth_required"},
		{"invalid JSON first", `{"type":`, "auth_required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialChannels(t, ts, "/ws")
			c.send(tt.first)
			m := c.expect("auth_response")
			if m["success"] != false || m["error"] != tt.code || m["message"] == "" {
				t.Fatalf("got %v, want success:false error %s with a message", m, tt.code)
			}
			if code := c.closedWith(); code != 4001 {
				t.Fatalf("closed with %d, want 4001", code)
			}
		})
	}

	t.Run("nothing before auth_response, then a timeout", func(t *testing.T) {
		cfg := channelsConfig(t.TempDir())
		cfg.Limits.Channels.AuthTimeout = 300 * time.Millisecond
		ts := startServer(t, cfg)
		c := dialChannels(t, ts, "/ws/alerts")
		m, err := c.read(patience)
		if err == nil {
			t.Fatalf("received %v before authenticating", m)
		}
		if code := websocket.CloseStatus(err); code != 4001 {
			t.Fatalf("closed with %d (%v), want 4001 after the auth timeout", code, err)
		}
	})
}

// TestChannelsTokenRefreshAndExpiry: a connection whose token expires is
// told and closed; one that sent a fresh token in time stays.
func TestChannelsTokenRefreshAndExpiry(t *testing.T) {
	ts := startServer(t, channelsConfig(t.TempDir()))
	// A token that expires in 2 to 3s (exp is in whole seconds): fresh has
	// at least 2s from its login to its refresh.
	short := func() (string, time.Time) {
		exp := time.Unix(time.Now().Add(3*time.Second).Unix(), 0)
		return signed(t, jwtSecret, jwt.SigningMethodHS256, jwt.MapClaims{"org": orgA, "sub": "carol",
			"scopes": "subscribe", "exp": exp.Unix(), "iat": time.Now().Unix()}), exp
	}
	stale, fresh := dialChannels(t, ts, "/ws"), dialChannels(t, ts, "/ws")
	staleToken, _ := short()
	stale.login(staleToken)
	freshToken, freshExp := short()
	fresh.login(freshToken)
	fresh.send(map[string]any{"type": "auth", "token": token(t, orgA, "carol", time.Hour)})
	if m := fresh.expect("auth_response"); m["success"] != true {
		t.Fatalf("refresh refused: %v", m)
	}
	// A refresh for someone else is refused and changes nothing.
	fresh.send(map[string]any{"type": "auth", "token": token(t, orgA, "mallory", time.Hour)})
	if m := fresh.expect("auth_response"); m["success"] != false {
		t.Fatalf("a token of another user was taken as a refresh: %v", m)
	}

	m := stale.expect("token_expired")
	if code := stale.closedWith(); code != 4002 {
		t.Fatalf("expired connection closed with %d (%v), want 4002", code, m)
	}
	// What this waits for is time itself: fresh's first token has expired.
	time.Sleep(time.Until(freshExp) + 200*time.Millisecond)
	fresh.send(map[string]any{"type": "ping", "timestamp": "after"})
	if m := fresh.expect("pong"); m["timestamp"] != "after" {
		t.Fatalf("pong %v", m)
	}
}

// TestChannelsConflation: with frequency 1s, 200 telemetry events of one
// device make one message at once and then at most one a second, the
// last carrying the newest value.
func TestChannelsConflation(t *testing.T) {
	const period = time.Second
	ts := startServer(t, channelsConfig(t.TempDir()))
	c := dialChannels(t, ts, "/ws")
	c.login(token(t, orgA, "alice", time.Hour))
	c.send(map[string]any{"type": "subscribe", "channel": "telemetry", "device_id": 1, "filters": map[string]any{"frequency": "1s"}})
	c.expect("subscribed")
	batch := make([]map[string]any, 200)
	for i := range batch {
		batch[i] = telemetry(camA, map[string]any{"temperature": map[string]any{"value": i + 1, "unit": "°C"}})
	}
	start := time.Now()
	ids := ts.publish(keyA, batch...)
	var got []map[string]any
	for {
		m := c.expect("telemetry_update")
		got = append(got, m)
		value := m["telemetry"].(map[string]any)["temperature"].(map[string]any)["value"]
		if value == 200.0 {
			if m["event_id"] != ids[199] {
				t.Fatalf("newest value with event_id %v, want %s", m["event_id"], ids[199])
			}
			break
		}
		if len(got) == len(batch) {
			t.Fatalf("%d messages without the newest value", len(got))
		}
	}
	// Messages go out at least a period apart, so within the time taken
	// there is room for one plus one per period. On an idle machine that is
	// 2; on a slow one, where publishing or dispatching the batch takes
	// longer, the bound grows with it instead of failing.
	took := time.Since(start)
	if most := 1 + int(took/period); len(got) > most {
		t.Fatalf("%d messages in %v: want at most %d, one per %v", len(got), took, most, period)
	}
	// Nothing held back may follow. There is no event to wait for (a
	// sentinel would be merged with what is held back), so wait out two
	// periods: a message still held would go out at the end of the first.
	if m, err := c.read(2 * period); err == nil {
		t.Fatalf("message after the newest value: %v", m)
	}
}

// TestChannelsResume: subscribe with last_event_id receives every matching
// event after it, in order, then live ones, without duplicates.
func TestChannelsResume(t *testing.T) {
	ts := startServer(t, channelsConfig(t.TempDir()))
	var ids []string
	for i := range 30 {
		ids = append(ids, ts.publish(keyA, severityAlert(fmt.Sprintf("r-%d", i), camA, "critical"))...)
		ts.publish(keyB, severityAlert(fmt.Sprintf("b-%d", i), camB, "critical")) // another org, interleaved
	}
	c := dialChannels(t, ts, "/ws")
	c.login(token(t, orgA, "alice", time.Hour))
	c.send(map[string]any{"type": "subscribe", "channel": "alerts", "last_event_id": ids[9]})
	c.expect("subscribed")
	for _, want := range ids[10:] {
		if m := c.expect("alert"); m["event_id"] != want {
			t.Fatalf("event_id %v, want %s", m["event_id"], want)
		}
	}
	// Two live events: a duplicate of the first, or of anything replayed,
	// would come before the second.
	for i := range 2 {
		live := ts.publish(keyA, severityAlert(fmt.Sprint("live-", i), camA, "warning"))[0]
		if m := c.expect("alert"); m["event_id"] != live {
			t.Fatalf("live event %d: event_id %v, want %s (a duplicate or an extra)", i, m["event_id"], live)
		}
	}
}

// TestChannelsSystemStatus: the system channel streams herald's own status
// at the subscription's frequency; to an admin, the node's (a tenant's
// view is in TestChannelsSystemStatusPerOrg).
func TestChannelsSystemStatus(t *testing.T) {
	ts := startServer(t, channelsConfig(t.TempDir()))
	c := dialChannels(t, ts, "/ws")
	c.login(token(t, orgA, "alice", time.Hour, "subscribe", "admin"))
	c.send(map[string]any{"type": "subscribe", "channel": "system", "filters": map[string]any{"frequency": "200ms"}})
	c.expect("subscribed")
	start := time.Now()
	for range 3 {
		m := c.expect("system_status_update")
		metrics, _ := m["metrics"].(map[string]any)
		for _, k := range []string{"cpu_usage", "memory_usage", "disk_usage", "active_connections"} {
			if _, ok := metrics[k]; !ok {
				t.Fatalf("metrics %v lack %s", metrics, k)
			}
		}
		if metrics["active_connections"] != 1.0 {
			t.Fatalf("active_connections %v, want 1", metrics["active_connections"])
		}
	}
	if d := time.Since(start); d < 350*time.Millisecond {
		t.Fatalf("3 updates in %v: faster than every 200ms", d)
	}
}

// TestChannelsBadInput: every malformed or unknown message gets an error
// naming the problem, and the connection stays.
func TestChannelsBadInput(t *testing.T) {
	ts := startServer(t, channelsConfig(t.TempDir()))
	c := dialChannels(t, ts, "/ws")
	c.login(token(t, orgA, "alice", time.Hour))
	tooMany := `{"type":"batch","messages":[` + strings.Repeat(`{"type":"ping"},`, 50) + `{"type":"ping"}]}`
	tests := []struct{ name, msg, code string }{
		{"invalid JSON", `{"type":"subscribe",`, "invalid_json"},
		{"not an object", `[1,2]`, "invalid_message"},
		{"no type", `{"channel":"alerts"}`, "invalid_message"},
		{"unknown type", `{"type":"fly"}`, "unknown_type"},
		{"unknown channel", `{"type":"subscribe","channel":"weather"}`, "unknown_channel"},
		{"device_id of a wrong type", `{"type":"subscribe","channel":"alerts","device_id":true}`, "invalid_field"},
		{"severity of a wrong type", `{"type":"subscribe","channel":"alerts","filters":{"severity":5}}`, "invalid_field"},
		{"bad frequency", `{"type":"subscribe","channel":"telemetry","frequency":"often"}`, "invalid_field"},
		{"51 messages in a batch", tooMany, "batch_too_large"},
		{"over 1 KB", `{"type":"ping","timestamp":"` + strings.Repeat("x", 1100) + `"}`, "message_too_large"},
		{"unsubscribe without subscription", `{"type":"unsubscribe","channel":"devices"}`, "not_subscribed"},
	}
	for _, tt := range tests {
		c.send(tt.msg)
		m := c.expect("error")
		if m["error"] != tt.code || m["message"] == "" {
			t.Fatalf("%s: got %v, want error %s with a message", tt.name, m, tt.code)
		}
	}
	// A batch of 50 is processed in order.
	c.send(`{"type":"batch","messages":[{"type":"subscribe","channel":"alerts"},{"type":"ping","timestamp":1}]}`)
	c.expect("subscribed")
	if m := c.expect("pong"); m["timestamp"] != 1.0 {
		t.Fatalf("pong %v", m)
	}
}

// TestChannelsLimits: the per-connection message rate, connections per
// user, new connections per minute, and the node's total. Each limit gets
// a server of its own with only that limit set: a connection a subtest
// closed is uncounted by the server some time after the client sees the
// close, so on a shared server one subtest's leftovers would count
// against the next one's limit.
func TestChannelsLimits(t *testing.T) {
	serverWith := func(t *testing.T, set func(*server.ChannelsLimits)) *testServer {
		cfg := channelsConfig(t.TempDir())
		set(&cfg.Limits.Channels)
		return startServer(t, cfg)
	}

	t.Run("messages per second", func(t *testing.T) {
		ts := serverWith(t, func(l *server.ChannelsLimits) { l.MessagesPerSecond = 20 })
		c := dialChannels(t, ts, "/ws")
		c.login(token(t, orgA, "rate", time.Hour))
		// The bucket holds 20 and refills at 20/s: 100 pings sent at once
		// overflow it unless the server takes 4 s to read them.
		const pings = 100
		for range pings {
			c.send(`{"type":"ping"}`)
		}
		pongs, refused := 0, 0
		for pongs+refused < pings {
			m, err := c.read(patience)
			if err != nil {
				t.Fatalf("after %d pongs and %d errors: %v", pongs, refused, err)
			}
			switch {
			case m["type"] == "pong":
				pongs++
			case m["type"] == "error" && m["error"] == "rate_limited":
				refused++
			}
		}
		if pongs < 20 || refused == 0 {
			t.Fatalf("%d pongs, %d rate_limited: want the first 20 answered and some refused", pongs, refused)
		}
		// What this waits for is time itself: 200ms refill the bucket by 4.
		time.Sleep(200 * time.Millisecond)
		c.send(`{"type":"ping"}`)
		c.expect("pong")
	})

	t.Run("connections per user", func(t *testing.T) {
		ts := serverWith(t, func(l *server.ChannelsLimits) { l.ConnectionsPerUser = 2 })
		tok := token(t, orgA, "dave", time.Hour)
		a, b := dialChannels(t, ts, "/ws"), dialChannels(t, ts, "/ws")
		a.login(tok)
		b.login(tok)
		c := dialChannels(t, ts, "/ws")
		c.send(map[string]any{"type": "auth", "token": tok})
		if m := c.expect("auth_response"); m["success"] != false || m["error"] != "too_many_connections" {
			t.Fatalf("third connection of one user: %v", m)
		}
	})

	t.Run("total connections", func(t *testing.T) {
		ts := serverWith(t, func(l *server.ChannelsLimits) { l.MaxConnections = 3 })
		for range 3 {
			dialChannels(t, ts, "/ws")
		}
		// The client's dial returns on the 101, before the server has
		// counted the connection: wait until it holds all three. (The
		// server counts a channels connection against the limit before
		// it adds it to the connections gauge.)
		waitFor(t, patience, "the server to count 3 connections", func() bool {
			return ts.health()["connections"] == float64(3)
		})
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		c, resp, err := websocket.Dial(ctx, strings.Replace(ts.base, "http", "ws", 1)+"/ws", nil)
		if err == nil {
			c.CloseNow()
		}
		if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("connection over the total: %v, %v; want HTTP 503", err, resp)
		}
	})

	t.Run("connects per minute", func(t *testing.T) {
		ts := serverWith(t, func(l *server.ChannelsLimits) { l.ConnectsPerMinute = 4 })
		tok := token(t, orgA, "erin", time.Hour)
		for range 4 {
			c := dialChannels(t, ts, "/ws")
			c.login(tok)
			c.c.Close(websocket.StatusNormalClosure, "")
		}
		c := dialChannels(t, ts, "/ws")
		c.send(map[string]any{"type": "auth", "token": tok})
		if m := c.expect("auth_response"); m["success"] != false || m["error"] != "rate_limited" {
			t.Fatalf("fifth connection within a minute: %v", m)
		}
	})
}

// TestChannelsTenancy: a token of org A never receives org B's events, on
// any channel, whatever the filters name.
func TestChannelsTenancy(t *testing.T) {
	ts := startServer(t, channelsConfig(t.TempDir()))
	c := dialChannels(t, ts, "/ws")
	c.login(token(t, orgA, "alice", time.Hour))
	subs := []map[string]any{
		{"type": "subscribe", "channel": "telemetry", "device_id": []any{camB, 1}},
		{"type": "subscribe", "channel": "alerts", "filters": map[string]any{"device_id": camB}},
		{"type": "subscribe", "channel": "devices"},
		{"type": "subscribe", "channel": "system", "frequency": "1h"},
	}
	for _, s := range subs {
		c.send(s)
	}
	for range subs {
		if m := c.expect("subscribed"); m["channel"] == "system" {
			c.expect("system_status_update") // the first status comes at once
		}
	}
	ts.publish(keyB,
		telemetry(camB, map[string]any{"temperature": map[string]any{"value": 1, "unit": "°C"}}),
		severityAlert("b-alert", camB, "critical"),
		deviceStatus(camB, "online", "offline"),
		map[string]any{"entity": "SYSTEM_STATUS", "type": "UPDATE", "metrics": map[string]any{"cpu_usage": 1}},
	)
	// Org B's token with A's org claim is refused at auth (unknown_org is
	// tested above); A's own event, published after B's, is the first to arrive.
	sentinel := ts.publish(keyA, deviceStatus(camA, "offline", "online"))[0]
	if m := c.expect("device_status_update"); m["event_id"] != sentinel {
		t.Fatalf("org A received %v", m)
	}
	// Resuming from the start of the log shows only A's events too.
	r := dialChannels(t, ts, "/ws")
	r.login(token(t, orgA, "alice", time.Hour))
	r.send(map[string]any{"type": "subscribe", "channel": "devices", "last_event_id": 0})
	r.expect("subscribed")
	if m := r.expect("device_status_update"); m["event_id"] != sentinel {
		t.Fatalf("resume from 0 gave %v", m)
	}
}
