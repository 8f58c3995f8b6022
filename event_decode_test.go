package herald

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/herald-gw/herald/internal/jsonscan"
)

// canonical encodes fields the way ingest stores an event: encoding/json
// of a map of raw values (sorted keys, compact, HTML-escaped strings).
func canonical(t testing.TB, fields map[string]any) []byte {
	t.Helper()
	raw := make(map[string]json.RawMessage, len(fields))
	for k, v := range fields {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		raw[k] = b
	}
	data, err := json.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// storedSeeds are stored events of every shape ingest writes, and some it
// does not.
func storedSeeds(t testing.TB) [][]byte {
	seeds := [][]byte{
		canonical(t, map[string]any{"org": "5f0c6b2e-4d2a-4c1e-9b7a-2a9d8e4f1c30", "channel": "alerts", "entity": "POLICY_ALERT",
			"type": "CREATE", "entityUuid": "a1b2c3d4", "deviceUuid": "9d1e0f7a-1111-4c2b-8a3e-000000000001", "durationSec": 5.2,
			"policyAlertTriggers": []string{"MOTION_HUMAN"}, "textDescription": "Person <near> \"entrance\" & exit", "timestampMs": 1795437209759}),
		canonical(t, map[string]any{"org": "o", "channel": "telemetry", "entity": "TELEMETRY", "deviceUuid": "sensor-ü-1",
			"telemetry": map[string]any{"temp": map[string]any{"value": -21.5e-3, "unit": "°C", "timestamp": 1}}, "timestampMs": 0,
			"metadata": map[string]any{"tags": []any{true, false, nil, "x\ty", 1e300}}}),
		canonical(t, map[string]any{"org": "o", "channel": "devices", "entity": "DEVICE_STATUS", "status": "offline", "oldStatus": "online",
			"severity": "HIGH", "policyAlertTriggers": []string{}, "timestampMs": 12}),
		[]byte(`{}`),
		[]byte(`{"org":"o","ORG":"p"}`),
		[]byte(`{"Org":"p","org":"o"}`),
		[]byte(`{"org":"o","org":null}`),
		[]byte(`{"entity":"A","timestampMs":"soon","severity":3,"policyAlertTriggers":"x"}`),
		[]byte(`{"policyAlertTriggers":["a",1,"b"]}`),
		[]byte(`{"policyAlertTriggers":["a","b"],"policyAlertTriggers":null}`),
		[]byte(`{"timestampMs":-9223372036854775808,"severity":null}`),
		[]byte(`{"timestampMs":9223372036854775808}`),
		[]byte(`{"timestampMs":1.5e3}`),
		[]byte(`{"entity":"caf\u00e9","type":"\ud83d\ude00"}`),
		[]byte(`{"entity":"caf` + "\xff" + `"}`),
		[]byte(`{"ſeverity":"x","\u006frg":"y"}`),
		[]byte(`{"a":[[[[{"b":{}}]]]],"org":"o"}`),
		[]byte(`{"org":"o"} `),
		[]byte(`{ "org" : "o" }`),
		[]byte(`{"org":"o"`),
		[]byte(`{"org":"o"}{}`),
		[]byte(`{"a":01}`),
		[]byte(`{"a":-}`),
		[]byte(`{"a":1.}`),
		[]byte(`{"a":"\x"}`),
		[]byte(`[1]`),
		[]byte(`null`),
		[]byte(``),
	}
	return seeds
}

// referenceDecode is DecodeEvent written with encoding/json: a map of
// raw values, so that names match exactly as they do in DecodeEvent (a
// struct would fold them: "Severity" and "ſeverity" would fill severity).
// It has encoding/json's rule for a repeated name (the last counts), so
// the fuzz test compares the two only on input without repeated names.
func referenceDecode(id uint64, data []byte) (*Event, bool) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(data, &fields) != nil || fields == nil {
		return nil, false
	}
	if !utf8.Valid(data) {
		data = replaceInvalidUTF8(data) // tested on its own: TestDecodeEventInvalidUTF8
	}
	e := &Event{ID: id, Body: withID(id, data)}
	for name, dest := range map[string]*string{"org": &e.Org, "channel": &e.Channel, "entity": &e.Entity,
		"entityUuid": &e.EntityUUID, "type": &e.Type, "deviceUuid": &e.DeviceUUID, "severity": &e.Severity} {
		_ = json.Unmarshal(fields[name], dest) // anything but a string leaves it empty
	}
	if n, err := strconv.ParseInt(string(fields["timestampMs"]), 10, 64); err == nil {
		e.TimestampMs = n
	}
	if raw := fields["policyAlertTriggers"]; len(raw) > 0 && raw[0] == '[' {
		var items []json.RawMessage
		_ = json.Unmarshal(raw, &items)
		e.Triggers = make([]string, len(items))
		for i, item := range items {
			_ = json.Unmarshal(item, &e.Triggers[i])
		}
	}
	return e, true
}

