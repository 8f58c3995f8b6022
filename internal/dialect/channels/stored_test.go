package channels

import (
	"encoding/json"
	"strings"
	"testing"
)

// deepValue is a pass-through value nested 600 levels, which ingest took
// before it bounded nesting at jsonscan.MaxDepth: events like it may be
// in the log.
var deepValue = strings.Repeat("[", 600) + strings.Repeat("]", 600)

// pushFields decodes a push.
func pushFields(t *testing.T, push []byte) map[string]json.RawMessage {
	t.Helper()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(push, &fields); err != nil {
		t.Fatalf("push is not a JSON object (%v): %s", err, push)
	}
	return fields
}

// TestRenderDeepStoredEvent: a stored event with a deep pass-through
// value renders every field, the deep value copied whole, and passes the
// filters it should.
func TestRenderDeepStoredEvent(t *testing.T) {
	alert := event(t, 1, `{"channel":"alerts","entity":"ALERT","message":"smoke","metadata":{"x":`+deepValue+`},`+
		`"severity":"critical","timestampMs":1704110400000,"title":"Fire"}`)
	fields := pushFields(t, AppendPush(nil, alert, 0))
	for _, want := range []struct{ name, value string }{
		{"title", `"Fire"`}, {"message", `"smoke"`}, {"metadata", `{"x":` + deepValue + `}`}, {"severity", `"critical"`},
	} {
		if got := string(fields[want.name]); got != want.value {
			t.Errorf("alert push %s = %.40s, want %.40s", want.name, got, want.value)
		}
	}

	telemetry := event(t, 2, `{"channel":"telemetry","entity":"TELEMETRY","metadata":{"x":`+deepValue+`},`+
		`"telemetry":{"temperature":{"unit":"C","value":21}},"timestampMs":1704110400000}`)
	fields = pushFields(t, AppendPush(nil, telemetry, 0))
	if got := string(fields["telemetry"]); !strings.Contains(got, `"temperature":{"unit":"C","value":21`) {
		t.Errorf("telemetry push holds %s", got)
	}
	if metrics := Telemetry(telemetry); len(metrics) != 1 || metrics[0].Name != "temperature" {
		t.Errorf("Telemetry = %+v", metrics)
	}
	if sub := (Subscription{Channel: "telemetry", Metrics: []string{"temperature"}}); !sub.Match(telemetry, 0) {
		t.Error("metrics filter drops the telemetry event")
	}

	device := event(t, 3, `{"channel":"devices","entity":"DEVICE_STATUS","metadata":{"x":`+deepValue+`},`+
		`"status":"online","timestampMs":1704110400000}`)
	if sub := (Subscription{Channel: "devices", StatusTypes: []string{"online"}}); !sub.Match(device, 0) {
		t.Error("status_types filter drops the device event")
	}
	fields = pushFields(t, AppendPush(nil, device, 0))
	if string(fields["new_status"]) != `"online"` {
		t.Errorf("device push new_status = %s", fields["new_status"])
	}
}

// TestRenderExactNames: names that differ from the fields a push reads
// only in case, or by Unicode folding, are other fields: they change
// nothing, whichever order they come in.
func TestRenderExactNames(t *testing.T) {
	// Sorted, as ingest stores it: the variants come before and after.
	e := event(t, 1, `{"POLICYALERTTRIGGERS":["FIRE"],"Severity":"critical","TITLE":"FIRE","channel":"alerts","entity":"POLICY_ALERT",`+
		`"policyAlertTriggers":["MOTION"],"policyAlertTriggerſ":["FIRE"],"severity":"info","timestampMs":1,"ſeverity":"critical"}`)
	fields := pushFields(t, AppendPush(nil, e, 0))
	if string(fields["severity"]) != `"info"` || string(fields["title"]) != `"MOTION"` {
		t.Errorf("push severity %s, title %s; want \"info\", \"MOTION\"", fields["severity"], fields["title"])
	}
	if sub := (Subscription{Channel: "alerts", AlertTypes: []string{"FIRE"}}); sub.Match(e, 0) {
		t.Error("alert_type FIRE matches an event whose triggers are [MOTION]")
	}
	if sub := (Subscription{Channel: "alerts", Severity: []string{"critical"}}); sub.Match(e, 0) {
		t.Error("severity critical matches an event of severity info")
	}
	withTitle := event(t, 2, `{"Severity":"critical","TITLE":"FIRE","channel":"alerts","entity":"ALERT","severity":"info",`+
		`"timestampMs":1,"title":"MOTION","ſeverity":"critical"}`)
	fields = pushFields(t, AppendPush(nil, withTitle, 0))
	if string(fields["severity"]) != `"info"` || string(fields["title"]) != `"MOTION"` {
		t.Errorf("push severity %s, title %s; want \"info\", \"MOTION\"", fields["severity"], fields["title"])
	}
	status := event(t, 3, `{"STATUS":"offline","channel":"devices","entity":"DEVICE_STATUS","status":"online","\u0073tatuſ":"offline"}`)
	if sub := (Subscription{Channel: "devices", StatusTypes: []string{"offline"}}); sub.Match(status, 0) {
		t.Error("status_types offline matches an event whose status is online")
	}
}

// TestRawEqualFold: filter values compare ignoring case, as strings.EqualFold
// does, on the decoded string.
func TestRawEqualFold(t *testing.T) {
	for _, tt := range []struct {
		raw, s string
		fold   bool
	}{
		{`Online`, "ONLINE", true}, {`on\u006cine`, "ONLINE", true}, {`\u00e9t\u00e9`, "ÉTÉ", true},
		{`k`, "\u212a", true}, {`\ud83d`, "\ufffd", true}, {`onlin`, "online", false}, {`@`, "`", false}, {`[`, "{", false},
	} {
		if got := rawEqualFold([]byte(tt.raw), tt.s); got != tt.fold {
			t.Errorf("rawEqualFold(%q, %q) = %v", tt.raw, tt.s, got)
		}
	}
}
