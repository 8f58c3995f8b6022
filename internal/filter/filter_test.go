package filter

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/herald-gw/herald"
)

func mustNew(t testing.TB, spec Spec) Filter {
	t.Helper()
	f, err := New(spec)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return f
}

// values returns n distinct values prefix0, prefix1…
func values(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}

func TestMatch(t *testing.T) {
	alert := &herald.Event{Entity: "POLICY_ALERT", Type: "CREATE", DeviceUUID: "D1", Channel: "alerts", Severity: "critical",
		Triggers: []string{"MOTION_HUMAN", "LOITERING"}}
	// Long lists take the compiled set, short ones the scan: both must agree.
	long := func(v ...string) []string { return append(values("other_", 40), v...) }
	tests := []struct {
		name string
		spec Spec
		want bool
	}{
		{"empty matches all", Spec{}, true},
		{"entity", Spec{Entities: []string{"policy_alert"}}, true},
		{"entity other", Spec{Entities: []string{"DEVICE_CONFIG"}}, false},
		{"entity list", Spec{Entities: []string{"DEVICE_CONFIG", "POLICY_ALERT"}}, true},
		{"entity long list", Spec{Entities: long("Policy_Alert")}, true},
		{"entity long list other", Spec{Entities: long("DEVICE_CONFIG")}, false},
		{"type", Spec{Types: []string{"UPDATE"}}, false},
		{"device case-insensitive", Spec{Devices: []string{"d1"}}, true},
		{"device long list", Spec{Devices: long("d1")}, true},
		{"trigger any", Spec{Triggers: []string{"LOITERING"}}, true},
		{"trigger none", Spec{Triggers: []string{"FACE_IDENTIFIED"}}, false},
		{"trigger long list", Spec{Triggers: long("loitering")}, true},
		{"trigger long list none", Spec{Triggers: long("FACE_IDENTIFIED")}, false},
		{"channel", Spec{Channels: []string{"telemetry"}}, false},
		{"channel long list", Spec{Channels: long("ALERTS")}, true},
		{"severity", Spec{Severities: []string{"warning", "CRITICAL"}}, true},
		{"severity other", Spec{Severities: []string{"warning"}}, false},
		{"all fields", Spec{Entities: []string{"POLICY_ALERT"}, Types: []string{"CREATE"},
			Devices: []string{"D1"}, Triggers: []string{"MOTION_HUMAN"}, Channels: []string{"alerts"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustNew(t, tt.spec)
			if got := f.Match(alert); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
	var zero Filter
	if !zero.Match(alert) {
		t.Error("the zero Filter must match everything")
	}
	if f := mustNew(t, Spec{Triggers: long("X")}); f.Match(&herald.Event{Entity: "A"}) {
		t.Error("a trigger filter matched an event without triggers")
	}
}

func TestNewBounds(t *testing.T) {
	tests := []struct {
		name    string
		spec    Spec
		field   string
		message string
	}{
		{"too many triggers", Spec{Triggers: values("T", 1635)}, FieldTriggers, "holds 1635 values; at most 256 are allowed"},
		{"too many entities", Spec{Entities: values("E", MaxValues+1)}, FieldEntities, "holds 257 values; at most 256 are allowed"},
		{"too many devices", Spec{Devices: values("D", MaxValues+1)}, FieldDevices, "holds 257 values; at most 256 are allowed"},
		{"too many types", Spec{Types: values("C", MaxValues+1)}, FieldTypes, "holds 257 values; at most 256 are allowed"},
		{"too many channels", Spec{Channels: values("c", MaxValues+1)}, FieldChannels, "holds 257 values; at most 256 are allowed"},
		{"value too long", Spec{Devices: []string{"d1", "MOTION_HUMAN_MOT" + strings.Repeat("x", 300-16)}}, FieldDevices,
			`has a value of 300 bytes ("MOTION_HUMAN_MOT"…); values are at most 256 bytes`},
		{"prefix cut at a rune", Spec{Types: []string{strings.Repeat("é", 200)}}, FieldTypes,
			`has a value of 400 bytes ("éééééééé"…); values are at most 256 bytes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.spec)
			var e *herald.Error
			if !errors.As(err, &e) {
				t.Fatalf("New = %v, want a *herald.Error", err)
			}
			if e.Code != herald.ETOOLARGE || e.Field != tt.field || e.Message != tt.message || e.Index != -1 {
				t.Fatalf("New: code %q field %q index %d message %q\nwant code %q field %q message %q",
					e.Code, e.Field, e.Index, e.Message, herald.ETOOLARGE, tt.field, tt.message)
			}
		})
	}
	// At the bounds is fine.
	mustNew(t, Spec{Entities: values("E", MaxValues), Types: values("T", MaxValues), Devices: values("D", MaxValues),
		Triggers: append(values("T", MaxValues-1), strings.Repeat("x", MaxValueBytes)), Channels: values("C", MaxValues)})
}

func TestParseList(t *testing.T) {
	got := ParseList(" A, ,B,,C ")
	if len(got) != 3 || got[0] != "A" || got[1] != "B" || got[2] != "C" {
		t.Fatalf("ParseList = %q", got)
	}
	if ParseList("") != nil {
		t.Fatal("empty list should be nil")
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	e := &herald.Event{Entity: "POLICY_ALERT", Type: "CREATE", DeviceUUID: "9d1e0f7a-1111-4c2b-8a3e-000000000001",
		Triggers: []string{"A", "B", "ünïcode", strings.Repeat("long", 60)}}
	for name, spec := range map[string]Spec{
		"small": {Entities: []string{"policy_alert"}, Triggers: []string{"b"}},
		"big": {Entities: append(values("x", 20), "policy_alert"), Devices: append(values("x", 20), "9D1E0F7A-1111-4C2B-8A3E-000000000001"),
			Triggers: append(values("x", 200), "ÜNÏCODE")},
		"big no match": {Triggers: values("x", 200)},
	} {
		f := mustNew(t, spec)
		if n := testing.AllocsPerRun(1000, func() { f.Match(e) }); n != 0 {
			t.Errorf("%s: Match allocates %v times per call", name, n)
		}
	}
}
