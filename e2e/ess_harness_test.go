package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	natsserver "github.com/nats-io/nats-server/v2/server"
)

// The vendor's event type GUIDs the tests subscribe with.
const (
	guidMotionStarted    = "6eb95dd6-7ccc-4bce-99f8-af0d0b582d77"
	guidMotionStopped    = "6f55a7a7-d21c-4629-ac18-af1975e395a2"
	guidRecordingStarted = "4577f552-765a-438c-bc7d-e5ff1f754bc3"
)

// essClient is a client of the ess dialect as the vendor's samples are:
// JSON commands with a counting commandId, a reply awaited by skipping
// event pushes, which it keeps.
type essClient struct {
	t      testing.TB
	c      *websocket.Conn
	nextID int64
	pushed []map[string]any // events received, in order, from every {"events":[…]}
	size   int              // bytes of the latest message
}

func (ts *testServer) essURL() string {
	return strings.Replace(ts.base, "http", "ws", 1) + "/api/ws/events/v1/"
}

// dialESS connects with "Authorization: Bearer <bearer>" (none if "").
func dialESS(t testing.TB, url, bearer string) *essClient {
	t.Helper()
	opts := &websocket.DialOptions{}
	if bearer != "" {
		opts.HTTPHeader = http.Header{"Authorization": {"Bearer " + bearer}}
	}
	c := dialOpen(t, url, opts)
	c.SetReadLimit(16 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return &essClient{t: t, c: c, nextID: 1}
}

func (e *essClient) sendRaw(text string) {
	e.t.Helper()
	writeText(e.t, e.c, text)
}

// read returns the next message.
func (e *essClient) read() (map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	typ, data, err := e.c.Read(ctx)
	if err != nil {
		return nil, err
	}
	if typ != websocket.MessageText {
		e.t.Fatalf("a binary message: %q", data)
	}
	e.size = len(data)
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		e.t.Fatalf("a message that is not JSON: %q", data)
	}
	if events, ok := m["events"]; ok {
		list, _ := events.([]any)
		if len(list) == 0 {
			e.t.Fatalf("a push without events: %q", data)
		}
		for _, ev := range list {
			e.pushed = append(e.pushed, ev.(map[string]any))
		}
	}
	return m, nil
}

// command sends cmd with the next commandId and returns the reply; pushes
// that come first are kept in pushed.
func (e *essClient) command(cmd map[string]any) map[string]any {
	e.t.Helper()
	id := e.nextID
	e.nextID++
	cmd["commandId"] = id
	raw, _ := json.Marshal(cmd)
	e.sendRaw(string(raw))
	for {
		m, err := e.read()
		if err != nil {
			e.t.Fatalf("waiting for the reply to %s: %v", raw, err)
		}
		if got, ok := m["commandId"]; ok {
			if got != float64(id) {
				e.t.Fatalf("reply %v to %s: wrong commandId", m, raw)
			}
			return m
		}
	}
}

// ok sends cmd and fails unless the reply has status want.
func (e *essClient) ok(want int, cmd map[string]any) map[string]any {
	e.t.Helper()
	reply := e.command(cmd)
	if reply["status"] != float64(want) {
		e.t.Fatalf("%v: status %v, want %d: %v", cmd["command"], reply["status"], want, reply)
	}
	return reply
}

func (e *essClient) startSession(sessionID, eventID string) map[string]any {
	e.t.Helper()
	return e.command(map[string]any{"command": "startSession", "sessionId": sessionID, "eventId": eventID})
}

func (e *essClient) subscribe(filters ...map[string]any) string {
	e.t.Helper()
	reply := e.ok(200, map[string]any{"command": "addSubscription", "filters": filters})
	id, _ := reply["subscriptionId"].(string)
	if id == "" {
		e.t.Fatalf("addSubscription without a subscriptionId: %v", reply)
	}
	return id
}

// waitEvents reads until n events have been pushed in all.
func (e *essClient) waitEvents(n int) []map[string]any {
	e.t.Helper()
	for len(e.pushed) < n {
		m, err := e.read()
		if err != nil {
			e.t.Fatalf("waiting for %d events (have %d): %v", n, len(e.pushed), err)
		}
		if _, ok := m["commandId"]; ok {
			e.t.Fatalf("an unexpected reply: %v", m)
		}
	}
	return e.pushed
}

// expectClosed waits for the server to close, and returns its close code
// and reason.
func (e *essClient) expectClosed() (websocket.StatusCode, string) {
	e.t.Helper()
	for {
		m, err := e.read()
		if err == nil {
			if _, ok := m["events"]; !ok {
				e.t.Fatalf("connection still open: got %v", m)
			}
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			e.t.Fatalf("connection ended without a close frame: %v", err)
		}
		return ce.Code, ce.Reason
	}
}

// ids returns the ids of events.
func ids(events []map[string]any) []string {
	out := make([]string, len(events))
	for i, ev := range events {
		out[i], _ = ev["id"].(string)
	}
	return out
}

func cameraFilter(types ...string) map[string]any {
	if len(types) == 0 {
		types = []string{"*"}
	}
	return map[string]any{"modifier": "include", "resourceTypes": []string{"cameras"}, "sourceIds": []string{"*"}, "eventTypes": types}
}

func motion(entity, device string) map[string]any {
	return map[string]any{"entity": entity, "deviceUuid": device}
}

// startNATS runs a NATS server with JetStream for herald nodes to share.
func startNATS(t *testing.T) string {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(patience) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns.ClientURL()
}

// waitNoConnections waits until ts holds no WebSocket connection: a
// closed session has then been saved for resume.
func (ts *testServer) waitNoConnections() {
	ts.t.Helper()
	waitFor(ts.t, patience, "no connections", func() bool { return ts.health()["connections"] == float64(0) })
}

func waitUntil(t *testing.T, when time.Time) {
	t.Helper()
	waitFor(t, time.Until(when)+patience, "time to pass", func() bool { return time.Now().After(when) })
}