// repeatsName reports whether the object data repeats a top-level name.
func repeatsName(data []byte) bool {
	seen := map[string]bool{}
	m := jsonscan.NewMembers(data)
	for k, _, ok := m.Next(); ok; k, _, ok = m.Next() {
		name := jsonscan.Unquote(k)
		if seen[name] {
			return true
		}
		seen[name] = true
	}
	return false
}

// sameEvent compares the decoded fields and Body.
func sameEvent(a, b *Event) bool {
	return a.ID == b.ID && a.Org == b.Org && a.Channel == b.Channel && a.Entity == b.Entity &&
		a.EntityUUID == b.EntityUUID && a.Type == b.Type && a.DeviceUUID == b.DeviceUUID &&
		a.TimestampMs == b.TimestampMs && a.Severity == b.Severity && slices.Equal(a.Triggers, b.Triggers) &&
		(a.Triggers == nil) == (b.Triggers == nil) && string(a.Body) == string(b.Body)
}

func describeEvent(e *Event) string {
	return fmt.Sprintf("org %q channel %q entity %q entityUuid %q type %q device %q ts %d severity %q triggers %#v body %s",
		e.Org, e.Channel, e.Entity, e.EntityUUID, e.Type, e.DeviceUUID, e.TimestampMs, e.Severity, e.Triggers, e.Body)
}

// FuzzDecodeEvent: DecodeEvent decodes what encoding/json decodes as a
// JSON object, exactly as encoding/json decodes it into a map (for input
// without repeated names), and refuses everything else.
func FuzzDecodeEvent(f *testing.F) {
	for _, seed := range storedSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeEvent(7, data)
		want, ok := referenceDecode(7, data)
		if !ok {
			if err == nil {
				t.Fatalf("DecodeEvent accepts %q, encoding/json does not", data)
			}
			return
		}
		if err != nil {
			t.Fatalf("DecodeEvent refuses %q: %v", data, err)
		}
		if !repeatsName(got.Body) && !sameEvent(got, want) {
			t.Fatalf("decoding %q:\nDecodeEvent:   %s\nencoding/json: %s", data, describeEvent(got), describeEvent(want))
		}
	})
}

// TestDecodeEventExactNames: a name that differs from an indexed one only
// in case (or by Unicode folding) is another field, whichever comes last;
// an escaped name is its unescaped self.
func TestDecodeEventExactNames(t *testing.T) {
	data := []byte(`{"POLICYALERTTRIGGERS":["FIRE"],"Severity":"critical","TITLE":"FIRE","policyAlertTriggers":["MOTION"],` +
		`"severity":"info","title":"MOTION","policyAlertTriggerſ":["FIRE"],"ſeverity":"critical","\u006frg":"o","Org":"p"}`)
	e, err := DecodeEvent(1, data)
	if err != nil {
		t.Fatal(err)
	}
	if e.Severity != "info" || !slices.Equal(e.Triggers, []string{"MOTION"}) || e.Org != "o" {
		t.Fatalf("severity %q, triggers %q, org %q; want info, [MOTION], o", e.Severity, e.Triggers, e.Org)
	}
}

// TestDecodeEventDeep: an event older versions stored with a value nested
// deeper than ingest now takes is still read, every field of it.
func TestDecodeEventDeep(t *testing.T) {
	deep := strings.Repeat("[", 600) + strings.Repeat("]", 600)
	data := []byte(`{"channel":"alerts","entity":"POLICY_ALERT","metadata":{"x":` + deep + `},"severity":"high","timestampMs":5}`)
	e, err := DecodeEvent(1, data)
	if err != nil {
		t.Fatal(err)
	}
	if e.Channel != "alerts" || e.Severity != "high" || e.TimestampMs != 5 {
		t.Fatalf("decoded %s", describeEvent(e))
	}
	if _, err := DecodeEvent(1, []byte(`{"metadata":{"x":`+deep[1:]+`},"severity":"high"}`)); err == nil {
		t.Fatal("an unbalanced deep value decodes")
	}
}

func TestDecodeEventAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	data := storedSeeds(t)[0]
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := DecodeEvent(1, data); err != nil {
			t.Fatal(err)
		}
	})
	// The Event, Body, one string holding every field, the triggers.
	if allocs > 4 {
		t.Fatalf("DecodeEvent allocates %.0f times per event, want at most 4", allocs)
	}
}

func BenchmarkDecodeEvent(b *testing.B) {
	data := storedSeeds(b)[0]
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := DecodeEvent(1, data); err != nil {
			b.Fatal(err)
		}
	}
}
