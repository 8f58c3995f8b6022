// Package e2e holds black-box tests: a real server (in-process or the
// built binary) on a random loopback port, driven by real clients.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/herald-gw/herald/internal/server"
	"github.com/herald-gw/herald/internal/server/servertest"
)

// Fixed tenants of the tests.
const (
	orgA    = "5f0c6b2e-4d2a-4c1e-9b7a-2a9d8e4f1c30"
	orgB    = "7a1d2c3b-0000-4c1e-9b7a-00000000000b"
	keyA    = "acme-key-1"
	keyB    = "globex-key-1"
	keyAPub = "acme-publish-only"
	keyASub = "acme-subscribe-only"
	// keyAdmin is the operator's: the admin scope alone, for the node-wide
	// figures of /healthz that the tests poll.
	keyAdmin = "acme-admin"
	camA     = "9d1e0f7a-1111-4c2b-8a3e-000000000001"
	camB     = "9d1e0f7a-2222-4c2b-8a3e-000000000002"
)

// patience bounds every wait for something that takes milliseconds on
// an idle machine: CI runs on a loaded 2-core machine with the race
// detector, where a scheduling pause of seconds is possible. Waits end as
// soon as their condition holds, so this only costs time when a test fails.
const patience = 15 * time.Second

// testConfig declares two orgs with keys and a camera each.
func testConfig(dataDir string) server.Config {
	return server.Config{
		Listen:  "127.0.0.1:0",
		DataDir: dataDir,
		Limits:  server.LimitsConfig{HeartBeat: 500 * time.Millisecond},
		Orgs: []server.OrgConfig{
			{UUID: orgA, Name: "acme",
				APIKeys: []server.APIKeyConfig{
					{Key: keyA, Scopes: []string{"subscribe", "publish"}},
					{Key: keyAPub, Scopes: []string{"publish"}},
					{Key: keyASub, Scopes: []string{"subscribe"}},
					{Key: keyAdmin, Scopes: []string{"admin"}},
				},
				Devices: []server.DeviceConfig{{UUID: camA, Name: "Lobby Camera", Kind: "camera", Number: 1}}},
			{UUID: orgB, Name: "globex",
				APIKeys: []server.APIKeyConfig{{Key: keyB, Scopes: []string{"subscribe", "publish"}}},
				Devices: []server.DeviceConfig{{UUID: camB, Name: "Dock Camera", Kind: "camera"}}},
		},
	}
}

// testServer is a running in-process server.
type testServer struct {
	t    testing.TB
	srv  *server.Server
	base string // http://127.0.0.1:port
}

func startServer(t testing.TB, cfg server.Config) *testServer {
	t.Helper()
	srv := servertest.Start(t, cfg)
	scheme := "http://"
	if cfg.TLS.CertFile != "" {
		scheme = "https://"
	}
	ts := &testServer{t: t, srv: srv, base: scheme + srv.Addr()}
	ts.waitHealthy()
	return ts
}

func (ts *testServer) wsURL() string {
	return strings.Replace(ts.base, "http", "ws", 1) + "/websocket?x-auth-scheme=api-token"
}

func (ts *testServer) waitHealthy() { waitHealthy(ts.t, ts.base) }

