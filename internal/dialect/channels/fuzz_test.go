package channels

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/jsonscan"
)

var testTime = time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)

// messageSeeds are client messages as the doc's clients send them, and
// broken ones.
var messageSeeds = []string{
	`{"type":"auth","token":"jwt-token"}`,
	`{"type":"subscribe","channel":"telemetry","device_id":1}`,
	`{"type":"subscribe","channel":"alerts","severity":["critical","warning"]}`,
	`{"type": "subscribe", "channel": "alerts", "filters": {"severity": ["critical", "warning"], "device_id": 1}}`,
	`{"type":"subscribe","channel":"devices","filters":{"device_id":[1,2,3],"status_types":["online","offline","warning"]}}`,
	`{"type":"subscribe","channel":"system","filters":{"metrics":["cpu_usage"],"frequency":"30s"},"last_event_id":"17"}`,
	`{"type":"subscribe","channel":"telemetry","device_id":1,"filters":{"metrics":["temperature","humidity"],"frequency":"real-time"}}`,
	`{"type":"unsubscribe","channel":"telemetry","device_id":1}`,
	`{"type":"subscribe_device","device_id":"7"}`,
	`{"type":"ping","timestamp":"2024-01-01T12:00:00Z"}`,
	`{"type":"batch","messages":[{"type":"ping"},{"type":"subscribe","channel":"alerts","alert_type":"MOTION_HUMAN"}]}`,
	`{"type":"batch","messages":[{"type":"batch","messages":[]}]}`,
	`{"type":"subscribe","channel":"x"}`,
	`{"type":"subscribe","channel":"alerts","frequency":0.05}`,
	`{"type":"hello"}`,
	`[1,2]`,
	`{"type":`,
	// Lists over the bounds, and at them.
	`{"type":"subscribe","channel":"devices","device_id":[` + strings.Repeat("1,", MaxFilterValues) + `1]}`,
	`{"type":"subscribe","channel":"devices","status_types":` + listJSON("s", MaxFilterValues) + `}`,
	`{"type":"subscribe","channel":"telemetry","filters":{"metrics":` + listJSON("m", MaxFilterValues+1) + `}}`,
	`{"type":"subscribe","channel":"alerts","alert_type":["` + strings.Repeat("a", MaxFilterValueBytes+1) + `"]}`,
	`{"type":"subscribe","channel":"alerts","severity":"` + strings.Repeat("s", MaxFilterValueBytes) + `"}`,
	`{"type":"subscribe","channel":"alerts","severity":["` + strings.Repeat(`\u00e9`, MaxFilterValueBytes/2+1) + `"]}`,
	`{"type":"subscribe","channel":"devices","device_id":[7,"` + strings.Repeat("d", MaxFilterValueBytes+1) + `"]}`,
	`{"type":"batch","messages":[{"type":"subscribe","channel":"alerts","alert_type":` + listJSON("T", scanMax+1) + `}]}`,
}

// FuzzDecode checks that Decode never panics, that what it accepts keeps
// the promises of Message's fields and reads back the same after
// AppendMessage, and that what it refuses is an *Error with a known code.
func FuzzDecode(f *testing.F) {
	for _, s := range messageSeeds {
		f.Add([]byte(s), "")
	}
	f.Add([]byte(`{"type":"subscribe"}`), "alerts")
	f.Fuzz(func(t *testing.T, data []byte, endpoint string) {
		if endpoint != "" && !subscribableChannel(endpoint) {
			endpoint = ""
		}
		m, err := DecodeFor(data, endpoint)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || !knownCode(e.Code) || e.Message == "" {
				t.Fatalf("Decode(%q): bad error %#v", data, err)
			}
			if !json.Valid(AppendError(nil, e.Code, e.Message)) {
				t.Fatalf("AppendError of %q is not JSON", e.Message)
			}
			return
		}
		checkMessage(t, m, false)
		wire := AppendMessage(nil, m)
		if !json.Valid(wire) {
			t.Fatalf("AppendMessage(%s) = %s: not JSON", dump(m), wire)
		}
		again, err := Decode(wire)
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("Decode(%q) = %s\nre-encoded %s\nread back  %s, %v", data, dump(m), wire, dump(again), err)
		}
		if m.Type == TypeSubscribe {
			checkJSON(t, AppendSubscribed(nil, m.Sub))
		}
		if m.Type == TypePing {
			checkJSON(t, AppendPong(nil, m.Timestamp, testTime))
		}
	})
}

func subscribableChannel(c string) bool {
	for _, s := range subscribable {
		if c == s {
			return true
		}
	}
	return false
}

func knownCode(c string) bool {
	switch c {
	case CodeInvalidJSON, CodeInvalidMessage, CodeUnknownType, CodeInvalidField, CodeUnknownChannel, CodeBatchTooLarge, CodeMissingToken:
		return true
	}
	return false
}

