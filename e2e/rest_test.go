package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestRhombusREST checks the vendor-compatible endpoints' shapes.
func TestRhombusREST(t *testing.T) {
	ts := startServer(t, testConfig(t.TempDir()))
	var org map[string]any
	if status := ts.do("POST", "/api/org/getOrgV2", keyA, map[string]any{}, &org); status != 200 {
		t.Fatalf("getOrgV2: %d", status)
	}
	if org["error"] != false || org["org"].(map[string]any)["name"] != "acme" {
		t.Fatalf("getOrgV2: %v", org)
	}

	cameraStatus := func() any {
		var out struct {
			CameraStates []map[string]any `json:"cameraStates"`
		}
		ts.do("POST", "/api/camera/getMinimalCameraStateList", keyA, map[string]any{}, &out)
		if len(out.CameraStates) != 1 || out.CameraStates[0]["name"] != "Lobby Camera" {
			t.Fatalf("camera list: %v", out.CameraStates)
		}
		return out.CameraStates[0]["connectionStatus"]
	}
	if got := cameraStatus(); got != "UNKNOWN" {
		t.Fatalf("status without events: %v", got)
	}
	ts.publish(keyA, map[string]any{"entity": "DEVICE_STATUS", "deviceUuid": camA, "entityUuid": camA, "status": "online"})
	if got := cameraStatus(); got != "GREEN" {
		t.Fatalf("status after online: %v", got)
	}
	ts.publish(keyA, map[string]any{"entity": "DEVICE_STATUS", "deviceUuid": camA, "entityUuid": camA, "status": "offline"})
	if got := cameraStatus(); got != "RED" {
		t.Fatalf("status after offline: %v", got)
	}

	first := alert("alert-9", camA)
	update := alert("alert-9", camA)
	update["type"] = "UPDATE"
	update["durationSec"] = 9.5
	ts.publish(keyA, first)
	ts.publish(keyA, update)
	for _, call := range []struct{ path, field, key string }{
		{"/api/event/getPolicyAlertDetails", "policyAlertUuid", "policyAlert"},
		{"/api/alert/getAlert", "alertUuid", "alert"},
	} {
		var out map[string]any
		if status := ts.do("POST", call.path, keyA, map[string]any{call.field: "alert-9"}, &out); status != 200 {
			t.Fatalf("%s: %d %v", call.path, status, out)
		}
		pa := out[call.key].(map[string]any)
		if pa["uuid"] != "alert-9" || pa["deviceUuid"] != camA || pa["durationSec"] != 9.5 || pa["orgUuid"] != orgA ||
			fmt.Sprint(pa["policyAlertTriggers"]) != "[MOTION_HUMAN]" {
			t.Fatalf("%s: latest alert %v", call.path, pa)
		}
		var bad map[string]any
		if status := ts.do("POST", call.path, keyA, map[string]any{}, &bad); status != 400 || bad["error"] != true {
			t.Fatalf("%s without uuid: %d %v", call.path, status, bad)
		}
	}
	var out map[string]any
	if status := ts.do("POST", "/api/org/getOrgV2", "wrong-key", map[string]any{}, &out); status != 401 || out["error"] != true {
		t.Fatalf("bad key: %d %v", status, out)
	}
	if status := ts.do("POST", "/api/org/getOrgV2", keyA, "not json", &out); status != 400 {
		t.Fatalf("bad body: %d %v", status, out)
	}
}

// TestIngestErrors: bad ingest requests get 4xx JSON naming the problem,
// and nothing of a rejected batch is stored.
func TestIngestErrors(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Limits.MaxBodyBytes = 64 << 10
	ts := startServer(t, cfg)
	big := `{"entity":"A","textDescription":"` + strings.Repeat("x", 70<<10) + `"}`
	tests := []struct {
		name   string
		key    string
		body   string
		status int
		code   string
		index  float64 // -1: no index
		field  string
	}{
		{"no key", "", `{"entity":"A"}`, 401, "unauthorized", -1, ""},
		{"bad key", "nope-nope", `{"entity":"A"}`, 401, "unauthorized", -1, ""},
		{"no publish scope", keyASub, `{"entity":"A"}`, 403, "forbidden", -1, ""},
		{"not json", keyA, `entity=A`, 400, "invalid", 0, ""},
		{"bad field in batch", keyA, `[{"entity":"A"},{"entity":"B","timestampMs":"yesterday"}]`, 400, "invalid", 1, "timestampMs"},
		{"missing entity", keyA, `{"type":"CREATE"}`, 400, "invalid", 0, "entity"},
		{"too large", keyA, big, 413, "too_large", -1, ""},
	}
	last := ts.publish(keyA, alert("before", camA))[0]
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out struct {
				Error struct {
					Code    string   `json:"code"`
					Message string   `json:"message"`
					Field   string   `json:"field"`
					Index   *float64 `json:"index"`
				} `json:"error"`
			}
			status := ts.do("POST", "/api/events", tt.key, tt.body, &out)
			if status != tt.status || out.Error.Code != tt.code || out.Error.Field != tt.field || out.Error.Message == "" {
				t.Fatalf("got %d %+v", status, out.Error)
			}
			if (tt.index < 0) != (out.Error.Index == nil) || (out.Error.Index != nil && *out.Error.Index != tt.index) {
				t.Fatalf("index: got %v, want %v", out.Error.Index, tt.index)
			}
		})
	}
	expectNextID(t, ts, last)
}
