package e2e

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// TestESSNameLookups: the REST lookups the vendor's viewer sample calls
// with its bearer token, and a 404 alike for what is unknown and for
// another org's device.
func TestESSNameLookups(t *testing.T) {
	ts := startServer(t, testConfig(t.TempDir()))
	get := func(path, bearer string) (int, map[string]any) {
		req, _ := http.NewRequest("GET", ts.base+"/api/rest/v1/"+path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		var out map[string]any
		return ts.doRequest(req, &out), out
	}
	cases := []struct {
		path, bearer string
		status       int
		field, value string
	}{
		{"cameras/" + camA, keyA, 200, "displayName", "Lobby Camera"},
		{"cameras/" + strings.ToUpper(camA), keyA, 200, "displayName", "Lobby Camera"},
		{"eventTypes/" + guidMotionStarted, keyA, 200, "displayName", "Motion Started"},
		{"eventTypes/" + strings.ToUpper(guidMotionStopped), keyA, 200, "state", "No motion"},
		{"eventTypes/" + guidRecordingStarted, keyA, 200, "name", "RECORDING_STARTED"},
		{"cameras/" + camB, keyA, 404, "", ""},     // org B's camera
		{"microphones/" + camA, keyA, 404, "", ""}, // not a microphone
		{"cameras/unknown", keyA, 404, "", ""},
		{"eventTypes/00000000-0000-0000-0000-000000000000", keyA, 404, "", ""},
		{"stateGroups/00000000-0000-0000-0000-000000000000", keyA, 404, "", ""},
		{"cameras/" + camA, "", 401, "", ""},
		{"cameras/" + camA, "nope", 401, "", ""},
		{"cameras/" + camA, "a.b.c", 401, "", ""}, // a malformed JWT
		{"cameras/" + camA, keyAPub, 403, "", ""}, // a publish-only key
		{"cameras/" + camB, keyB, 200, "displayName", "Dock Camera"},
	}
	for _, c := range cases {
		status, out := get(c.path, c.bearer)
		if status != c.status {
			t.Errorf("%s as %q: %d %v, want %d", c.path, c.bearer, status, out, c.status)
			continue
		}
		if c.field != "" {
			if data, _ := out["data"].(map[string]any); data[c.field] != c.value {
				t.Errorf("%s: data %v, want %s %q", c.path, out, c.field, c.value)
			}
		}
	}
	// An unknown id and another org's device answer the same body.
	_, other := get("cameras/"+camB, keyA)
	_, unknown := get("cameras/"+strings.Replace(camB, "2", "3", 1), keyA)
	if !reflect.DeepEqual(other, unknown) {
		t.Errorf("another org's device %v differs from an unknown one %v", other, unknown)
	}

	// The state group of an event, as getState gives it, names itself.
	c := dialESS(t, ts.essURL(), keyA)
	c.startSession("", "")
	c.subscribe(cameraFilter())
	ts.publish(keyA, motion("MOTION_STARTED", camA))
	group := c.waitEvents(1)[0]["stategroupid"].(string)
	status, out := get("stateGroups/"+group, keyA)
	if data, _ := out["data"].(map[string]any); status != 200 || data["displayName"] != "Motion" {
		t.Fatalf("state group %s: %d %v", group, status, out)
	}
	// A custom entity's name-based type is named once herald has seen it.
	ts.publish(keyA, map[string]any{"entity": "DOOR_FORCED", "deviceUuid": camA})
	custom := c.waitEvents(2)[1]["type"].(string)
	status, out = get("eventTypes/"+custom, keyA)
	if data, _ := out["data"].(map[string]any); status != 200 || data["displayName"] != "Door Forced" || data["name"] != "DOOR_FORCED" {
		t.Fatalf("custom type %s: %d %v", custom, status, out)
	}
}
