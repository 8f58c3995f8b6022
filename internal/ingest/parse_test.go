package ingest

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/jsonscan"
)

const org = "5f0c6b2e-4d2a-4c1e-9b7a-2a9d8e4f1c30"

func TestParseShapes(t *testing.T) {
	tests := []struct {
		name string
		body string
		want int
	}{
		{"one object", `{"entity":"POLICY_ALERT"}`, 1},
		{"array", `[{"entity":"A"},{"entity":"B"},{"entity":"C"}]`, 3},
		{"ndjson", "{\"entity\":\"A\"}\n{\"entity\":\"B\"}\n", 2},
		{"ndjson without final newline", "{\"entity\":\"A\"}\n{\"entity\":\"B\"}", 2},
		{"whitespace around", "  \n[ {\"entity\":\"A\"} ]\n ", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := Parse([]byte(tt.body), org, 1000, Limits{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(recs) != tt.want {
				t.Fatalf("got %d records, want %d", len(recs), tt.want)
			}
		})
	}
}

func TestParseNormalizes(t *testing.T) {
	recs, err := Parse([]byte(`{"entity":"POLICY_ALERT","entityUuid":"a1","deviceUuid":"d1","type":"CREATE",
		"policyAlertTriggers":["MOTION_HUMAN"],"custom":{"x":[1,2]},"severity":null}`), org, 1711843200000, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	r := recs[0]
	if r.Org != org || r.Channel != herald.ChannelAlerts || r.Entity != "POLICY_ALERT" || r.DeviceUUID != "d1" || r.EntityUUID != "a1" {
		t.Fatalf("record fields: %+v", r)
	}
	var got map[string]any
	if err := json.Unmarshal(r.Data, &got); err != nil {
		t.Fatal(err)
	}
	if got["org"] != org || got["channel"] != "alerts" || got["timestampMs"] != float64(1711843200000) {
		t.Fatalf("normalized data: %s", r.Data)
	}
	if _, ok := got["severity"]; ok {
		t.Fatalf("null field kept: %s", r.Data)
	}
	if !strings.Contains(string(r.Data), `"custom":{"x":[1,2]}`) {
		t.Fatalf("unknown field not passed through untouched: %s", r.Data)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		code  string
		index int
		field string
	}{
		{"empty", ``, herald.EINVALID, -1, ""},
		{"not json", `hello`, herald.EINVALID, 0, ""},
		{"truncated", `{"entity":"A"`, herald.EINVALID, 0, ""},
		{"empty array", `[]`, herald.EINVALID, -1, ""},
		{"array of non-objects", `[1]`, herald.EINVALID, 0, ""},
		{"second bad", `[{"entity":"A"},{"entity":5}]`, herald.EINVALID, 1, "entity"},
		{"missing entity", `{"type":"CREATE"}`, herald.EINVALID, 0, "entity"},
		{"id given", `{"entity":"A","id":"7"}`, herald.EINVALID, 0, "id"},
		{"other org", `{"entity":"A","org":"someone-else"}`, herald.EINVALID, 0, "org"},
		{"bad channel", `{"entity":"A","channel":"nope"}`, herald.EINVALID, 0, "channel"},
		{"float timestamp", `{"entity":"A","timestampMs":1.5}`, herald.EINVALID, 0, "timestampMs"},
		{"negative timestamp", `{"entity":"A","timestampMs":-1}`, herald.EINVALID, 0, "timestampMs"},
		{"string duration", `{"entity":"A","durationSec":"5"}`, herald.EINVALID, 0, "durationSec"},
		{"triggers not list", `{"entity":"A","policyAlertTriggers":"X"}`, herald.EINVALID, 0, "policyAlertTriggers"},
		{"telemetry not object", `{"entity":"A","telemetry":[1]}`, herald.EINVALID, 0, "telemetry"},
		{"long string", `{"entity":"` + strings.Repeat("x", 2000) + `"}`, herald.EINVALID, 0, "entity"},
		{"trailing garbage after array", `[{"entity":"A"}] x`, herald.EINVALID, -1, ""},
		{"ndjson bad line", "{\"entity\":\"A\"}\n{oops}\n", herald.EINVALID, 1, ""},
		{"too many", "[" + strings.TrimSuffix(strings.Repeat(`{"entity":"A"},`, 3), ",") + "]", herald.ETOOLARGE, -1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.body), org, 1, Limits{MaxEvents: 2})
			e, ok := err.(*herald.Error)
			if !ok {
				t.Fatalf("err = %v (%T), want *herald.Error", err, err)
			}
			if e.Code != tt.code || e.Index != tt.index || e.Field != tt.field {
				t.Fatalf("got code=%s index=%d field=%q (%s), want %s %d %q", e.Code, e.Index, e.Field, e.Message, tt.code, tt.index, tt.field)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{"entity":"POLICY_ALERT","entityUuid":"a","type":"CREATE","deviceUuid":"d","timestampMs":1711843200000,"durationSec":5.2,"policyAlertTriggers":["MOTION_HUMAN"],"textDescription":"x"}`,
		`[{"entity":"TELEMETRY","telemetry":{"temperature":{"value":23.5,"unit":"°C"}}},{"entity":"DEVICE_STATUS","status":"offline"}]`,
		"{\"entity\":\"A\"}\n{\"entity\":\"B\"}\n",
		`[`, `{"entity":`, `null`, `[null]`, `"x"`, `{"entity":"A","id":1}`,
		`{"entity":"A","policyAlertTriggers":` + triggersJSON(65, numbered("T")) + `}`,
		`{"entity":"A","policyAlertTriggers":["` + strings.Repeat("T", 257) + `"]}`,
		`{"entity":"TELEMETRY","telemetry":` + metricsJSON(257, numbered("m")) + `}`,
		`{"entity":"SYSTEM_STATUS","metrics":` + metricsJSON(257, numbered("m")) + `}`,
		`{"entity":"TELEMETRY","telemetry":{"` + strings.Repeat("m", 257) + `":1}}`,
		"{\"entity\":\"A\",\"textDescription\":\"caf\xe9 \xff\"}", "{\"entity\":\"A\",\"m\":{\"k\xc3\":[\"\xed\xa0\x80\"]}}",
		`{"entity":"A","title":"\ud83d\ude00 \ud800 \\ud800"}`, `{"entity":"A","deviCeUuid":{}}`,
		`{"entity":"A","m":{"a":1,"\u0061":2}}`, `{"entity":"A","m":` + strings.Repeat("[", 63) + strings.Repeat("]", 63) + `}`,
		`{"entity":"A","m":` + strings.Repeat("[{\"a\":", 40) + "1" + strings.Repeat("}]", 40) + `}`,
	} {
		f.Add([]byte(seed))
	}
	limits := Limits{}.withDefaults()
	f.Fuzz(func(t *testing.T, body []byte) {
		recs, err := Parse(body, org, 1, Limits{})
		if err != nil {
			if _, ok := err.(*herald.Error); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		for _, r := range recs {
			e, err := herald.DecodeEvent(1, r.Data)
			if err != nil {
				t.Fatalf("normalized record does not decode: %v", err)
			}
			if e.Org != org || e.Entity == "" || !herald.ValidChannel(e.Channel) {
				t.Fatalf("decoded event lost fields: %+v", e)
			}
			if len(e.Triggers) > limits.MaxTriggers {
				t.Fatalf("stored an event of %d triggers", len(e.Triggers))
			}
			for _, tr := range e.Triggers {
				if len(tr) > limits.MaxNameBytes {
					t.Fatalf("stored a trigger of %d bytes", len(tr))
				}
			}
			if !json.Valid(e.Body) {
				t.Fatalf("event body is not JSON: %s", e.Body)
			}
			if !utf8.Valid(r.Data) {
				t.Fatalf("stored text that is not UTF-8: %q", r.Data)
			}
			if !jsonscan.Valid(r.Data) || checkStructure(r.Data) != nil {
				t.Fatalf("stored an event nested too deep or repeating a name: %s (%v)", r.Data, checkStructure(r.Data))
			}
		}
	})
}
