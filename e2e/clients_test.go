package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// python is the Debian interpreter, which has python3-websocket and
// python3-requests installed by .ci/run.
const python = "/usr/bin/python3"

// TestRhombusPythonClient runs a client written like the vendor's Python
// sample (seed 000): getOrgV2, CONNECT, SUBSCRIBE to the org topic; three
// events posted through /api/events arrive in order with the right bodies.
func TestRhombusPythonClient(t *testing.T) {
	runRhombusPython(t, startServer(t, testConfig(t.TempDir())))
}

// runRhombusPython is TestRhombusPythonClient against ts, with env added
// to the client's environment.
func runRhombusPython(t *testing.T, ts *testServer, env ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-u", "python/rhombus_monitor.py")
	cmd.Env = append(append(os.Environ(), "RHOMBUS_API_KEY="+keyA, "HERALD_API="+ts.base,
		"HERALD_WS="+strings.Replace(ts.base, "http", "ws", 1)), env...)
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", python, err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("python stderr:\n%s", stderr.String())
		}
	}()
	lines := make(chan map[string]any)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				lines <- m
			}
		}
	}()
	next := func() map[string]any {
		t.Helper()
		select {
		case m, ok := <-lines:
			if !ok {
				t.Fatalf("python client exited early")
			}
			return m
		case <-time.After(15 * time.Second):
			t.Fatalf("no output from the python client")
		}
		return nil
	}
	if got := next()["org"]; got != orgA {
		t.Fatalf("getOrgV2 gave org %v, want %s", got, orgA)
	}
	connected := next()["connected"].(map[string]any)
	if connected["version"] != "1.2" {
		t.Fatalf("CONNECTED headers %v", connected)
	}
	ts.waitSubscriptions(1)

	events := []map[string]any{alert("alert-1", camA), alert("alert-2", camA), alert("alert-3", camA)}
	events[1]["type"] = "UPDATE"
	events[2]["entity"] = "DEVICE_CONFIG"
	var ids []string
	for _, e := range events { // one request each, like three producers
		ids = append(ids, ts.publish(keyA, e)...)
	}
	for i, want := range events {
		m := next()
		got := m["event"].(map[string]any)
		headers := m["headers"].(map[string]any)
		if got["id"] != ids[i] || headers["message-id"] != ids[i] || headers["subscription"] != "sub-0" ||
			headers["destination"] != "/topic/change/"+orgA {
			t.Fatalf("event %d: %v, headers %v (want id %s)", i, got, headers, ids[i])
		}
		for _, k := range []string{"entity", "type", "entityUuid", "deviceUuid", "textDescription"} {
			if got[k] != want[k] {
				t.Errorf("event %d: %s = %v, want %v", i, k, got[k], want[k])
			}
		}
		if got["durationSec"] != 5.2 || fmt.Sprint(got["policyAlertTriggers"]) != "[MOTION_HUMAN]" {
			t.Errorf("event %d: alert fields lost: %v", i, got)
		}
		if _, ok := got["timestampMs"].(float64); !ok {
			t.Errorf("event %d: no timestampMs: %v", i, got)
		}
	}
}

// TestStompJSInterop runs @stomp/stompjs over ws under Node: ack modes,
// receipts, heart-beats, unsubscribe (e2e/node/stompjs_interop.mjs).
func TestStompJSInterop(t *testing.T) {
	ensureNodeModules(t)
	runStompJS(t, startServer(t, testConfig(t.TempDir())))
}

// runStompJS is TestStompJSInterop against ts, with env added to Node's
// environment.
func runStompJS(t *testing.T, ts *testServer, env ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "stompjs_interop.mjs")
	cmd.Dir = "node"
	cmd.Env = append(append(os.Environ(), "HERALD_HTTP="+ts.base, "HERALD_KEY="+keyA, "HERALD_ORG="+orgA), env...)
	out, err := cmd.CombinedOutput()
	t.Logf("stompjs:\n%s", out)
	if err != nil {
		t.Fatalf("stompjs interop failed: %v", err)
	}
	if !strings.Contains(string(out), `{"step":"done"}`) {
		t.Fatal("stompjs interop did not finish")
	}
}

// ensureNodeModules installs the Node clients from the lock file if
// needed (.ci/run does the same up front).
func ensureNodeModules(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join("node", "node_modules", "@stomp", "stompjs")); err == nil {
		return
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = "node"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in e2e/node: %v\n%s", err, out)
	}
}
