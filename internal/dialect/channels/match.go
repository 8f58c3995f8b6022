package channels

import (
	"bytes"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/filter"
	"github.com/herald-gw/herald/internal/jsonscan"
)

// Match reports whether e is for s. It runs once per subscription per
// event on the fan-out path, on the goroutine that serves every org of
// the node, so it never allocates and costs O(size of e) however long
// s's lists are: Decode compiles lists of more than a few values into
// sets (filter.Set); shorter ones are scanned, which is faster for them.
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
	sets := s.sets
	if sets == nil {
		sets = &noSets
	}
	if len(s.DeviceIDs) > 0 && !matchDevice(s.DeviceIDs, sets.devices, e.DeviceUUID, deviceNumber) {
		return false
	}
	if len(s.Severity) > 0 && (e.Severity == "" || !contains(s.Severity, sets.severity, e.Severity)) {
		return false
	}
	if len(s.AlertTypes) > 0 && !matchAlertType(s.AlertTypes, sets.alertTypes, e) {
		return false
	}
	if len(s.StatusTypes) > 0 && !matchString(s.StatusTypes, sets.statusTypes, e.Body, "status") {
		return false
	}
	if len(s.Metrics) > 0 {
		key := "telemetry"
		if e.Channel == herald.ChannelSystem {
			key = "metrics"
		}
		if !matchKeys(s.Metrics, sets.metrics, e.Body, key) {
			return false
		}
	}
	return true
}

// filterSets are a Subscription's lists compiled. A nil *filter.Set
// means "scan the list".
type filterSets struct {
	devices, metrics, severity, alertTypes, statusTypes *filter.Set
}

var noSets filterSets

// scanMax is the longest list Match scans rather than looks up in a set.
const scanMax = 8

// compile builds s.sets if one of s's lists is longer than scanMax;
// Decode calls it on every subscription it returns.
func (s *Subscription) compile() {
	var sets filterSets
	long := false
	for _, l := range [...]struct {
		list []string
		set  **filter.Set
	}{
		{s.DeviceIDs, &sets.devices}, {s.Metrics, &sets.metrics}, {s.Severity, &sets.severity},
		{s.AlertTypes, &sets.alertTypes}, {s.StatusTypes, &sets.statusTypes},
	} {
		if len(l.list) > scanMax {
			set := filter.NewSet(l.list)
			*l.set, long = &set, true
		}
	}
	if long {
		s.sets = &sets
	}
}

// contains reports whether v is one of list, ignoring case, through set
// if there is one.
func contains(list []string, set *filter.Set, v string) bool {
	if set != nil {
		return set.Contains(v)
	}
	for _, item := range list {
		if strings.EqualFold(item, v) {
			return true
		}
	}
	return false
}

// scanRaw reports whether raw, the content of a JSON string as stored
// (escapes not decoded), is one of list, ignoring case.
func scanRaw(list []string, raw []byte) bool {
	for _, item := range list {
		if rawEqualFold(raw, item) {
			return true
		}
	}
	return false
}

// setHasRaw is scanRaw through a set. key is scratch space, reused so
// that it is cleared once per Match rather than once per value.
func setHasRaw(set *filter.Set, raw []byte, key *filter.Key) bool {
	key.Reset()
	for len(raw) > 0 {
		// Text up to an escape decodes as itself (an invalid byte as
		// U+FFFD, as nextRune reads it).
		plain := bytes.IndexByte(raw, '\\')
		if plain < 0 {
			plain = len(raw)
		}
		key.AddBytes(raw[:plain])
		if raw = raw[plain:]; len(raw) > 0 {
			r, n := jsonscan.NextRune(raw, 0)
			key.AddRune(r)
			raw = raw[n:]
		}
	}
	return set.ContainsKey(key)
}

func matchDevice(ids []string, set *filter.Set, uuid string, number int64) bool {
	var buf [20]byte
	var num []byte
	if number > 0 {
		num = strconv.AppendInt(buf[:0], number, 10)
	}
	if set != nil {
		if uuid != "" && set.Contains(uuid) {
			return true
		}
		if num == nil {
			return false
		}
		// Decimal digits fold to themselves only: the lookup is exact.
		var key filter.Key
		for _, c := range num {
			key.AddRune(rune(c))
		}
		return set.ContainsKey(&key)
	}
	for _, id := range ids {
		if (uuid != "" && strings.EqualFold(id, uuid)) || (num != nil && id == string(num)) {
			return true
		}
	}
	return false
}

func matchAlertType(list []string, set *filter.Set, e *herald.Event) bool {
	for _, t := range e.Triggers {
		if contains(list, set, t) {
			return true
		}
	}
	return matchString(list, set, e.Body, "alert_type")
}

// matchString reports whether Body's top-level member key is a string
// that list holds.
func matchString(list []string, set *filter.Set, body []byte, key string) bool {
	value, ok := jsonscan.Lookup(body, key)
	if !ok {
		return false
	}
	raw, ok := jsonscan.StringContent(value)
	if !ok {
		return false
	}
	if set == nil {
		return scanRaw(list, raw)
	}
	var scratch filter.Key
	return setHasRaw(set, raw, &scratch)
}

// matchKeys reports whether Body's top-level member key is an object with
// a member that list names.
func matchKeys(list []string, set *filter.Set, body []byte, key string) bool {
	value, ok := jsonscan.Lookup(body, key)
	if !ok {
		return false
	}
	m := jsonscan.NewMembers(value)
	if set == nil {
		for k, _, ok := m.Next(); ok; k, _, ok = m.Next() {
			if scanRaw(list, k) {
				return true
			}
		}
		return false
	}
	var scratch filter.Key
	for k, _, ok := m.Next(); ok; k, _, ok = m.Next() {
		if setHasRaw(set, k, &scratch) {
			return true
		}
	}
	return false
}

// rawEqualFold reports whether the JSON string content raw decodes to s
// under Unicode simple case folding, as strings.EqualFold compares: the
// comparison of a filter's values, which ignore case. Names of fields
// are never compared this way (jsonscan.Equal is exact).
func rawEqualFold(raw []byte, s string) bool {
	i, j := 0, 0
	for i < len(raw) && j < len(s) {
		var r rune
		r, i = jsonscan.NextRune(raw, i)
		t, n := utf8.DecodeRuneInString(s[j:])
		j += n
		if r != t && !foldEqual(r, t) {
			return false
		}
	}
	return i == len(raw) && j == len(s)
}

// foldEqual reports whether r and t are equal under simple case folding.
func foldEqual(r, t rune) bool {
	if r == t {
		return true
	}
	if r < utf8.RuneSelf && t < utf8.RuneSelf {
		lower := r | 0x20 // maps 'A'-'Z' onto 'a'-'z'; other bytes are checked below
		return lower == t|0x20 && 'a' <= lower && lower <= 'z'
	}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f == t {
			return true
		}
	}
	return false
}
