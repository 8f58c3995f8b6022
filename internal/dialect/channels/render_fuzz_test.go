package channels

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/dialect/dialecttest"
)

// renderSeeds are producer bodies and stored events: the usual shapes of
// every channel, and text that is not UTF-8 or holds escaped surrogates.
var renderSeeds = []string{
	`{"entity":"POLICY_ALERT","type":"CREATE","entityUuid":"a1","deviceUuid":"d1","severity":"critical","title":"café","policyAlertTriggers":["MOTION_HUMAN"],"metadata":{"k":"値"}}`,
	`[{"entity":"TELEMETRY","deviceUuid":"d1","telemetry":{"temperature":{"value":23.5,"unit":"°C"},"h\u00e9":1}},{"entity":"DEVICE_STATUS","status":"offline","oldStatus":"online","reason":"☕"}]`,
	`{"entity":"SYSTEM_STATUS","metrics":{"cpu_usage":1}}`,
	`{"entity":"OTHER","type":"UPDATE","x":"\ud83d\ude00","y":"\\ud800"}`,
	"{\"entity\":\"POLICY_ALERT\",\"title\":\"caf\xe9 \xff\",\"policyAlertTriggers\":[\"M\xff\"]}",
	"{\"channel\":\"telemetry\",\"entity\":\"TELEMETRY\",\"org\":\"" + dialecttest.Org + "\",\"telemetry\":{\"t\xe9mp\":{\"value\":1,\"unit\":\"\xb0C\"}},\"timestampMs\":1}",
	"{\"channel\":\"devices\",\"entity\":\"DEVICE_STATUS\",\"status\":\"\xed\xa0\x80\",\"n\xffte\":{\"k\xc3\":[1]}}",
	`{"channel":"alerts","entity":"ALERT","title":"\ud800","message":"\udc00x","severity":"\ud800"}`,
}

// FuzzRenderIngested feeds arbitrary bodies through ingest's parser and
// every event it accepts through each renderer, on every channel: a push
// and a telemetry update go out in WebSocket text frames, so each must be
// UTF-8, and JSON (issue 9).
func FuzzRenderIngested(f *testing.F) {
	for _, s := range renderSeeds {
		f.Add([]byte(s), int64(1))
	}
	f.Fuzz(func(t *testing.T, body []byte, number int64) {
		dialecttest.Ingested(t, body, func(e *herald.Event) { checkPushText(t, e, number) })
	})
}

// FuzzRenderStored feeds arbitrary stored records (old data dirs may hold
// text that is not UTF-8) through DecodeEvent and each renderer.
func FuzzRenderStored(f *testing.F) {
	for _, s := range renderSeeds {
		f.Add([]byte(s), int64(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, number int64) {
		e, err := herald.DecodeEvent(9, data)
		if err != nil {
			return
		}
		checkPushText(t, e, number)
	})
}

// checkPushText renders e as each channel's push and as a telemetry
// update, and checks that each is UTF-8 and JSON.
func checkPushText(t *testing.T, stored *herald.Event, number int64) {
	t.Helper()
	for _, channel := range []string{"alerts", "telemetry", "devices", "system", "events"} {
		e := &herald.Event{ID: stored.ID, Org: stored.Org, Channel: channel, Entity: stored.Entity,
			EntityUUID: stored.EntityUUID, Type: stored.Type, DeviceUUID: stored.DeviceUUID,
			TimestampMs: stored.TimestampMs, Severity: stored.Severity, Triggers: stored.Triggers, Body: stored.Body}
		check := func(what string, text []byte) {
			t.Helper()
			if !utf8.Valid(text) {
				t.Fatalf("%s on %s of %q is not UTF-8: %q", what, channel, e.Body, text)
			}
			if !json.Valid(text) {
				t.Fatalf("%s on %s of %q is not JSON: %s", what, channel, e.Body, text)
			}
		}
		check("push", AppendPush(nil, e, number))
		check("telemetry update", AppendTelemetryUpdate(nil, e.ID, AppendDeviceID(nil, e.DeviceUUID, number), Telemetry(e), e.TimestampMs))
	}
}