// waitHealthy waits until base/healthz answers 200.
func waitHealthy(t testing.TB, base string) {
	t.Helper()
	waitFor(t, 20*time.Second, "herald to be healthy", func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// health returns /healthz's JSON as an admin sees it: the node-wide
// figures (connections, subscriptions, catchUps, lastEventId).
func (ts *testServer) health() map[string]any { return ts.healthAs(keyAdmin) }

// healthAs returns /healthz's JSON as the holder of key sees it ("": no
// credential).
func (ts *testServer) healthAs(key string) map[string]any {
	ts.t.Helper()
	var out map[string]any
	status := ts.do("GET", "/healthz", key, nil, &out)
	if status != 200 {
		ts.t.Fatalf("healthz: %d %v", status, out)
	}
	return out
}

// waitSubscriptions waits until the server holds n subscriptions.
func (ts *testServer) waitSubscriptions(n int) {
	ts.t.Helper()
	waitFor(ts.t, patience, fmt.Sprintf("%d subscriptions", n), func() bool {
		return ts.health()["subscriptions"] == float64(n)
	})
}

// do sends a request with an API key and decodes a JSON answer into out.
func (ts *testServer) do(method, path, key string, body any, out any) int {
	ts.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, ts.base+path, rd)
	if key != "" {
		req.Header.Set("x-auth-apikey", key)
	}
	req.Header.Set("Content-Type", "application/json")
	return ts.doRequest(req, out)
}

// doRequest sends req and decodes a JSON answer into out.
func (ts *testServer) doRequest(req *http.Request, out any) int {
	ts.t.Helper()
	method, path := req.Method, req.URL.Path
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			ts.t.Fatalf("%s %s: answer %q is not JSON: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

// publish posts events with key and returns their ids.
func (ts *testServer) publish(key string, events ...map[string]any) []string {
	ts.t.Helper()
	var out struct {
		IDs []string `json:"ids"`
	}
	if status := ts.do("POST", "/api/events", key, events, &out); status != 200 {
		ts.t.Fatalf("publish: status %d", status)
	}
	if len(out.IDs) != len(events) {
		ts.t.Fatalf("publish: %d ids for %d events", len(out.IDs), len(events))
	}
	return out.IDs
}

func alert(uuid string, device string) map[string]any {
	return map[string]any{"entity": "POLICY_ALERT", "type": "CREATE", "entityUuid": uuid, "deviceUuid": device,
		"durationSec": 5.2, "policyAlertTriggers": []string{"MOTION_HUMAN"}, "textDescription": "Person detected near entrance"}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rawConn is a WebSocket client that sends and receives raw STOMP text,
// one frame per message, like the vendor's naive clients.
type rawConn struct {
	t *testing.T
	c *websocket.Conn
}

func dialRaw(t *testing.T, url, key string) *rawConn {
	t.Helper()
	c := dialWS(t, url, key)
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return &rawConn{t: t, c: c}
}

// dialWS opens a WebSocket with an API key, offering v12.stomp.
func dialWS(t *testing.T, url, key string) *websocket.Conn {
	t.Helper()
	return dialOpen(t, url, &websocket.DialOptions{
		HTTPHeader:   http.Header{"x-auth-apikey": {key}},
		Subprotocols: []string{"v12.stomp"},
	})
}

// dialOpen opens a WebSocket the test expects to be accepted, failing it
// with the refusal's status otherwise.
func dialOpen(t testing.TB, url string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", url, err, status)
	}
	return c
}

// writeText sends one text message, failing the test if it cannot.
func writeText(t testing.TB, c *websocket.Conn, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(text)); err != nil {
		t.Fatalf("send: %v", err)
	}
}

func (r *rawConn) send(frame string) {
	r.t.Helper()
	writeText(r.t, r.c, frame)
}

// next returns the next non-heart-beat message, or "" and the error.
func (r *rawConn) next(d time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		_, data, err := r.c.Read(ctx)
		if err != nil {
			return "", err
		}
		if strings.Trim(string(data), "\r\n") != "" {
			return string(data), nil
		}
	}
}

func (r *rawConn) expect(prefix string) string {
	r.t.Helper()
	msg, err := r.next(patience)
	if err != nil {
		r.t.Fatalf("waiting for %s: %v", prefix, err)
	}
	if !strings.HasPrefix(msg, prefix) {
		r.t.Fatalf("got %q, want a %s frame", msg, prefix)
	}
	return msg
}

// expectClosed waits for the server to end the connection and returns
// the read error that ended it. A message first, or no end within
// patience, fails the test.
func (r *rawConn) expectClosed() error {
	r.t.Helper()
	msg, err := r.next(patience)
	switch {
	case err == nil:
		r.t.Fatalf("connection still open: got %q", msg)
	case errors.Is(err, context.DeadlineExceeded):
		r.t.Fatalf("connection not closed within %v", patience)
	}
	return err
}

// expectNothingMore checks that c, subscribed to org A's topic without
// filters, has nothing more coming: it publishes a sentinel event and
// the next MESSAGE must be it. A duplicate or an extra message queued
// before the sentinel fails the test; waiting a while for nothing to
// arrive would pass whenever the machine is slow.
func (ts *testServer) expectNothingMore(c *rawConn) {
	ts.t.Helper()
	id := ts.publish(keyA, alert("sentinel", camA))[0]
	msg := c.expect("MESSAGE\n")
	if got := frameHeader(msg, "message-id"); got != id {
		ts.t.Fatalf("message %s came before the sentinel %s: a duplicate or an extra: %q", got, id, msg)
	}
}

// connect performs CONNECT → CONNECTED.
func (r *rawConn) connect() {
	r.t.Helper()
	r.send("CONNECT\naccept-version:1.2\nheart-beat:0,0\n\n\x00")
	r.expect("CONNECTED\n")
}

// frameHeader returns a header of a raw frame.
func frameHeader(frame, name string) string {
	head, _, _ := strings.Cut(frame, "\n\n")
	for _, line := range strings.Split(head, "\n")[1:] {
		if k, v, ok := strings.Cut(line, ":"); ok && k == name {
			return v
		}
	}
	return ""
}

// frameBody returns the body of a raw frame without its NUL.
func frameBody(frame string) string {
	_, body, _ := strings.Cut(frame, "\n\n")
	return strings.TrimSuffix(body, "\x00")
}
