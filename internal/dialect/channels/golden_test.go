package channels

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/herald-gw/herald"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the encoders' output")

// event decodes a stored record (canonical JSON, keys sorted, no "id") the
// way the node does.
func event(t testing.TB, id uint64, stored string) *herald.Event {
	t.Helper()
	e, err := herald.DecodeEvent(id, []byte(stored))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Stored events shaped as producers post them (docs/ingest.md) and as the
// Valtronics doc shows its pushes.
const (
	storedAlert = `{"channel":"alerts","deviceUuid":"9d1e0f7a-1111-4c2b-8a3e-000000000001","entity":"ALERT","entityUuid":"123",` +
		`"message":"Temperature exceeds safe threshold","metadata":{"actual_value":32.5,"threshold_value":30.0},"org":"acme",` +
		`"severity":"critical","timestampMs":1704110400000,"title":"High Temperature Alert","type":"CREATE"}`
	storedPolicyAlert = `{"channel":"alerts","deviceUuid":"cam-7","durationSec":5.2,"entity":"POLICY_ALERT","entityUuid":"a1b2c3d4",` +
		`"org":"acme","policyAlertTriggers":["MOTION_HUMAN","LOITERING"],"textDescription":"Person detected near \"entrance\"",` +
		`"timestampMs":1704110400123,"type":"CREATE"}`
	storedTelemetry = `{"channel":"telemetry","deviceUuid":"9d1e0f7a-1111-4c2b-8a3e-000000000001","entity":"TELEMETRY","org":"acme",` +
		`"telemetry":{"humidity":{"unit":"%","value":45.2},"temperature":{"timestamp":"2024-01-01T11:59:59Z","unit":"°C","value":23.5}},` +
		`"timestampMs":1704110400000,"type":"CREATE"}`
	storedBareTelemetry = `{"channel":"telemetry","deviceUuid":"sensor-3","entity":"TELEMETRY","org":"acme",` +
		`"telemetry":{"co2":412,"door":{"timestamp":null,"value":"open"}},"timestampMs":1704110400000,"type":"CREATE"}`
	storedStatus = `{"channel":"devices","deviceUuid":"9d1e0f7a-1111-4c2b-8a3e-000000000001","entity":"DEVICE_STATUS",` +
		`"entityUuid":"9d1e0f7a-1111-4c2b-8a3e-000000000001","metadata":{"last_seen":"2024-01-01T11:45:00Z"},"oldStatus":"online",` +
		`"org":"acme","reason":"Connection lost","status":"offline","timestampMs":1704110400000,"type":"UPDATE"}`
	storedSystem = `{"channel":"system","entity":"SYSTEM_STATUS","metrics":{"cpu_usage":45.2,"queue_depth":3},"org":"acme",` +
		`"timestampMs":1704110400000,"type":"UPDATE"}`
	storedOther = `{"channel":"events","deviceUuid":"cam-7","entity":"DEVICE_CONFIG","entityUuid":"cfg-1","org":"acme",` +
		`"settings":{"fps":15},"timestampMs":1704110400000,"type":"UPDATE"}`
)

// TestGolden pins the exact text herald sends for every server message
// and push shape. Review changes as diffs; regenerate with
// go test -run TestGolden -update.
func TestGolden(t *testing.T) {
	at := time.Date(2024, 1, 1, 13, 0, 0, 0, time.FixedZone("CET", 3600)) // rendered in UTC
	server := time.Date(2024, 1, 1, 12, 0, 0, 123456789, time.UTC)
	devices := Subscription{Channel: "devices", DeviceIDs: []string{"1", "2", "3"}, StatusTypes: []string{"online", "offline", "warning"}}
	telemetry := event(t, 44, storedTelemetry)
	tests := []struct {
		name string
		text []byte
	}{
		{"auth-ok", AppendAuthOK(nil, "alice", "acme", at)},
		{"auth-ok-no-expiry", AppendAuthOK(nil, "alice", "acme", time.Time{})},
		{"auth-failed", AppendAuthFailed(nil, "invalid_token", "token is expired")},
		{"subscribed", AppendSubscribed(nil, devices)},
		{"subscribed-plain", AppendSubscribed(nil, Subscription{Channel: "alerts"})},
		{"subscribed-telemetry", AppendSubscribed(nil, Subscription{Channel: "telemetry", DeviceIDs: []string{"1"},
			Metrics: []string{"temperature", "humidity"}, Frequency: 30 * time.Second})},
		{"subscribed-alerts", AppendSubscribed(nil, Subscription{Channel: "alerts", DeviceIDs: []string{"cam-7"},
			Severity: []string{"critical", "warning"}, AlertTypes: []string{"MOTION_HUMAN"}, Frequency: 1500 * time.Millisecond})},
		{"unsubscribed", AppendUnsubscribed(nil, "alerts")},
		{"pong", AppendPong(nil, json.RawMessage(`"2024-01-01T12:00:00Z"`), server)},
		{"pong-no-timestamp", AppendPong(nil, nil, server)},
		{"error", AppendError(nil, CodeUnknownType, `unknown message type "hello\n": expected auth, subscribe, unsubscribe, ping or batch`)},
		{"token-expired", AppendTokenExpired(nil, at)},

		{"push-alert", AppendPush(nil, event(t, 42, storedAlert), 1)},
		{"push-policy-alert", AppendPush(nil, event(t, 43, storedPolicyAlert), 0)},
		{"push-telemetry", AppendPush(nil, telemetry, 1)},
		{"push-telemetry-bare", AppendPush(nil, event(t, 45, storedBareTelemetry), 0)},
		{"push-device-status", AppendPush(nil, event(t, 46, storedStatus), 1)},
		{"push-system", AppendPush(nil, event(t, 47, storedSystem), 0)},
		{"push-other", AppendPush(nil, event(t, 48, storedOther), 0)},
		{"telemetry-update", AppendTelemetryUpdate(nil, 44, AppendDeviceID(nil, telemetry.DeviceUUID, 1),
			Telemetry(telemetry)[1:], telemetry.TimestampMs)},
		{"system-status", AppendSystemStatus(nil, SystemStatus{NodeWide: true, CPUUsage: 45.2, MemoryUsage: 67.81234, DiskUsage: 23.1,
			ActiveConnections: 15, At: server}, nil)},
		{"system-status-filtered", AppendSystemStatus(nil, SystemStatus{NodeWide: true, CPUUsage: 45.2, MemoryUsage: 67.8,
			ActiveConnections: 15, At: server}, []string{"CPU_usage", "active_connections", "load"})},
		// A tenant's view: its org's connections, no usage even if set.
		{"system-status-org", AppendSystemStatus(nil, SystemStatus{CPUUsage: 45.2, MemoryUsage: 67.8, DiskUsage: 23.1,
			ActiveConnections: 2, At: server}, nil)},
		{"system-status-org-filtered", AppendSystemStatus(nil, SystemStatus{CPUUsage: 45.2,
			ActiveConnections: 2, At: server}, []string{"cpu_usage"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkJSON(t, tt.text)
			got := append(tt.text, '\n')
			path := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s differs from the encoder's output:\n got  %s want %s", path, got, want)
			}
		})
	}
}

// checkJSON fails unless b is one valid JSON object whose first key is
// "type" and in which no object repeats a key.
func checkJSON(t testing.TB, b []byte) {
	t.Helper()
	if !json.Valid(b) {
		t.Fatalf("not valid JSON: %s", b)
	}
	if !bytes.HasPrefix(b, []byte(`{"type":`)) {
		t.Fatalf("does not start with type: %s", b)
	}
	if err := noDuplicateKeys(json.NewDecoder(bytes.NewReader(b))); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
}

// noDuplicateKeys walks one value from dec.
func noDuplicateKeys(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return err
			}
			key := k.(string)
			if seen[key] {
				return errors.New("repeated key " + key)
			}
			seen[key] = true
			if err := noDuplicateKeys(dec); err != nil {
				return err
			}
		}
		_, err = dec.Token()
	case json.Delim('['):
		for dec.More() {
			if err := noDuplicateKeys(dec); err != nil {
				return err
			}
		}
		_, err = dec.Token()
	}
	if err == io.EOF {
		err = nil
	}
	return err
}
