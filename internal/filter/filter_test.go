package filter

import (
	"testing"

	"github.com/herald-gw/herald"
)

func TestMatch(t *testing.T) {
	alert := &herald.Event{Entity: "POLICY_ALERT", Type: "CREATE", DeviceUUID: "D1", Channel: "alerts",
		Triggers: []string{"MOTION_HUMAN", "LOITERING"}}
	tests := []struct {
		name   string
		filter Filter
		want   bool
	}{
		{"empty matches all", Filter{}, true},
		{"entity", Filter{Entities: []string{"policy_alert"}}, true},
		{"entity other", Filter{Entities: []string{"DEVICE_CONFIG"}}, false},
		{"entity list", Filter{Entities: []string{"DEVICE_CONFIG", "POLICY_ALERT"}}, true},
		{"type", Filter{Types: []string{"UPDATE"}}, false},
		{"device case-insensitive", Filter{Devices: []string{"d1"}}, true},
		{"trigger any", Filter{Triggers: []string{"LOITERING"}}, true},
		{"trigger none", Filter{Triggers: []string{"FACE_IDENTIFIED"}}, false},
		{"channel", Filter{Channels: []string{"telemetry"}}, false},
		{"all fields", Filter{Entities: []string{"POLICY_ALERT"}, Types: []string{"CREATE"},
			Devices: []string{"D1"}, Triggers: []string{"MOTION_HUMAN"}, Channels: []string{"alerts"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.filter.Match(alert); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
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
	e := &herald.Event{Entity: "POLICY_ALERT", Type: "CREATE", Triggers: []string{"A", "B"}}
	f := Filter{Entities: []string{"policy_alert"}, Triggers: []string{"b"}}
	if n := testing.AllocsPerRun(1000, func() { f.Match(e) }); n != 0 {
		t.Fatalf("Match allocates %v times per call", n)
	}
}
