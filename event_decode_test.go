package herald

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
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

// decodeBoth decodes data with the fast path, if it takes it, and with
// encoding/json.
func decodeBoth(data []byte) (fast *Event, slow *Event, slowErr error) {
	if len(data) > 0 && data[0] == '{' {
		e := &Event{ID: 7, Body: withID(7, data)}
		if decodeCanonical(e, e.Body) {
			fast = e
		}
	}
	slow, slowErr = decodeJSON(7, data)
	return fast, slow, slowErr
}

// sameEvent compares the decoded fields and Body.
func sameEvent(a, b *Event) bool {
	return a.ID == b.ID && a.Org == b.Org && a.Channel == b.Channel && a.Entity == b.Entity &&
		a.EntityUUID == b.EntityUUID && a.Type == b.Type && a.DeviceUUID == b.DeviceUUID &&
		a.TimestampMs == b.TimestampMs && a.Severity == b.Severity && reflect.DeepEqual(a.Triggers, b.Triggers) &&
		string(a.Body) == string(b.Body)
}

func describeEvent(e *Event) string {
	return fmt.Sprintf("org %q channel %q entity %q entityUuid %q type %q device %q ts %d severity %q triggers %#v body %s",
		e.Org, e.Channel, e.Entity, e.EntityUUID, e.Type, e.DeviceUUID, e.TimestampMs, e.Severity, e.Triggers, e.Body)
}

// FuzzDecodeEvent: whatever the fast path accepts, it decodes exactly as
// encoding/json does.
func FuzzDecodeEvent(f *testing.F) {
	for _, seed := range storedSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, slow, err := decodeBoth(data)
		if fast == nil {
			return
		}
		if err != nil {
			t.Fatalf("fast path accepted %q, encoding/json rejects it: %v", data, err)
		}
		if !sameEvent(fast, slow) {
			t.Fatalf("decoding %q:\nfast path:     %s\nencoding/json: %s", data, describeEvent(fast), describeEvent(slow))
		}
	})
}

// TestDecodeEventFastPath: what ingest stores takes the fast path, and
// the rest (per the seeds) is decoded as before.
func TestDecodeEventFastPath(t *testing.T) {
	for i, seed := range storedSeeds(t)[:3] {
		fast, slow, err := decodeBoth(seed)
		if fast == nil || err != nil || !sameEvent(fast, slow) {
			t.Errorf("canonical seed %d %s: fast %v, encoding/json err %v", i, seed, fast != nil, err)
		}
	}
	for _, in := range []string{`{"org":"o","ORG":"p"}`, `{"ſeverity":"x"}`, `{"entity":"caf\u00e9"}`, `{"org":"o"} `, `[1]`} {
		if fast, _, _ := decodeBoth([]byte(in)); fast != nil {
			t.Errorf("fast path took %s", in)
		}
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

func BenchmarkDecodeEventJSON(b *testing.B) {
	data := storedSeeds(b)[0]
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := decodeJSON(1, data); err != nil {
			b.Fatal(err)
		}
	}
}
