package herald

import (
	"encoding/json"
	"testing"
)

func TestDecodeEvent(t *testing.T) {
	e, err := DecodeEvent(42, []byte(`{"org":"o1","channel":"alerts","entity":"POLICY_ALERT","entityUuid":"a","type":"CREATE",
		"deviceUuid":"d","timestampMs":1711843200000,"severity":"critical","policyAlertTriggers":["X","Y"],"extra":{"k":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != 42 || e.Org != "o1" || e.Channel != "alerts" || e.Entity != "POLICY_ALERT" || e.EntityUUID != "a" ||
		e.Type != "CREATE" || e.DeviceUUID != "d" || e.TimestampMs != 1711843200000 || e.Severity != "critical" ||
		len(e.Triggers) != 2 {
		t.Fatalf("decoded: %+v", e)
	}
	var body map[string]any
	if err := json.Unmarshal(e.Body, &body); err != nil {
		t.Fatalf("body %s: %v", e.Body, err)
	}
	if body["id"] != "42" || body["extra"] == nil {
		t.Fatalf("body: %s", e.Body)
	}
	if e.IDString() != "42" {
		t.Fatal(e.IDString())
	}
}

func TestWithIDEmptyObject(t *testing.T) {
	for in, want := range map[string]string{`{}`: `{"id":"7"}`, ` { } `: `{"id":"7" } `, `{"a":1}`: `{"id":"7","a":1}`} {
		if got := string(withID(7, []byte(in))); got != want {
			t.Errorf("withID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDecodeEventTolerant(t *testing.T) {
	e, err := DecodeEvent(1, []byte(`{"entity":"A","timestampMs":"soon","severity":3,"policyAlertTriggers":"x"}`))
	if err != nil || e.TimestampMs != 0 || e.Severity != "" || e.Triggers != nil {
		t.Fatalf("got %+v, %v", e, err)
	}
	if _, err := DecodeEvent(1, []byte(`[1]`)); ErrorCode(err) != EINVALID {
		t.Fatalf("non-object decoded: %v", err)
	}
}

var testRendering = NewRendering()

func TestRenderedCachesOnce(t *testing.T) {
	e := &Event{ID: 1}
	calls := 0
	render := func(*Event) []byte { calls++; return []byte("x") }
	for range 3 {
		if string(e.Rendered(testRendering, render)) != "x" {
			t.Fatal("wrong rendering")
		}
	}
	if calls != 1 {
		t.Fatalf("rendered %d times", calls)
	}
}

var testKeyed = NewKeyedRendering()

// TestRenderedForKeepsTheFirstKey: the slot caches the encoding for the
// first key asked for, once; another key is told to render its own.
func TestRenderedForKeepsTheFirstKey(t *testing.T) {
	e := &Event{ID: 1}
	calls := 0
	render := func(_ *Event, key string) []byte { calls++; return []byte("for " + key) }
	for range 3 {
		if b, ok := e.RenderedFor(testKeyed, "sub-0", render); !ok || string(b) != "for sub-0" {
			t.Fatalf("sub-0: %q %v", b, ok)
		}
	}
	if b, ok := e.RenderedFor(testKeyed, "sub-1", render); ok || b != nil {
		t.Fatalf("sub-1 got %q, want to render its own", b)
	}
	if calls != 1 {
		t.Fatalf("rendered %d times", calls)
	}
}
