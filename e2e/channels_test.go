package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-gw/herald/internal/auth"
	"github.com/herald-gw/herald/internal/server"
)

const jwtSecret = "e2e-jwt-secret-0123456789abcdef-0123"

// channelsConfig is testConfig with a JWT secret for the channels dialect.
func channelsConfig(dataDir string) server.Config {
	cfg := testConfig(dataDir)
	cfg.Auth.JWTSecret = jwtSecret
	return cfg
}

// token signs a token for org with the test secret.
func token(t testing.TB, org, user string, ttl time.Duration, scopes ...string) string {
	t.Helper()
	if len(scopes) == 0 {
		scopes = []string{"subscribe"}
	}
	tok, err := auth.Issue([]byte(jwtSecret), org, user, scopes, ttl, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// channel events as producers post them.
func telemetry(device string, metrics map[string]any) map[string]any {
	return map[string]any{"entity": "TELEMETRY", "type": "UPDATE", "deviceUuid": device, "telemetry": metrics}
}

func severityAlert(uuid, device, severity string) map[string]any {
	return map[string]any{"entity": "POLICY_ALERT", "type": "CREATE", "entityUuid": uuid, "deviceUuid": device,
		"severity": severity, "title": "High Temperature Alert", "message": "Temperature exceeds safe threshold",
		"metadata": map[string]any{"threshold_value": 30.0, "actual_value": 32.5}}
}

func deviceStatus(device, old, status string) map[string]any {
	return map[string]any{"entity": "DEVICE_STATUS", "type": "UPDATE", "entityUuid": device, "deviceUuid": device,
		"oldStatus": old, "status": status, "reason": "Connection lost"}
}

// clientProcess runs a client program and hands its JSON output lines.
type clientProcess struct {
	t     *testing.T
	lines chan map[string]any
}

func startClient(t *testing.T, env []string, ready string, name string, args ...string) *clientProcess {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", name, err)
	}
	var errText strings.Builder
	readyCh := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		signalled := false
		for sc.Scan() {
			errText.WriteString(sc.Text() + "\n")
			if !signalled && ready != "" && strings.Contains(sc.Text(), ready) {
				close(readyCh)
				signalled = true
			}
		}
	}()
	p := &clientProcess{t: t, lines: make(chan map[string]any, 100)}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				p.lines <- m
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		cancel()
		if t.Failed() {
			t.Logf("%s stderr:\n%s", name, errText.String())
		}
	})
	if ready != "" {
		select {
		case <-readyCh:
		case <-time.After(20 * time.Second):
			t.Fatalf("%s never printed %s; stderr:\n%s", name, ready, errText.String())
		}
	}
	return p
}

// next returns the next message of a type other than skip's.
func (p *clientProcess) next(skip ...string) map[string]any {
	p.t.Helper()
	timeout := time.After(patience)
	for {
		select {
		case m, ok := <-p.lines:
			if !ok {
				p.t.Fatal("the client exited early")
			}
			if !contains(skip, m["type"]) {
				return m
			}
		case <-timeout:
			p.t.Fatalf("no message from the client within %v", patience)
		}
	}
}

func contains(list []string, v any) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

