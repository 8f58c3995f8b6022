package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// postSession is POST /session with Octave's headers (an empty value
// leaves the header out).
func (ts *testServer) postSession(company, user, token string) (int, map[string]any) {
	ts.t.Helper()
	req, _ := http.NewRequest("POST", ts.base+"/session", nil)
	for k, v := range map[string]string{"X-Auth-Company": company, "X-Auth-User": user, "X-Auth-Token": token} {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	var out map[string]any
	return ts.doRequest(req, &out), out
}

// newStreamsSession returns a new session id of the org of the API key.
func (ts *testServer) newStreamsSession(company, key string) string {
	ts.t.Helper()
	status, out := ts.postSession(company, "", key)
	if status != 201 {
		ts.t.Fatalf("POST /session: %d %v", status, out)
	}
	return out["body"].(map[string]any)["id"].(string)
}

func (ts *testServer) streamsURL(session string) string {
	return strings.Replace(ts.base, "http", "ws", 1) + "/session/" + session + "/ws"
}

// streamIDs returns the org's streams by path (GET /api/streams).
func (ts *testServer) streamIDs(company, key string) map[string]string {
	ts.t.Helper()
	req, _ := http.NewRequest("GET", ts.base+"/api/streams", nil)
	req.Header.Set("X-Auth-Company", company)
	req.Header.Set("X-Auth-Token", key)
	var out struct {
		Body []struct{ ID, Path string }
	}
	if status := ts.doRequest(req, &out); status != 200 {
		ts.t.Fatalf("GET /api/streams: %d", status)
	}
	ids := map[string]string{}
	for _, s := range out.Body {
		ids[s.Path] = s.ID
	}
	return ids
}

// streamsClient is a coder/websocket client of a streams session.
type streamsClient struct {
	t      *testing.T
	c      *websocket.Conn
	pushed []map[string]any // every {"type":"message"} received, in order
}

func dialStreams(t *testing.T, url string) *streamsClient {
	t.Helper()
	c := dialOpen(t, url, nil)
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return &streamsClient{t: t, c: c}
}

func (s *streamsClient) sendRaw(text string) {
	s.t.Helper()
	writeText(s.t, s.c, text)
}

func (s *streamsClient) read() map[string]any {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	_, data, err := s.c.Read(ctx)
	if err != nil {
		s.t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		s.t.Fatalf("not JSON: %q", data)
	}
	if m["type"] == "message" {
		s.pushed = append(s.pushed, m)
	}
	return m
}

// request sends a request and returns its acknowledgement's head; pushes
// that come first are kept.
func (s *streamsClient) request(msg map[string]any) map[string]any {
	s.t.Helper()
	raw, _ := json.Marshal(msg)
	s.sendRaw(string(raw))
	return s.ack()
}

// ack returns the next acknowledgement's head.
func (s *streamsClient) ack() map[string]any {
	s.t.Helper()
	for {
		if head, ok := s.read()["head"].(map[string]any); ok {
			return head
		}
	}
}

func (s *streamsClient) subscribe(field, value string) {
	s.t.Helper()
	head := s.request(map[string]any{"msgId": "sub " + value, "object": "event", "type": "subscribe", field: value})
	if head["ok"] != true || head["msgId"] != "sub "+value {
		s.t.Fatalf("subscribe %s %s: %v", field, value, head)
	}
}

// waitPushed waits until n events were pushed and returns them.
func (s *streamsClient) waitPushed(n int) []map[string]any {
	s.t.Helper()
	for len(s.pushed) < n {
		s.read()
	}
	return s.pushed
}

// eventIDs are the pushes' value.elems.id (herald's event ids).
func eventIDs(pushed []map[string]any) []string {
	var ids []string
	for _, m := range pushed {
		ids = append(ids, m["value"].(map[string]any)["elems"].(map[string]any)["id"].(string))
	}
	return ids
}

// wscat is the real wscat at a pseudo terminal (e2e/python/wscat_pty.py):
// lines are typed at its prompt, and what it prints comes back as JSON.
type wscat struct {
	t     *testing.T
	stdin io.WriteCloser
	lines chan map[string]any
}

func startWscat(t *testing.T, args ...string) *wscat {
	t.Helper()
	if _, err := os.Stat("node/node_modules/.bin/wscat"); err != nil {
		t.Fatalf("wscat is missing: run scripts/test-deps.sh (npm ci in e2e/node): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", append([]string{"python/wscat_pty.py"}, args...)...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	w := &wscat{t: t, stdin: stdin, lines: make(chan map[string]any, 100)}
	connected := make(chan struct{})
	var errText strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			errText.WriteString(sc.Text() + "\n")
			if sc.Text() == "connected" {
				close(connected)
			}
		}
	}()
	go func() {
		defer close(w.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				w.lines <- m
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		cancel()
		if t.Failed() {
			t.Logf("wscat stderr:\n%s", errText.String())
		}
	})
	select {
	case <-connected:
	case <-time.After(30 * time.Second):
		t.Fatalf("wscat never connected:\n%s", errText.String())
	}
	return w
}

// typeLine types a line at the prompt.
func (w *wscat) typeLine(line string) {
	w.t.Helper()
	if _, err := io.WriteString(w.stdin, line+"\n"); err != nil {
		w.t.Fatal(err)
	}
}

// next returns the next message wscat printed.
func (w *wscat) next() map[string]any {
	w.t.Helper()
	select {
	case m, ok := <-w.lines:
		if !ok {
			w.t.Fatal("wscat exited")
		}
		return m
	case <-time.After(patience):
		w.t.Fatalf("wscat printed nothing within %v", patience)
	}
	return nil
}

// waitNoCatchUps waits until the node holds a connection and no session
// is replaying: a client connected with a cursor has been brought up to
// the head.
func (ts *testServer) waitNoCatchUps() {
	ts.t.Helper()
	waitFor(ts.t, patience, "a connection and no catch-up", func() bool {
		h := ts.health()
		return h["connections"] == float64(1) && h["catchUps"] == float64(0)
	})
}
