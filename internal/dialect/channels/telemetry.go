package channels

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/filter"
	"github.com/herald-gw/herald/internal/jsonscan"
)

// Metric is one metric of a telemetry event.
type Metric struct {
	Name string
	// Value is the metric as stored: normally {"value":…,"unit":…,"timestamp":…},
	// possibly a bare value. It aliases the event's Body: never modify it.
	Value json.RawMessage
	// TimestampMs is the time of the event the metric came from; it becomes
	// the metric's "timestamp" when Value has none. Zero means the
	// eventTimeMs given to AppendTelemetryUpdate.
	TimestampMs int64
}

// Telemetry returns the metrics of e's top-level "telemetry" object, in
// Body order, or nil if it has none.
func Telemetry(e *herald.Event) []Metric {
	raw, ok := jsonscan.Lookup(e.Body, "telemetry")
	if !ok || raw[0] != '{' {
		return nil
	}
	var metrics []Metric
	m := jsonscan.NewMembers(raw)
	for key, value, ok := m.Next(); ok; key, value, ok = m.Next() {
		metrics = append(metrics, Metric{Name: jsonscan.Unquote(key), Value: json.RawMessage(value), TimestampMs: e.TimestampMs})
	}
	return metrics
}

// SelectMetrics keeps, in place and in order, the metrics of all that
// s.Metrics names, comparing names without regard to case as Match does;
// all of them if s.Metrics is empty. It costs O(len(all)) however many
// names s.Metrics holds.
func (s *Subscription) SelectMetrics(all []Metric) []Metric {
	if len(s.Metrics) == 0 {
		return all
	}
	var set *filter.Set
	if s.sets != nil {
		set = s.sets.metrics
	}
	out := all[:0]
	for _, m := range all {
		if contains(s.Metrics, set, m.Name) {
			out = append(out, m)
		}
	}
	return out
}

// AppendTelemetryUpdate appends a telemetry_update holding the given
// metrics, for a subscription that keeps only some metrics or conflates
// them (the latest value of each per period):
//
//	{"type":"telemetry_update","channel":"telemetry","event_id":"<eventID>","device_id":…,"telemetry":{…},"timestamp":"<eventTimeMs>"}
//
// eventID is the newest event that contributed, deviceID the device_id
// value as AppendDeviceID renders it (left out when empty). Each metric
// is rendered as AppendPush renders it, its TimestampMs (or eventTimeMs)
// filling in a missing "timestamp".
func AppendTelemetryUpdate(dst []byte, eventID uint64, deviceID json.RawMessage, metrics []Metric, eventTimeMs int64) []byte {
	dst = appendHead(dst, "telemetry_update", herald.ChannelTelemetry, eventID)
	if len(deviceID) > 0 {
		dst = append(dst, `,"device_id":`...)
		dst = append(dst, deviceID...)
	}
	dst = append(dst, `,"telemetry":{`...)
	for i, m := range metrics {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonscan.AppendString(dst, m.Name)
		dst = append(dst, ':')
		ms := m.TimestampMs
		if ms == 0 {
			ms = eventTimeMs
		}
		dst = appendMetricValue(dst, m.Value, ms)
	}
	dst = append(dst, '}')
	return appendTail(dst, eventTimeMs)
}

// SystemStatus is herald's own status, pushed on the system channel at
// each subscription's frequency. Usages are percentages.
type SystemStatus struct {
	// NodeWide says the figures are the node's, usages included (what an
	// admin sees). false: ActiveConnections are the subscriber's org's,
	// and the usages are not sent at all.
	NodeWide                         bool
	CPUUsage, MemoryUsage, DiskUsage float64
	ActiveConnections                int64
	At                               time.Time
}

// systemMetrics are SystemStatus's metric names, in the order they go out:
// the node's usages first (usageMetrics of them), then the connections.
var systemMetrics = [...]string{"cpu_usage", "memory_usage", "disk_usage", "active_connections"}

const usageMetrics = 3

// AppendSystemStatus appends herald's own status:
//
//	{"type":"system_status_update","channel":"system","metrics":{"cpu_usage":45.2,"memory_usage":67.8,"disk_usage":23.1,"active_connections":15},"timestamp":"2024-01-01T12:00:00.000Z"}
//
// metrics, when not empty, keeps only the named metrics (names compared
// ignoring case; unknown names are ignored, so "metrics" may come out
// empty). Usages are rounded to two decimals, and left out unless the
// status is NodeWide. It has no event_id: it is not an event of the log.
func AppendSystemStatus(dst []byte, s SystemStatus, metrics []string) []byte {
	dst = append(dst, `{"type":"system_status_update","channel":"system","metrics":{`...)
	first := true
	for i, name := range systemMetrics {
		if !filter.OneOf(metrics, name) || (i < usageMetrics && !s.NodeWide) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendKey(dst, name)
		switch i {
		case 0:
			dst = appendFloat(dst, s.CPUUsage)
		case 1:
			dst = appendFloat(dst, s.MemoryUsage)
		case 2:
			dst = appendFloat(dst, s.DiskUsage)
		default:
			dst = strconv.AppendInt(dst, s.ActiveConnections, 10)
		}
	}
	dst = append(dst, '}')
	return appendTail(dst, s.At.UnixMilli())
}
