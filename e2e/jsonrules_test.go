package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestEventShapeRules (issue 9, item 11): ingest refuses what a reader
// could take two ways — a value nested deeper than every reader goes, a
// name twice in one object — with a 400 naming the event and the field;
// and a name that differs from a well-known one only in case is another
// field, so neither the rendered event nor a filter takes it for the
// well-known one.
func TestEventShapeRules(t *testing.T) {
	ts := startServer(t, testConfig(t.TempDir()))
	head := `{"entity":"POLICY_ALERT","type":"CREATE","deviceUuid":"` + camA + `",`
	for _, tt := range []struct{ name, body, field, says string }{
		{"600 levels", head + `"entityUuid":"deep-1","metadata":{"x":` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `}}`,
			"metadata", "64 levels"},
		{"a name twice", head + `"entityUuid":"twice-1","title":"MOTION","title":"FIRE"}`, "title", "twice"},
		{"a name twice, escaped", head + `"entityUuid":"twice-2","title":"MOTION","\u0074itle":"FIRE"}`, "title", "twice"},
		{"a name twice, nested", head + `"entityUuid":"twice-3","metadata":{"a":{"b":1,"b":2}}}`, "metadata", "twice"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out struct {
				Error struct {
					Code, Message, Field string
					Index                *int
				}
			}
			status := ts.do("POST", "/api/events", keyA, []byte("["+alertJSON(t, "ok-"+tt.name)+","+tt.body+"]"), &out)
			if status != 400 || out.Error.Field != tt.field || out.Error.Index == nil || *out.Error.Index != 1 ||
				!strings.Contains(out.Error.Message, tt.says) {
				t.Fatalf("POST: status %d, %+v; want 400 naming event 1, field %s, saying %q", status, out.Error, tt.field, tt.says)
			}
		})
	}

	c := dialRaw(t, ts.wsURL(), keyA)
	c.connect()
	dest := "/topic/change/" + orgA
	c.send("SUBSCRIBE\nid:all\ndestination:" + dest + "\n\n\x00")
	c.send("SUBSCRIBE\nid:fire\ndestination:" + dest + "\nx-herald-trigger:FIRE\n\n\x00")
	ts.waitSubscriptions(2)
	folded := head + `"entityUuid":"fold-1","severity":"info","title":"MOTION","policyAlertTriggers":["MOTION"],` +
		`"Severity":"critical","TITLE":"FIRE","policyalerttriggers":["FIRE"],"ſeverity":"critical"}`
	if status := ts.do("POST", "/api/events", keyA, []byte(folded), nil); status != 200 {
		t.Fatalf("POST of case variants: status %d, want 200 (they are other fields)", status)
	}
	fire := alert("fire-1", camA)
	fire["policyAlertTriggers"] = []string{"FIRE"}
	ts.publish(keyA, fire)

	// fold-1 to "all", then fire-1 to both: three messages, and "fire"
	// gets only fire-1.
	for range 3 {
		frame := c.expect("MESSAGE")
		var event map[string]any
		if err := json.Unmarshal([]byte(frameBody(frame)), &event); err != nil {
			t.Fatal(err)
		}
		sub := frameHeader(frame, "subscription")
		switch {
		case sub == "fire" && event["entityUuid"] != "fire-1":
			t.Errorf("subscription with x-herald-trigger:FIRE got %v: a case variant of policyAlertTriggers matched", event["entityUuid"])
		case event["entityUuid"] == "fold-1" && (event["severity"] != "info" || event["title"] != "MOTION" || event["TITLE"] != "FIRE"):
			t.Errorf("fold-1 rendered as %v, want severity info, title MOTION, and TITLE kept as its own field", event)
		}
	}
}

// alertJSON is a well-formed alert, for a batch whose other event is bad.
func alertJSON(t *testing.T, uuid string) string {
	t.Helper()
	b, err := json.Marshal(alert(uuid, camA))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
