package channels

import (
	"strconv"
	"strings"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/filter"
)

// Match reports whether e is for s. It runs once per subscription per
// event on the fan-out path and never allocates.
//
// The channel must be s's (events of herald's "events" channel go to no
// channels subscription). Then every filter that is set must hold, each
// comparing without regard to case:
//   - DeviceIDs: one is e's DeviceUUID or, when deviceNumber > 0, its
//     decimal number;
//   - Severity: one is e.Severity;
//   - AlertTypes: one is one of e.Triggers (policyAlertTriggers) or the
//     top-level "alert_type" string of Body;
//   - StatusTypes: one is the top-level "status" string of Body;
//   - Metrics: one names a metric of Body's "telemetry" object (on the
//     system channel, of its "metrics" object).
//
// A filter applies on every channel: an event without the field it tests
// does not pass it.
func (s *Subscription) Match(e *herald.Event, deviceNumber int64) bool {
	if e.Channel != s.Channel || e.Channel == herald.ChannelEvents {
		return false
	}
	if len(s.DeviceIDs) > 0 && !s.matchDevice(e.DeviceUUID, deviceNumber) {
		return false
	}
	if len(s.Severity) > 0 && (e.Severity == "" || !filter.OneOf(s.Severity, e.Severity)) {
		return false
	}
	if len(s.AlertTypes) > 0 && !s.matchAlertType(e) {
		return false
	}
	if len(s.StatusTypes) > 0 && !matchString(s.StatusTypes, e.Body, "status") {
		return false
	}
	if len(s.Metrics) > 0 {
		key := "telemetry"
		if e.Channel == herald.ChannelSystem {
			key = "metrics"
		}
		if !matchKeys(s.Metrics, e.Body, key) {
			return false
		}
	}
	return true
}

func (s *Subscription) matchDevice(uuid string, number int64) bool {
	var buf [20]byte
	var num []byte
	if number > 0 {
		num = strconv.AppendInt(buf[:0], number, 10)
	}
	for _, id := range s.DeviceIDs {
		if (uuid != "" && strings.EqualFold(id, uuid)) || (num != nil && id == string(num)) {
			return true
		}
	}
	return false
}

func (s *Subscription) matchAlertType(e *herald.Event) bool {
	for _, t := range e.Triggers {
		if filter.OneOf(s.AlertTypes, t) {
			return true
		}
	}
	return matchString(s.AlertTypes, e.Body, "alert_type")
}

// matchString reports whether Body's top-level member key is a string
// that list holds.
func matchString(list []string, body []byte, key string) bool {
	value, ok := lookup(body, key)
	if !ok {
		return false
	}
	raw, ok := stringValue(value)
	if !ok {
		return false
	}
	for _, item := range list {
		if rawEqualFold(raw, item) {
			return true
		}
	}
	return false
}

// matchKeys reports whether Body's top-level member key is an object with
// a member that list names.
func matchKeys(list []string, body []byte, key string) bool {
	value, ok := lookup(body, key)
	if !ok {
		return false
	}
	m := newMembers(value)
	for k, _, ok := m.next(); ok; k, _, ok = m.next() {
		for _, item := range list {
			if rawEqualFold(k, item) {
				return true
			}
		}
	}
	return false
}
