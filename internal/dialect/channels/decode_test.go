package channels

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func u64(n uint64) *uint64 { return &n }

func sub(channel string) Subscription { return Subscription{Channel: channel} }

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Message
	}{
		// The doc's message examples.
		{"auth", `{"type":"auth","token":"jwt-token-string"}`, Message{Type: "auth", Token: "jwt-token-string"}},
		{"unsubscribe doc", `{"type":"unsubscribe","channel":"telemetry","device_id":1}`,
			Message{Type: "unsubscribe", Sub: Subscription{Channel: "telemetry", DeviceIDs: []string{"1"}}}},
		{"ping", `{"type":"ping","timestamp":"2024-01-01T12:00:00Z"}`,
			Message{Type: "ping", Timestamp: json.RawMessage(`"2024-01-01T12:00:00Z"`)}},
		{"ping without timestamp", `{"type":"ping"}`, Message{Type: "ping"}},
		{"ping null timestamp", `{"type":"ping","timestamp":null}`, Message{Type: "ping"}},
		{"ping object timestamp compacted", `{"type":"ping","timestamp":{ "t" : [1, 2] }}`,
			Message{Type: "ping", Timestamp: json.RawMessage(`{"t":[1,2]}`)}},
		{"ping number timestamp", `{"type":"ping","timestamp":1704110400000}`,
			Message{Type: "ping", Timestamp: json.RawMessage(`1704110400000`)}},

		// The doc's JS client: ValtronicsWebSocket.subscribe spreads filters at the top level.
		{"js telemetry device 1", `{"type":"subscribe","channel":"telemetry","device_id":1}`,
			Message{Type: "subscribe", Sub: Subscription{Channel: "telemetry", DeviceIDs: []string{"1"}}}},
		{"js alerts severity", `{"type":"subscribe","channel":"alerts","severity":["critical","warning"]}`,
			Message{Type: "subscribe", Sub: Subscription{Channel: "alerts", Severity: []string{"critical", "warning"}}}},
		{"js unsubscribe", `{"type":"unsubscribe","channel":"alerts"}`, Message{Type: "unsubscribe", Sub: sub("alerts")}},
		{"js doc telemetry example", `{"type":"subscribe","channel":"telemetry","device_id":1,"filters":{"metrics":["temperature","humidity"],"frequency":"real-time"}}`,
			Message{Type: "subscribe", Sub: Subscription{Channel: "telemetry", DeviceIDs: []string{"1"}, Metrics: []string{"temperature", "humidity"}}}},
		{"js doc system example", `{"type":"subscribe","channel":"system","filters":{"metrics":["cpu_usage","memory_usage","active_connections"],"frequency":"30s"}}`,
			Message{Type: "subscribe", Sub: Subscription{Channel: "system", Metrics: []string{"cpu_usage", "memory_usage", "active_connections"}, Frequency: 30 * time.Second}}},

		// The doc's Python client (json.dumps: spaces after separators) nests them under "filters".
		{"python telemetry", `{"type": "subscribe", "channel": "telemetry", "filters": {"device_id": 1}}`,
			Message{Type: "subscribe", Sub: Subscription{Channel: "telemetry", DeviceIDs: []string{"1"}}}},
		{"python alerts", `{"type": "subscribe", "channel": "alerts", "filters": {"severity": ["critical", "warning"]}}`,
			Message{Type: "subscribe", Sub: Subscription{Channel: "alerts", Severity: []string{"critical", "warning"}}}},
		{"python devices", `{"type": "subscribe", "channel": "devices"}`, Message{Type: "subscribe", Sub: sub("devices")}},
		{"python doc devices example", `{"type": "subscribe", "channel": "devices", "filters": {"device_id": [1, 2, 3], "status_types": ["online", "offline", "warning"]}}`,
			Message{Type: "subscribe", Sub: Subscription{Channel: "devices", DeviceIDs: []string{"1", "2", "3"}, StatusTypes: []string{"online", "offline", "warning"}}}},
		{"python auth", `{"type": "auth", "token": "jwt-token"}`, Message{Type: "auth", Token: "jwt-token"}},
		{"python ping", `{"type": "ping", "timestamp": "2024-01-01T12:00:00.123456"}`,
			Message{Type: "ping", Timestamp: json.RawMessage(`"2024-01-01T12:00:00.123456"`)}},

		// Both placements: "filters" wins; a null under "filters" does not.
		{"filters win", `{"type":"subscribe","channel":"alerts","severity":"info","filters":{"severity":"critical"}}`,
			Message{Type: "subscribe", Sub: Subscription{Channel: "alerts", Severity: []string{"critical"}}}},
		{"both merged", `{"type":"subscribe","channel":"alerts","device_id":"cam-1","filters":{"alert_type":"MOTION_HUMAN"}}`,
			Message{Type: "subscribe", Sub: Subscription{Channel: "alerts", DeviceIDs: []string{"cam-1"}, AlertTypes: []string{"MOTION_HUMAN"}}}},
		{"null in filters falls back", `{"type":"subscribe","channel":"alerts","severity":"info","filters":{"severity":null}}`,
			Message{Type: "subscribe", Sub: Subscription{Channel: "alerts", Severity: []string{"info"}}}},
		{"filters null", `{"type":"subscribe","channel":"devices","filters":null}`, Message{Type: "subscribe", Sub: sub("devices")}},

		// Field forms.
		{"device ids mixed", `{"type":"subscribe","channel":"devices","device_id":[1,"2","9d1e0f7a-1111",4.0,1e1]}`,
			Message{Type: "subscribe", Sub: Subscription{Channel: "devices", DeviceIDs: []string{"1", "2", "9d1e0f7a-1111", "4", "10"}}}},
		{"device ids empty list", `{"type":"subscribe","channel":"devices","device_id":[]}`, Message{Type: "subscribe", Sub: sub("devices")}},
		{"channel any case", `{"type":"subscribe","channel":"Telemetry"}`, Message{Type: "subscribe", Sub: sub("telemetry")}},
		{"frequency forms", `{"type":"subscribe","channel":"telemetry","frequency":"1m30s"}`,
			Message{Type: "subscribe", Sub: Subscription{Channel: "telemetry", Frequency: 90 * time.Second}}},
		{"frequency ms", `{"type":"subscribe","channel":"telemetry","frequency":"500ms"}`,
			Message{Type: "subscribe", Sub: Subscription{Channel: "telemetry", Frequency: 500 * time.Millisecond}}},
		{"frequency seconds number", `{"type":"subscribe","channel":"telemetry","frequency":0.5}`,
			Message{Type: "subscribe", Sub: Subscription{Channel: "telemetry", Frequency: 500 * time.Millisecond}}},
		{"frequency seconds string", `{"type":"subscribe","channel":"telemetry","frequency":"30"}`,
			Message{Type: "subscribe", Sub: Subscription{Channel: "telemetry", Frequency: 30 * time.Second}}},
		{"frequency bounds", `{"type":"subscribe","channel":"telemetry","frequency":"1h"}`,
			Message{Type: "subscribe", Sub: Subscription{Channel: "telemetry", Frequency: time.Hour}}},
		{"frequency realtime", `{"type":"subscribe","channel":"telemetry","frequency":"Realtime"}`,
			Message{Type: "subscribe", Sub: sub("telemetry")}},
		{"frequency zero", `{"type":"subscribe","channel":"telemetry","frequency":0}`, Message{Type: "subscribe", Sub: sub("telemetry")}},
		{"last_event_id number", `{"type":"subscribe","channel":"alerts","last_event_id":42}`,
			Message{Type: "subscribe", Sub: sub("alerts"), LastEventID: u64(42)}},
		{"last_event_id string", `{"type":"subscribe","channel":"alerts","last_event_id":"18446744073709551615"}`,
			Message{Type: "subscribe", Sub: sub("alerts"), LastEventID: u64(18446744073709551615)}},
		{"last_event_id under filters", `{"type":"subscribe","channel":"alerts","filters":{"last_event_id":"0"}}`,
			Message{Type: "subscribe", Sub: sub("alerts"), LastEventID: u64(0)}},
		{"last_event_id only on subscribe", `{"type":"unsubscribe","channel":"alerts","last_event_id":"7"}`,
			Message{Type: "unsubscribe", Sub: sub("alerts")}},
		{"unknown keys ignored", `{"type":"subscribe","channel":"alerts","id":7,"extra":{"a":[1]},"filters":{"zone":"north"}}`,
			Message{Type: "subscribe", Sub: sub("alerts")}},
		{"whitespace", " \n{ \"type\" : \"auth\" , \"token\" : \"t\" }\n", Message{Type: "auth", Token: "t"}},

		// The Valtronics server's own names.
		{"subscribe_device", `{"type":"subscribe_device","device_id":7}`,
			Message{Type: "subscribe", Sub: Subscription{Channel: "devices", DeviceIDs: []string{"7"}}}},
		{"unsubscribe_device", `{"type":"unsubscribe_device","device_id":"7","channel":"alerts"}`,
			Message{Type: "unsubscribe", Sub: Subscription{Channel: "devices", DeviceIDs: []string{"7"}}}},

		// Batch: the doc's MessageBatcher.
		{"batch", `{"type":"batch","messages":[{"type":"subscribe","channel":"telemetry","device_id":1},{"type":"ping"}]}`,
			Message{Type: "batch", Batch: []Message{
				{Type: "subscribe", Sub: Subscription{Channel: "telemetry", DeviceIDs: []string{"1"}}},
				{Type: "ping"},
			}}},
		{"empty batch", `{"type":"batch","messages":[]}`, Message{Type: "batch", Batch: []Message{}}},
		{"batch of 50", batchOf(50), Message{Type: "batch", Batch: pings(50)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.in))
			if err != nil {
				t.Fatalf("Decode(%s): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Decode(%s)\n got  %s\n want %s", tt.in, dump(got), dump(tt.want))
			}
			// What Decode accepts, AppendMessage writes back the same.
			again, err := Decode(AppendMessage(nil, got))
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("round trip of %s via %s: %s, %v", dump(got), AppendMessage(nil, got), dump(again), err)
			}
		})
	}
}

