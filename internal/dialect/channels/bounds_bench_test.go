package channels

import (
	"fmt"
	"strings"
	"testing"
)

// listJSON is a JSON array of n strings prefix0, prefix1…
func listJSON(prefix string, n int) string {
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf("%q", fmt.Sprint(prefix, i))
	}
	return "[" + strings.Join(items, ",") + "]"
}

// BenchmarkMatchLongLists matches events as large as ingest lets them be
// against filters as long as Decode lets them be, none of which match:
// the worst case per subscription and event.
func BenchmarkMatchLongLists(b *testing.B) {
	var metrics, triggers []string
	for i := range 75000 {
		metrics = append(metrics, fmt.Sprintf(`"metric_%d":{"value":%d}`, i, i))
	}
	for i := range 64 {
		triggers = append(triggers, fmt.Sprintf(`"TRIGGER_%d"`, i))
	}
	cases := []struct {
		name, sub, event string
	}{
		{"alerts/100 alert types × 64 triggers",
			`{"type":"subscribe","channel":"alerts","alert_type":` + listJSON("motion_", MaxFilterValues) + `}`,
			`{"alert_type":"other","channel":"alerts","entity":"POLICY_ALERT","policyAlertTriggers":[` + strings.Join(triggers, ",") + `]}`},
		{"telemetry/100 metrics × 256 metrics",
			`{"type":"subscribe","channel":"telemetry","metrics":` + listJSON("Temperature_", MaxFilterValues) + `}`,
			`{"channel":"telemetry","entity":"TELEMETRY","telemetry":{` + strings.Join(metrics[:256], ",") + `}}`},
		// What an event could carry before ingest bounded it.
		{"telemetry/100 metrics × 75000 metrics",
			`{"type":"subscribe","channel":"telemetry","metrics":` + listJSON("Temperature_", MaxFilterValues) + `}`,
			`{"channel":"telemetry","entity":"TELEMETRY","telemetry":{` + strings.Join(metrics, ",") + `}}`},
		{"devices/100 ids and statuses",
			`{"type":"subscribe","channel":"devices","device_id":` + listJSON("9d1e0f7a-1111-4c2b-8a3e-", MaxFilterValues) +
				`,"status_types":` + listJSON("online_", MaxFilterValues) + `}`,
			`{"channel":"devices","deviceUuid":"9d1e0f7a-1111-4c2b-8a3e-000000000001","entity":"DEVICE_STATUS","status":"offline"}`},
	}
	for _, c := range cases {
		m, err := Decode([]byte(c.sub))
		if err != nil {
			b.Fatal(err)
		}
		e := event(b, 1, c.event)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if m.Sub.Match(e, 0) {
					b.Fatal("match")
				}
			}
		})
	}
}
