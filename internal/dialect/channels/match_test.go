package channels

import (
	"slices"
	"strconv"
	"testing"

	"github.com/herald-gw/herald"
)

func TestMatch(t *testing.T) {
	alert := event(t, 42, storedAlert)        // device 9d1e…0001, severity critical
	policy := event(t, 43, storedPolicyAlert) // device cam-7, triggers MOTION_HUMAN, LOITERING
	typed := event(t, 49, `{"alert_type":"temp_h\u0069gh","channel":"alerts","deviceUuid":"d-9","entity":"ALERT","severity":"warning"}`)
	telemetry := event(t, 44, storedTelemetry) // humidity, temperature
	status := event(t, 46, storedStatus)       // status offline
	system := event(t, 47, storedSystem)       // metrics cpu_usage, queue_depth
	other := event(t, 48, storedOther)         // channel events
	spaced := event(t, 50, `{ "channel" : "devices", "entity" : "DEVICE_STATUS", "metadata" : { "status" : "x" }, "status" : "Online" }`)
	const uuid1 = "9d1e0f7a-1111-4c2b-8a3e-000000000001"

	tests := []struct {
		name   string
		sub    Subscription
		e      *herald.Event
		number int64
		want   bool
	}{
		{"channel", Subscription{Channel: "alerts"}, alert, 0, true},
		{"other channel", Subscription{Channel: "telemetry"}, alert, 0, false},
		{"events channel never", Subscription{Channel: "events"}, other, 0, false},
		{"system event", Subscription{Channel: "system"}, system, 0, true},

		{"device uuid", Subscription{Channel: "alerts", DeviceIDs: []string{uuid1}}, alert, 0, true},
		{"device uuid any case", Subscription{Channel: "alerts", DeviceIDs: []string{"9D1E0F7A-1111-4C2B-8A3E-000000000001"}}, alert, 0, true},
		{"device number", Subscription{Channel: "alerts", DeviceIDs: []string{"2", "1"}}, alert, 1, true},
		{"device number other", Subscription{Channel: "alerts", DeviceIDs: []string{"2"}}, alert, 1, false},
		{"device number unregistered", Subscription{Channel: "alerts", DeviceIDs: []string{"1"}}, alert, 0, false},
		{"device uuid with number", Subscription{Channel: "alerts", DeviceIDs: []string{uuid1}}, alert, 7, true},
		{"no device on event", Subscription{Channel: "system", DeviceIDs: []string{"1"}}, system, 0, false},

		{"severity", Subscription{Channel: "alerts", Severity: []string{"critical", "warning"}}, alert, 0, true},
		{"severity case", Subscription{Channel: "alerts", Severity: []string{"CRITICAL"}}, alert, 0, true},
		{"severity other", Subscription{Channel: "alerts", Severity: []string{"info"}}, alert, 0, false},
		{"severity absent", Subscription{Channel: "alerts", Severity: []string{"info"}}, policy, 0, false},

		{"alert type trigger", Subscription{Channel: "alerts", AlertTypes: []string{"loitering"}}, policy, 0, true},
		{"alert type other trigger", Subscription{Channel: "alerts", AlertTypes: []string{"MOTION_CAR"}}, policy, 0, false},
		{"alert type field escaped", Subscription{Channel: "alerts", AlertTypes: []string{"TEMP_HIGH"}}, typed, 0, true},
		{"alert type absent", Subscription{Channel: "alerts", AlertTypes: []string{"TEMP_HIGH"}}, alert, 0, false},

		{"status", Subscription{Channel: "devices", StatusTypes: []string{"online", "offline"}}, status, 0, true},
		{"status other", Subscription{Channel: "devices", StatusTypes: []string{"online"}}, status, 0, false},
		{"status top level only", Subscription{Channel: "devices", StatusTypes: []string{"x"}}, spaced, 0, false},
		{"status with whitespace body", Subscription{Channel: "devices", StatusTypes: []string{"online"}}, spaced, 0, true},

		{"metric", Subscription{Channel: "telemetry", Metrics: []string{"pressure", "Temperature"}}, telemetry, 0, true},
		{"metric other", Subscription{Channel: "telemetry", Metrics: []string{"pressure"}}, telemetry, 0, false},
		{"metric on system", Subscription{Channel: "system", Metrics: []string{"queue_depth"}}, system, 0, true},
		{"metric on system other", Subscription{Channel: "system", Metrics: []string{"disk_usage"}}, system, 0, false},

		{"all filters", Subscription{Channel: "alerts", DeviceIDs: []string{"cam-7"}, Severity: nil,
			AlertTypes: []string{"MOTION_HUMAN"}}, policy, 0, true},
		{"one filter fails", Subscription{Channel: "alerts", DeviceIDs: []string{"cam-7"}, Severity: []string{"critical"},
			AlertTypes: []string{"MOTION_HUMAN"}}, policy, 0, false},
		{"filter on a channel without the field", Subscription{Channel: "devices", Severity: []string{"critical"}}, status, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.sub.Match(tt.e, tt.number); got != tt.want {
				t.Fatalf("Match = %v, want %v", got, tt.want)
			}
			// The same lists, long enough to be compiled into sets.
			long := padded(tt.sub)
			if long.sets == nil && hasList(tt.sub) {
				t.Fatal("long lists not compiled")
			}
			if got := long.Match(tt.e, tt.number); got != tt.want {
				t.Fatalf("Match with compiled lists = %v, want %v", got, tt.want)
			}
		})
	}
}