func batchOf(n int) string {
	return `{"type":"batch","messages":[` + strings.TrimSuffix(strings.Repeat(`{"type":"ping"},`, n), ",") + `]}`
}

func pings(n int) []Message {
	b := make([]Message, n)
	for i := range b {
		b[i] = Message{Type: "ping"}
	}
	return b
}

func dump(m Message) string {
	s := fmt.Sprintf("%+v", m)
	if m.LastEventID != nil {
		s += fmt.Sprintf(" last=%d", *m.LastEventID)
	}
	return s
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, in, code, message string
	}{
		{"empty", ``, CodeInvalidJSON, "message is not valid JSON: unexpected end of JSON input"},
		{"garbage", `hello`, CodeInvalidJSON, "message is not valid JSON: invalid character 'h' looking for beginning of value"},
		{"truncated", `{"type":"auth"`, CodeInvalidJSON, "message is not valid JSON: unexpected end of JSON input"},
		{"trailing", `{"type":"ping"} x`, CodeInvalidJSON, "message is not valid JSON: invalid character 'x' after top-level value"},
		{"array", `[{"type":"ping"}]`, CodeInvalidMessage, "message must be a JSON object"},
		{"string", `"ping"`, CodeInvalidMessage, "message must be a JSON object"},
		{"null", `null`, CodeInvalidMessage, "message must be a JSON object"},
		{"no type", `{"channel":"alerts"}`, CodeInvalidMessage, `message has no "type"`},
		{"null type", `{"type":null}`, CodeInvalidMessage, `message has no "type"`},
		{"number type", `{"type":1}`, CodeInvalidMessage, `"type" must be a string`},
		{"unknown type", `{"type":"get_device_status","device_id":1}`, CodeUnknownType,
			`unknown message type "get_device_status": expected auth, subscribe, unsubscribe, ping or batch`},
		{"type case", `{"type":"PING"}`, CodeUnknownType, `unknown message type "PING": expected auth, subscribe, unsubscribe, ping or batch`},
		{"auth no token", `{"type":"auth"}`, CodeMissingToken, `auth needs a token: {"type":"auth","token":"<JWT>"}`},
		{"auth empty token", `{"type":"auth","token":""}`, CodeMissingToken, `auth needs a token: {"type":"auth","token":"<JWT>"}`},
		{"auth number token", `{"type":"auth","token":12}`, CodeInvalidField, "token must be a non-empty string"},
		{"no channel", `{"type":"subscribe","device_id":1}`, CodeInvalidField, "channel is required: telemetry, alerts, devices or system"},
		{"channel number", `{"type":"subscribe","channel":2}`, CodeInvalidField, "channel must be a string: telemetry, alerts, devices or system"},
		// The doc's subscribe example, with its placeholder channel.
		{"unknown channel", `{"type":"subscribe","channel":"channel-name","device_id":1,"filters":{"metrics":["temperature","humidity"]}}`, CodeUnknownChannel,
			`unknown channel "channel-name": expected telemetry, alerts, devices or system`},
		{"events channel", `{"type":"unsubscribe","channel":"events"}`, CodeUnknownChannel,
			`unknown channel "events": expected telemetry, alerts, devices or system`},
		{"filters not object", `{"type":"subscribe","channel":"alerts","filters":["critical"]}`, CodeInvalidField, "filters must be an object"},
		{"device_id bool", `{"type":"subscribe","channel":"devices","device_id":true}`, CodeInvalidField, "device_id must be a number, a string or a list of them"},
		{"device_id object", `{"type":"subscribe","channel":"devices","filters":{"device_id":{"id":1}}}`, CodeInvalidField, "device_id must be a number, a string or a list of them"},
		{"device_id nested list", `{"type":"subscribe","channel":"devices","device_id":[[1]]}`, CodeInvalidField, "device_id must be a number, a string or a list of them"},
		{"device_id null item", `{"type":"subscribe","channel":"devices","device_id":[1,null]}`, CodeInvalidField, "device_id must be a number, a string or a list of them"},
		{"device_id fraction", `{"type":"subscribe","channel":"devices","device_id":1.5}`, CodeInvalidField, "device_id numbers must be integers, got 1.5"},
		{"device_id huge", `{"type":"subscribe","channel":"devices","device_id":1e300}`, CodeInvalidField, "device_id numbers must be integers, got 1e300"},
		{"device_id empty", `{"type":"subscribe","channel":"devices","device_id":""}`, CodeInvalidField, "device_id must not be an empty string"},
		{"device_id too many", `{"type":"subscribe","channel":"devices","device_id":[` + strings.Repeat("1,", 100) + `1]}`, CodeInvalidField, "device_id holds 101 values, at most 100"},
		{"severity number", `{"type":"subscribe","channel":"alerts","severity":3}`, CodeInvalidField, "severity must be a non-empty string or a list of them"},
		{"severity mixed", `{"type":"subscribe","channel":"alerts","severity":["critical",3]}`, CodeInvalidField, "severity must be a non-empty string or a list of them"},
		{"severity empty", `{"type":"subscribe","channel":"alerts","filters":{"severity":[""]}}`, CodeInvalidField, "severity must be a non-empty string or a list of them"},
		{"metrics object", `{"type":"subscribe","channel":"telemetry","metrics":{"temperature":true}}`, CodeInvalidField, "metrics must be a non-empty string or a list of them"},
		{"alert_type number", `{"type":"subscribe","channel":"alerts","alert_type":[1]}`, CodeInvalidField, "alert_type must be a non-empty string or a list of them"},
		{"status_types bool", `{"type":"subscribe","channel":"devices","status_types":false}`, CodeInvalidField, "status_types must be a non-empty string or a list of them"},
		{"metrics too many", `{"type":"subscribe","channel":"telemetry","metrics":[` + strings.Repeat(`"m",`, 100) + `"m"]}`, CodeInvalidField, "metrics holds 101 values, at most 100"},
		{"device_id too long", `{"type":"subscribe","channel":"devices","device_id":"` + strings.Repeat("d", 257) + `"}`, CodeInvalidField,
			"device_id is 257 bytes long, at most 256"},
		{"device_id item too long", `{"type":"subscribe","channel":"devices","device_id":[1,"` + strings.Repeat("d", 300) + `"]}`, CodeInvalidField,
			"device_id[1] is 300 bytes long, at most 256"},
		{"metrics item too long", `{"type":"subscribe","channel":"telemetry","filters":{"metrics":["t","` + strings.Repeat("m", 257) + `"]}}`, CodeInvalidField,
			"metrics[1] is 257 bytes long, at most 256"},
		{"severity too long", `{"type":"subscribe","channel":"alerts","severity":"` + strings.Repeat("s", 257) + `"}`, CodeInvalidField,
			"severity is 257 bytes long, at most 256"},
		{"alert_type too long decoded", `{"type":"subscribe","channel":"alerts","alert_type":["` + strings.Repeat(`\u00e9`, 129) + `"]}`, CodeInvalidField,
			"alert_type[0] is 258 bytes long, at most 256"},
		{"status_types too many", `{"type":"subscribe","channel":"devices","status_types":[` + strings.Repeat(`"s",`, 100) + `"s"]}`, CodeInvalidField,
			"status_types holds 101 values, at most 100"},
		{"alert_type too many in batch", `{"type":"batch","messages":[{"type":"ping"},{"type":"subscribe","channel":"alerts","alert_type":` +
			`[` + strings.Repeat(`"a",`, 100) + `"a"]}]}`, CodeInvalidField, "messages[1]: alert_type holds 101 values, at most 100"},
		{"frequency word", `{"type":"subscribe","channel":"telemetry","frequency":"often"}`, CodeInvalidField, `frequency must be "real-time" or a duration from 100ms to 1h such as "30s"`},
		{"frequency too fast", `{"type":"subscribe","channel":"telemetry","frequency":"10ms"}`, CodeInvalidField, `frequency must be "real-time" or a duration from 100ms to 1h such as "30s"`},
		{"frequency too slow", `{"type":"subscribe","channel":"telemetry","frequency":"2h"}`, CodeInvalidField, `frequency must be "real-time" or a duration from 100ms to 1h such as "30s"`},
		{"frequency negative", `{"type":"subscribe","channel":"telemetry","frequency":"-5s"}`, CodeInvalidField, `frequency must be "real-time" or a duration from 100ms to 1h such as "30s"`},
		{"frequency negative number", `{"type":"subscribe","channel":"telemetry","frequency":-1}`, CodeInvalidField, `frequency must be "real-time" or a duration from 100ms to 1h such as "30s"`},
		{"frequency NaN", `{"type":"subscribe","channel":"telemetry","frequency":"NaN"}`, CodeInvalidField, `frequency must be "real-time" or a duration from 100ms to 1h such as "30s"`},
		{"frequency list", `{"type":"subscribe","channel":"telemetry","frequency":["30s"]}`, CodeInvalidField, `frequency must be "real-time" or a duration from 100ms to 1h such as "30s"`},
		{"last_event_id negative", `{"type":"subscribe","channel":"alerts","last_event_id":-1}`, CodeInvalidField, "last_event_id must be a non-negative integer or a decimal string"},
		{"last_event_id fraction", `{"type":"subscribe","channel":"alerts","last_event_id":1.5}`, CodeInvalidField, "last_event_id must be a non-negative integer or a decimal string"},
		{"last_event_id word", `{"type":"subscribe","channel":"alerts","last_event_id":"latest"}`, CodeInvalidField, "last_event_id must be a non-negative integer or a decimal string"},
		{"last_event_id overflow", `{"type":"subscribe","channel":"alerts","last_event_id":"18446744073709551616"}`, CodeInvalidField, "last_event_id must be a non-negative integer or a decimal string"},
		{"last_event_id bool", `{"type":"subscribe","channel":"alerts","last_event_id":true}`, CodeInvalidField, "last_event_id must be a non-negative integer or a decimal string"},
		{"batch no messages", `{"type":"batch"}`, CodeInvalidField, "messages must be a list of messages"},
		{"batch messages object", `{"type":"batch","messages":{"type":"ping"}}`, CodeInvalidField, "messages must be a list of messages"},
		{"batch too large", batchOf(51), CodeBatchTooLarge, "batch holds 51 messages, at most 50"},
		{"batch nested", `{"type":"batch","messages":[{"type":"ping"},{"type":"batch","messages":[]}]}`, CodeInvalidMessage,
			"messages[1]: a batch cannot contain another batch"},
		{"batch bad item", `{"type":"batch","messages":[{"type":"ping"},{"type":"ping"},{"type":"ping"},{"type":"subscribe","channel":"alerts","severity":3}]}`,
			CodeInvalidField, "messages[3]: severity must be a non-empty string or a list of them"},
		{"batch item not object", `{"type":"batch","messages":[1]}`, CodeInvalidMessage, "messages[0]: message must be a JSON object"},
		{"batch item unknown", `{"type":"batch","messages":[{"type":"hello"}]}`, CodeUnknownType,
			`messages[0]: unknown message type "hello": expected auth, subscribe, unsubscribe, ping or batch`},
		{"batch item channel", `{"type":"batch","messages":[{"type":"subscribe","channel":"x"}]}`, CodeUnknownChannel,
			`messages[0]: unknown channel "x": expected telemetry, alerts, devices or system`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode([]byte(tt.in))
			e, ok := err.(*Error)
			if !ok {
				t.Fatalf("Decode(%s) = %s, %v; want an *Error", tt.in, dump(m), err)
			}
			if e.Code != tt.code || e.Message != tt.message {
				t.Fatalf("Decode(%s):\n got  %s: %s\n want %s: %s", tt.in, e.Code, e.Message, tt.code, tt.message)
			}
			if !reflect.DeepEqual(m, Message{}) {
				t.Fatalf("a refused message returned %s", dump(m))
			}
		})
	}
}

func TestDecodeFor(t *testing.T) {
	// On /ws/alerts a subscribe may leave the channel out.
	m, err := DecodeFor([]byte(`{"type":"subscribe","filters":{"severity":["critical"]}}`), "alerts")
	if err != nil || m.Sub.Channel != "alerts" || len(m.Sub.Severity) != 1 {
		t.Fatalf("DecodeFor: %s, %v", dump(m), err)
	}
	// A channel given explicitly wins over the endpoint's.
	m, err = DecodeFor([]byte(`{"type":"subscribe","channel":"devices"}`), "alerts")
	if err != nil || m.Sub.Channel != "devices" {
		t.Fatalf("DecodeFor: %s, %v", dump(m), err)
	}
	// Inside a batch too.
	m, err = DecodeFor([]byte(`{"type":"batch","messages":[{"type":"unsubscribe"}]}`), "system")
	if err != nil || m.Batch[0].Sub.Channel != "system" {
		t.Fatalf("DecodeFor: %s, %v", dump(m), err)
	}
}
