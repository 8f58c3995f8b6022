package herald

import (
	"github.com/herald-gw/herald/internal/jsonscan"
)

// This file indexes a stored event: it reads the few fields filters and
// dialects need out of Body with jsonscan, without reflection, keeping
// every string that needs no unescaping as a slice of one copy of Body.
// Names match exactly after unescaping ("\u006frg" is org, "Org" is not)
// and the first occurrence of a name counts (ingest refuses repeated
// names, and older versions stored events through a map, which could not
// repeat one). Values nested deeper than jsonscan.MaxDepth, which older
// versions accepted, are read too.

// Bits of decodeFields' seen mask, one per indexed field.
const (
	seenOrg = 1 << iota
	seenChannel
	seenEntity
	seenEntityUUID
	seenType
	seenDeviceUUID
	seenTimestamp
	seenSeverity
	seenTriggers
)

// decodeFields fills e's indexed fields from e.Body and reports whether
// Body is one valid JSON object.
func decodeFields(e *Event) bool {
	body := e.Body
	str := string(body) // the one copy every plain string is cut from
	var seen uint
	m := jsonscan.NewMembers(body)
	for key, value, ok := m.Next(); ok; key, value, ok = m.Next() {
		if string(value) == "null" {
			continue // null means absent, as encoding/json reads it
		}
		end := m.Pos()
		start := end - len(value)
		text := func() string { return stringValue(str, value, start, end) }
		name := string(key) // no allocation: only compared
		if !isPlain(key) {
			name = jsonscan.Unquote(key)
		}
		var bit uint
		switch name {
		case "org":
			bit = seenOrg
		case "channel":
			bit = seenChannel
		case "entity":
			bit = seenEntity
		case "entityUuid":
			bit = seenEntityUUID
		case "type":
			bit = seenType
		case "deviceUuid":
			bit = seenDeviceUUID
		case "timestampMs":
			bit = seenTimestamp
		case "severity":
			bit = seenSeverity
		case "policyAlertTriggers":
			bit = seenTriggers
		default:
			continue
		}
		if seen&bit != 0 {
			continue // the first occurrence counts
		}
		seen |= bit
		switch bit {
		case seenOrg:
			e.Org = text()
		case seenChannel:
			e.Channel = text()
		case seenEntity:
			e.Entity = text()
		case seenEntityUUID:
			e.EntityUUID = text()
		case seenType:
			e.Type = text()
		case seenDeviceUUID:
			e.DeviceUUID = text()
		case seenTimestamp:
			e.TimestampMs = parseInt64(value) // anything but an integer is 0
		case seenSeverity:
			e.Severity = text()
		case seenTriggers:
			e.Triggers = triggers(str, value, start)
		}
	}
	return m.Valid()
}

// isPlain reports whether a name's raw content is its value.
func isPlain(raw []byte) bool {
	for _, c := range raw {
		if c == '\\' {
			return false
		}
	}
	return true
}

// stringValue returns the string value, at str[start:end], if it is a
// JSON string, else "" (a field of another type is left empty rather than
// failing: ingest validated the types, and old data must stay readable).
func stringValue(str string, value []byte, start, end int) string {
	raw, ok := jsonscan.StringContent(value)
	if !ok {
		return ""
	}
	if isPlain(raw) {
		return str[start+1 : end-1]
	}
	return jsonscan.Unquote(raw)
}

// triggers reads policyAlertTriggers, the array value at str[start:]:
// its strings, "" for an item of another type; nil if it is not an array.
func triggers(str string, value []byte, start int) []string {
	if value[0] != '[' {
		return nil
	}
	n := 0
	items := jsonscan.NewElements(value)
	for _, ok := items.Next(); ok; _, ok = items.Next() {
		n++
	}
	list := make([]string, 0, n)
	items = jsonscan.NewElements(value)
	offset := start
	for item, ok := items.Next(); ok; item, ok = items.Next() {
		end := offset + items.Pos()
		list = append(list, stringValue(str, item, end-len(item), end))
	}
	return list
}

// parseInt64 is strconv.ParseInt(string(raw), 10, 64) for a JSON value,
// 0 where that fails, without converting raw to a string.
func parseInt64(raw []byte) int64 {
	neg := len(raw) > 0 && raw[0] == '-'
	digits := raw
	if neg {
		digits = raw[1:]
	}
	if len(digits) == 0 || len(digits) > 19 {
		return 0
	}
	var n uint64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + uint64(c-'0')
	}
	switch {
	case neg && n <= 1<<63:
		return int64(-n)
	case !neg && n < 1<<63:
		return int64(n)
	}
	return 0
}