// checkMessage fails unless m keeps the promises Message documents.
func checkMessage(t *testing.T, m Message, inBatch bool) {
	t.Helper()
	if m.LastEventID != nil && m.Type != TypeSubscribe {
		t.Fatalf("last_event_id on %s", m.Type)
	}
	switch m.Type {
	case TypeAuth:
		if m.Token == "" {
			t.Fatal("auth without a token")
		}
	case TypeSubscribe, TypeUnsubscribe:
		s := m.Sub
		if !subscribableChannel(s.Channel) {
			t.Fatalf("channel %q", s.Channel)
		}
		if s.Frequency != 0 && (s.Frequency < MinFrequency || s.Frequency > MaxFrequency) {
			t.Fatalf("frequency %v", s.Frequency)
		}
		for _, list := range [][]string{s.DeviceIDs, s.Metrics, s.Severity, s.AlertTypes, s.StatusTypes} {
			if list != nil && len(list) == 0 || len(list) > MaxFilterValues {
				t.Fatalf("filter list of %d", len(list))
			}
			for _, v := range list {
				if v == "" || !utf8.ValidString(v) || len(v) > MaxFilterValueBytes {
					t.Fatalf("filter value %q", v)
				}
			}
		}
	case TypePing:
		if m.Timestamp != nil && !json.Valid(m.Timestamp) {
			t.Fatalf("timestamp %q", m.Timestamp)
		}
	case TypeBatch:
		if inBatch || len(m.Batch) > MaxBatch {
			t.Fatalf("batch of %d in batch %v", len(m.Batch), inBatch)
		}
		for _, item := range m.Batch {
			checkMessage(t, item, true)
		}
	default:
		t.Fatalf("type %q", m.Type)
	}
}

// FuzzPush renders stored events of any shape on every channel: the text
// is always one valid JSON object starting with its type, and Match and
// Telemetry never fail.
func FuzzPush(f *testing.F) {
	for _, s := range []string{storedAlert, storedPolicyAlert, storedTelemetry, storedBareTelemetry, storedStatus, storedSystem, storedOther,
		`{ "channel" : "telemetry", "telemetry" : { "t" : { "value" : 1 , "timestamp" : null } , "u" : [ ] } }`,
		`{"entity":"X","title":7,"metadata":[1],"metrics":"x","telemetry":{"a":{}},"status":{"s":1}}`} {
		f.Add([]byte(s), int64(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, number int64) {
		stored, err := herald.DecodeEvent(9, data)
		if err != nil {
			return
		}
		for _, channel := range []string{"alerts", "telemetry", "devices", "system", "events"} {
			e := &herald.Event{ID: stored.ID, Org: stored.Org, Channel: channel, Entity: stored.Entity,
				EntityUUID: stored.EntityUUID, Type: stored.Type, DeviceUUID: stored.DeviceUUID,
				TimestampMs: stored.TimestampMs, Severity: stored.Severity, Triggers: stored.Triggers, Body: stored.Body}
			text := AppendPush(nil, e, number)
			if !json.Valid(text) || !strings.HasPrefix(string(text), `{"type":`) {
				t.Fatalf("push on %s of %q: %s", channel, data, text)
			}
			metrics := Telemetry(e)
			text = AppendTelemetryUpdate(nil, e.ID, AppendDeviceID(nil, e.DeviceUUID, number), metrics, e.TimestampMs)
			if !json.Valid(text) {
				t.Fatalf("telemetry update of %q: %s", data, text)
			}
			s := Subscription{Channel: channel, DeviceIDs: []string{"1", e.DeviceUUID + "x"}, Metrics: []string{"temperature"},
				Severity: []string{"critical"}, AlertTypes: []string{"MOTION_HUMAN"}, StatusTypes: []string{"online"}}
			s.Match(e, number)
			// Lists that hold the event's own values, in other cases: the
			// scan and the compiled sets must agree, filter by filter.
			for _, sub := range ownValues(channel, e, number) {
				long := padded(sub)
				if scan, set := sub.Match(e, number), long.Match(e, number); scan != set {
					t.Fatalf("%q on %s, %+v: scan %v, sets %v", data, channel, sub, scan, set)
				}
				if scan, set := len(sub.SelectMetrics(Telemetry(e))), len(long.SelectMetrics(Telemetry(e))); scan != set {
					t.Fatalf("%q: SelectMetrics keeps %d by scan, %d by set", data, scan, set)
				}
			}
		}
	})
}

// ownValues returns one-filter subscriptions on channel whose values are
// taken from e (its device, severity, triggers, the "status" and
// "alert_type" strings and the metric names of its Body), as sent and
// case-changed.
func ownValues(channel string, e *herald.Event, number int64) []Subscription {
	variants := func(vs ...string) []string {
		var out []string
		for _, v := range vs {
			v = strings.ToValidUTF8(v, "\uFFFD")
			if v != "" && len(v) <= MaxFilterValueBytes {
				out = append(out, v, strings.ToUpper(v), strings.ToLower(v))
			}
		}
		return out
	}
	bodyString := func(key string) string {
		if v, ok := jsonscan.Lookup(e.Body, key); ok {
			if raw, ok := jsonscan.StringContent(v); ok {
				return jsonscan.Unquote(raw)
			}
		}
		return ""
	}
	var names []string
	for _, key := range []string{"telemetry", "metrics"} {
		if v, ok := jsonscan.Lookup(e.Body, key); ok {
			m := jsonscan.NewMembers(v)
			for k, _, ok := m.Next(); ok; k, _, ok = m.Next() {
				names = append(names, jsonscan.Unquote(k))
			}
		}
	}
	return []Subscription{
		{Channel: channel, DeviceIDs: variants(e.DeviceUUID, strconv.FormatInt(number, 10))},
		{Channel: channel, Severity: variants(e.Severity)},
		{Channel: channel, AlertTypes: variants(append(slices.Clone(e.Triggers), bodyString("alert_type"))...)},
		{Channel: channel, StatusTypes: variants(bodyString("status"))},
		{Channel: channel, Metrics: variants(names...)},
	}
}