// TestChannelsPythonClient: a client written like seed 002's Python example
// authenticates, subscribes to telemetry of device 1, alerts of severity
// critical or warning, and devices; events posted through /api/events
// arrive in the documented shapes, and an alert of another severity and
// telemetry of another device do not.
func TestChannelsPythonClient(t *testing.T) {
	ts := startServer(t, channelsConfig(t.TempDir()))
	p := startClient(t, []string{"HERALD_WS=" + strings.Replace(ts.base, "http", "ws", 1),
		"VALTRONICS_TOKEN=" + token(t, orgA, "alice", time.Hour), "COUNT=4"},
		"READY", python, "-u", "python/valtronics_client.py")
	auth := p.next()
	if auth["type"] != "auth_response" || auth["success"] != true || auth["user"] != "alice" {
		t.Fatalf("first message %v, want a successful auth_response", auth)
	}
	for range 3 {
		if m := p.next(); m["type"] != "subscribed" {
			t.Fatalf("got %v, want subscribed", m)
		}
	}

	// In order: telemetry of another device and an info alert (neither may
	// arrive), then one of each wanted kind.
	ids := ts.publish(keyA,
		telemetry(camB, map[string]any{"temperature": map[string]any{"value": 99, "unit": "°C"}}),
		severityAlert("a-info", camA, "info"),
		telemetry(camA, map[string]any{"temperature": map[string]any{"value": 23.5, "unit": "°C"},
			"humidity": map[string]any{"value": 45.2, "unit": "%"}}),
		severityAlert("a-crit", camA, "critical"),
		deviceStatus(camA, "online", "offline"),
	)
	tel := p.next()
	checkFields(t, tel, map[string]any{"type": "telemetry_update", "channel": "telemetry", "device_id": 1.0, "event_id": ids[2]})
	temp := tel["telemetry"].(map[string]any)["temperature"].(map[string]any)
	if temp["value"] != 23.5 || temp["unit"] != "°C" || temp["timestamp"] == nil {
		t.Fatalf("telemetry.temperature = %v", temp)
	}
	alert := p.next()
	checkFields(t, alert, map[string]any{"type": "alert", "channel": "alerts", "alert_id": "a-crit", "device_id": 1.0,
		"severity": "critical", "title": "High Temperature Alert", "message": "Temperature exceeds safe threshold", "event_id": ids[3]})
	if md, _ := alert["metadata"].(map[string]any); md["actual_value"] != 32.5 {
		t.Fatalf("alert metadata = %v", alert["metadata"])
	}
	status := p.next()
	checkFields(t, status, map[string]any{"type": "device_status_update", "channel": "devices", "device_id": 1.0,
		"old_status": "online", "new_status": "offline", "reason": "Connection lost", "event_id": ids[4]})
	for _, m := range []map[string]any{tel, alert, status} {
		if ts, _ := m["timestamp"].(string); !strings.HasSuffix(ts, "Z") {
			t.Fatalf("timestamp %v is not ISO-8601 UTC", m["timestamp"])
		}
	}
}

// TestChannelsNodeClient: a client written like seed 002's JavaScript
// class, under Node with ws, spreads its filters at the top level of the
// subscribe message; they apply exactly as nested ones.
func TestChannelsNodeClient(t *testing.T) {
	ensureNodeModules(t)
	ts := startServer(t, channelsConfig(t.TempDir()))
	script, _ := filepath.Abs("node/valtronics_client.mjs")
	p := startClient(t, []string{"HERALD_WS=" + strings.Replace(ts.base, "http", "ws", 1),
		"VALTRONICS_TOKEN=" + token(t, orgA, "bob", time.Hour)}, "", "node", script)
	if m := p.next(); m["type"] != "auth_response" || m["success"] != true {
		t.Fatalf("first message %v, want a successful auth_response", m)
	}
	for range 2 {
		if m := p.next(); m["type"] != "subscribed" {
			t.Fatalf("got %v, want subscribed", m)
		}
	}
	ids := ts.publish(keyA,
		severityAlert("a-low", camA, "low"),
		telemetry(camB, map[string]any{"temperature": map[string]any{"value": 1, "unit": "°C"}}),
		severityAlert("a-warn", camB, "warning"),
		telemetry(camA, map[string]any{"temperature": map[string]any{"value": 21, "unit": "°C"}}),
	)
	checkFields(t, p.next(), map[string]any{"type": "alert", "alert_id": "a-warn", "severity": "warning", "device_id": camB, "event_id": ids[2]})
	checkFields(t, p.next(), map[string]any{"type": "telemetry_update", "device_id": 1.0, "event_id": ids[3]})
}

func checkFields(t *testing.T, m map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if m[k] != v {
			raw, _ := json.Marshal(m)
			t.Fatalf("%s = %v (%T), want %v in %s", k, m[k], m[k], v, raw)
		}
	}
}