// padded returns sub with every list it sets grown past scanMax with
// values no event holds, compiled as Decode compiles them.
func padded(sub Subscription) Subscription {
	pad := func(list []string) []string {
		if len(list) == 0 {
			return list
		}
		out := slices.Clone(list)
		for i := len(out); i <= scanMax; i++ {
			out = append(out, "pad-"+strconv.Itoa(i))
		}
		return out
	}
	sub.DeviceIDs, sub.Metrics, sub.Severity = pad(sub.DeviceIDs), pad(sub.Metrics), pad(sub.Severity)
	sub.AlertTypes, sub.StatusTypes = pad(sub.AlertTypes), pad(sub.StatusTypes)
	sub.sets = nil
	sub.compile()
	return sub
}

func hasList(s Subscription) bool {
	return len(s.DeviceIDs)+len(s.Metrics)+len(s.Severity)+len(s.AlertTypes)+len(s.StatusTypes) > 0
}

// TestDecodeCompiles: Decode compiles a list longer than scanMax and
// leaves short ones to be scanned.
func TestDecodeCompiles(t *testing.T) {
	m, err := Decode([]byte(`{"type":"subscribe","channel":"alerts","severity":["critical"],"alert_type":` + listJSON("T", scanMax+1) + `}`))
	if err != nil {
		t.Fatal(err)
	}
	if m.Sub.sets == nil || m.Sub.sets.alertTypes == nil || m.Sub.sets.severity != nil {
		t.Fatalf("sets = %+v", m.Sub.sets)
	}
	if m, _ := Decode([]byte(`{"type":"subscribe","channel":"alerts","alert_type":` + listJSON("T", scanMax) + `}`)); m.Sub.sets != nil {
		t.Fatal("a short list was compiled")
	}
}

func TestSelectMetrics(t *testing.T) {
	e := event(t, 44, `{"channel":"telemetry","entity":"TELEMETRY","telemetry":{"Temperature":{"value":1},"humidity":{"value":2},"pressure":{"value":3}}}`)
	for _, sub := range []Subscription{
		{Channel: "telemetry", Metrics: []string{"temperature", "PRESSURE"}},
		padded(Subscription{Channel: "telemetry", Metrics: []string{"temperature", "PRESSURE"}}),
	} {
		var names []string
		for _, m := range sub.SelectMetrics(Telemetry(e)) {
			names = append(names, m.Name)
		}
		if !slices.Equal(names, []string{"Temperature", "pressure"}) {
			t.Errorf("SelectMetrics with %d names = %q", len(sub.Metrics), names)
		}
	}
	if got := (&Subscription{Channel: "telemetry"}).SelectMetrics(Telemetry(e)); len(got) != 3 {
		t.Errorf("no metrics filter kept %d metrics", len(got))
	}
}

// TestMatchAllocations holds Match, with every filter that reads Body, to
// zero allocations: it runs per subscription per event.
func TestMatchAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	cases := []struct {
		sub Subscription
		e   *herald.Event
	}{
		{Subscription{Channel: "alerts", DeviceIDs: []string{"x", "1"}, Severity: []string{"critical"},
			AlertTypes: []string{"nope", "TEMP_HIGH"}}, event(t, 1, storedAlert)},
		{Subscription{Channel: "devices", DeviceIDs: []string{"9D1E0F7A-1111-4C2B-8A3E-000000000001"},
			StatusTypes: []string{"ONLINE", "offline"}}, event(t, 2, storedStatus)},
		{Subscription{Channel: "telemetry", Metrics: []string{"pressure", "temperature"}}, event(t, 3, storedTelemetry)},
		{Subscription{Channel: "alerts", AlertTypes: []string{"Ünïcode", "TEMP_HIGH"}},
			event(t, 4, `{"alert_type":"temp_h\u0069gh","channel":"alerts","deviceUuid":"d-9","entity":"ALERT"}`)},
	}
	for i, c := range cases {
		for _, sub := range []Subscription{c.sub, padded(c.sub)} {
			allocs := testing.AllocsPerRun(1000, func() { sub.Match(c.e, 1) })
			if allocs != 0 {
				t.Errorf("case %d with %d device ids: Match allocates %.1f times", i, len(sub.DeviceIDs), allocs)
			}
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	e := event(b, 46, storedStatus)
	s := Subscription{Channel: "devices", DeviceIDs: []string{"1"}, StatusTypes: []string{"online", "offline"}}
	b.ReportAllocs()
	for b.Loop() {
		s.Match(e, 1)
	}
}

func BenchmarkAppendPush(b *testing.B) {
	e := event(b, 44, storedTelemetry)
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendPush(buf[:0], e, 1)
	}
}
