package ingest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/herald-gw/herald"
)

// triggersJSON is a policyAlertTriggers array of n names.
func triggersJSON(n int, name func(i int) string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q", name(i))
	}
	b.WriteByte(']')
	return b.String()
}

// metricsJSON is a telemetry object of n metrics.
func metricsJSON(n int, name func(i int) string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `%q:{"value":%d}`, name(i), i)
	}
	b.WriteByte('}')
	return b.String()
}

func numbered(prefix string) func(int) string {
	return func(i int) string { return fmt.Sprint(prefix, i) }
}

// TestParseBounds: what one event may carry is bounded, so that per-event
// work downstream (filters, channels metric selection, conflation) is too.
func TestParseBounds(t *testing.T) {
	ok := `{"entity":"A"}`
	tests := []struct {
		name    string
		body    string
		limits  Limits
		index   int
		field   string
		message string
	}{
		{"200000 triggers", `[` + ok + `,{"entity":"POLICY_ALERT","policyAlertTriggers":` + triggersJSON(200000, numbered("MOTION_")) + `}]`,
			Limits{}, 1, "policyAlertTriggers", "has 200000 triggers; at most 64 are allowed"},
		{"75000 metrics", `{"entity":"TELEMETRY","telemetry":` + metricsJSON(75000, numbered("m")) + `}`,
			Limits{}, 0, "telemetry", "has 75000 metrics; at most 256 are allowed"},
		{"system metrics", "{\"entity\":\"A\"}\n" + `{"entity":"SYSTEM_STATUS","metrics":` + metricsJSON(257, numbered("m")) + `}`,
			Limits{}, 1, "metrics", "has 257 metrics; at most 256 are allowed"},
		{"repeated metric names", `{"entity":"TELEMETRY","telemetry":` + metricsJSON(3, func(int) string { return "t" }) + `}`,
			Limits{MaxMetrics: 2}, 0, "telemetry", `telemetry holds the name "t" twice: a name may appear once in each object`},
		{"null triggers count", `{"entity":"A","policyAlertTriggers":[null,null,null]}`,
			Limits{MaxTriggers: 2}, 0, "policyAlertTriggers", "has 3 triggers; at most 2 are allowed"},
		{"long trigger", `{"entity":"A","policyAlertTriggers":["MOTION_HUMAN","` + strings.Repeat("X", 257) + `"]}`,
			Limits{}, 0, "policyAlertTriggers", "item 1 (counting from 0) is 257 bytes long; at most 256 are allowed"},
		{"long trigger escaped", `{"entity":"A","policyAlertTriggers":["\u00e9\u00e9\u00e9"]}`,
			Limits{MaxNameBytes: 5}, 0, "policyAlertTriggers", "item 0 (counting from 0) is 6 bytes long; at most 5 are allowed"},
		{"long metric name", `{"entity":"TELEMETRY","telemetry":{"temperature":1,"` + strings.Repeat("m", 300) + `":2}}`,
			Limits{}, 0, "telemetry", `metric 1 (counting from 0) has a name of 300 bytes ("mmmmmmmmmmmmmmmm"…); at most 256 are allowed`},
		{"long metric name not ASCII", `{"entity":"TELEMETRY","telemetry":{"ééé":2}}`,
			Limits{MaxNameBytes: 5}, 0, "telemetry", `metric 0 (counting from 0) has a name of 6 bytes ("ééé"); at most 5 are allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.body), org, 1, tt.limits)
			var e *herald.Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse = %v, want a *herald.Error", err)
			}
			// EINVALID: HTTP 400, like every other field error of an event.
			if e.Code != herald.EINVALID || e.Index != tt.index || e.Field != tt.field || e.Message != tt.message {
				t.Fatalf("Parse: code %s index %d field %q message %q\nwant code %s index %d field %q message %q",
					e.Code, e.Index, e.Field, e.Message, herald.EINVALID, tt.index, tt.field, tt.message)
			}
		})
	}
}

func TestParseWithinBounds(t *testing.T) {
	body := `[{"entity":"POLICY_ALERT","policyAlertTriggers":` + triggersJSON(64, func(i int) string { return strings.Repeat("T", 250) + fmt.Sprint(i%10) }) + `},` +
		`{"entity":"TELEMETRY","telemetry":` + metricsJSON(256, func(i int) string { return fmt.Sprintf("%0256d", i) }) + `},` +
		`{"entity":"SYSTEM_STATUS","metrics":` + metricsJSON(256, numbered("m")) + `},` +
		`{"entity":"A","metrics":"not an object: not metrics"}]`
	recs, err := Parse([]byte(body), org, 1, Limits{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(recs) != 4 {
		t.Fatalf("%d records", len(recs))
	}
	limits := Limits{}.withDefaults()
	if _, ok := fastParse([]byte(body), org, 1, limits); !ok {
		t.Fatal("events within bounds fell back to encoding/json")
	}
	// Raised limits let more through.
	if _, err := Parse([]byte(`{"entity":"A","policyAlertTriggers":`+triggersJSON(100, numbered("T"))+`}`), org, 1, Limits{MaxTriggers: 100}); err != nil {
		t.Fatalf("raised MaxTriggers: %v", err)
	}
}

// TestFastPathBounds: the fast path takes events within the per-event
// bounds, nested members not counted, and leaves the rest to parseStd,
// which words the error.
func TestFastPathBounds(t *testing.T) {
	tests := []struct {
		body string
		fast bool
	}{
		{`{"entity":"A","policyAlertTriggers":["a",null]}`, true},
		{`{"entity":"A","policyAlertTriggers":["a","b","c"]}`, false},
		{`{"entity":"A","policyAlertTriggers":["abcdefgh"]}`, true},
		{`{"entity":"A","policyAlertTriggers":["abcdefghi"]}`, false},
		{`{"entity":"A","policyAlertTriggers":["a\"b,c"]}`, true},
		{`{"entity":"T","telemetry":{"a":1,"b":{"c":[1,{"d":2,"e":3}],"f":4}}}`, true},
		{`{"entity":"T","telemetry":{"ab":{"cdefghijkl":1,"m":2,"n":3}}}`, true},
		{`{"entity":"T","telemetry":{ "a\",b" : [",\"{", "}"] , "c{" : "d,\"e\":1" }}`, true},
		{`{"entity":"T","telemetry":{"a":1,"b":2,"c":3}}`, false},
		{`{"entity":"T","telemetry":{"abcdefghi":1}}`, false},
		{`{"entity":"S","metrics":{"a":1,"b":2}}`, true},
		{`{"entity":"S","metrics":{"a":1,"b":2,"c":3}}`, false},
		{`{"entity":"S","metrics":[1,2,3]}`, true},
		{`{"entity":"A","policyalerttriggers":["a","b","c"]}`, true}, // another field: names are exact
		{`{"entity":"A","policyAlertTrigger":["a","b","c"]}`, true},
	}
	for _, tt := range tests {
		limits := fuzzLimits(0)
		if _, ok := fastParse([]byte(tt.body), org, 1, limits); ok != tt.fast {
			t.Errorf("fastParse(%s) ok = %v, want %v", tt.body, ok, tt.fast)
		}
		_, err := parseStd([]byte(tt.body), org, 1, limits)
		if (err == nil) != tt.fast {
			t.Errorf("parseStd(%s) = %v", tt.body, err)
		}
	}
}
