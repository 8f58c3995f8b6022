package herald

import "unicode/utf8"

// This file is DecodeEvent's fast path. Stored events are herald's own
// canonical JSON (ingest writes them with encoding/json from a map:
// compact, keys sorted and unique, strings escaped the standard way), so a
// scanner that knows the few indexed fields can decode them without
// reflection, keeping every string as a slice of one copy of Body. It
// accepts only input it decodes exactly as encoding/json would decode it
// into storedFields, and reports false for anything else (whitespace,
// escapes in an indexed string, keys that encoding/json would match case-
// insensitively, deep nesting…); DecodeEvent then falls back to
// encoding/json. FuzzDecodeEvent holds the two to the same result.

// maxScanDepth bounds the nesting the fast path skips through; deeper
// input goes to encoding/json (whose own limit is far higher).
const maxScanDepth = 64

// span is a half-open byte range of Body.
type span struct{ start, end int }

// canonicalEvent collects what the scanner found, as spans of the body,
// so that the strings are cut from a single copy at the end.
type canonicalEvent struct {
	org, channel, entity, entityUUID, typ, deviceUUID, severity span
	timestampMs                                                 int64
	hasTriggers                                                 bool // an array, possibly empty, was the last value
	triggers                                                    [maxTriggers]span
	numTriggers                                                 int
}

// maxTriggers is the longest policyAlertTriggers the fast path takes: a
// fixed array keeps canonicalEvent off the heap.
const maxTriggers = 8

// decodeCanonical fills e's indexed fields from body, the stored object
// with "id" already inserted first, and reports whether it could.
func decodeCanonical(e *Event, body []byte) bool {
	var c canonicalEvent
	s := scanner{b: body}
	if !s.object(&c) || s.i != len(body) {
		return false
	}
	str := string(body)
	cut := func(sp span) string { return str[sp.start:sp.end] }
	e.Org, e.Channel, e.Entity = cut(c.org), cut(c.channel), cut(c.entity)
	e.EntityUUID, e.Type, e.DeviceUUID = cut(c.entityUUID), cut(c.typ), cut(c.deviceUUID)
	e.Severity = cut(c.severity)
	e.TimestampMs = c.timestampMs
	if c.hasTriggers {
		e.Triggers = make([]string, c.numTriggers)
		for i, sp := range c.triggers[:c.numTriggers] {
			e.Triggers[i] = cut(sp)
		}
	}
	return true
}

// indexedKeys are storedFields' JSON names.
var indexedKeys = [...]string{"org", "channel", "entity", "entityUuid", "type", "deviceUuid",
	"timestampMs", "severity", "policyAlertTriggers"}

// scanner reads a JSON document strictly (RFC 8259, no whitespace outside
// strings); every method returns false at the first byte it does not
// accept, leaving the decision to encoding/json.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) expect(c byte) bool {
	if s.peek() != c {
		return false
	}
	s.i++
	return true
}

// object reads the top-level object, storing indexed members in c.
func (s *scanner) object(c *canonicalEvent) bool {
	if !s.expect('{') {
		return false
	}
	if s.expect('}') {
		return true
	}
	for {
		key, ok := s.plainString()
		if !ok || !s.expect(':') || !s.member(c, s.b[key.start:key.end]) {
			return false
		}
		if s.expect('}') {
			return true
		}
		if !s.expect(',') {
			return false
		}
	}
}

// member reads the value of the top-level member key.
func (s *scanner) member(c *canonicalEvent, key []byte) bool {
	switch string(key) { // no allocation: the compiler compares the bytes

	case "org":
		return s.indexedString(&c.org)
	case "channel":
		return s.indexedString(&c.channel)
	case "entity":
		return s.indexedString(&c.entity)
	case "entityUuid":
		return s.indexedString(&c.entityUUID)
	case "type":
		return s.indexedString(&c.typ)
	case "deviceUuid":
		return s.indexedString(&c.deviceUUID)
	case "timestampMs":
		start := s.i
		if !s.value(1) {
			return false
		}
		// encoding/json keeps the raw value and DecodeEvent parses it as
		// an integer: anything else is 0. The last occurrence wins.
		c.timestampMs = parseInt64(s.b[start:s.i])
		return true
	case "severity":
		if s.peek() == '"' {
			return s.indexedString(&c.severity)
		}
		// Not a string: DecodeEvent ignores it.
		c.severity = span{}
		return s.value(1)
	case "policyAlertTriggers":
		return s.triggers(c)
	}
	// encoding/json also matches names case-insensitively, with Unicode
	// folding: leave any name that might match to it.
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	for _, k := range indexedKeys {
		if asciiEqualFold(key, k) {
			return false
		}
	}
	return s.value(1)
}

// indexedString reads an indexed string field: a string without escapes
// into sp; null leaves sp as it was, as encoding/json does.
func (s *scanner) indexedString(sp *span) bool {
	if s.peek() == 'n' {
		return s.literal("null")
	}
	v, ok := s.plainString()
	if ok {
		*sp = v
	}
	return ok
}

// triggers reads policyAlertTriggers: an array of strings without
// escapes, null (no triggers), or any value that is not an array, which
// DecodeEvent ignores. Arrays of anything else go to encoding/json, which
// decodes them partially.
func (s *scanner) triggers(c *canonicalEvent) bool {
	c.numTriggers = 0
	c.hasTriggers = false
	if s.peek() != '[' {
		return s.value(1)
	}
	s.i++
	c.hasTriggers = true
	if s.expect(']') {
		return true
	}
	for {
		v, ok := s.plainString()
		if !ok || c.numTriggers == maxTriggers {
			return false
		}
		c.triggers[c.numTriggers] = v
		c.numTriggers++
		if s.expect(']') {
			return true
		}
		if !s.expect(',') {
			return false
		}
	}
}

// plainString reads a string with no escapes, control characters or
// invalid UTF-8, whose bytes are then its value, and returns the span of
// its contents.
func (s *scanner) plainString() (span, bool) {
	if !s.expect('"') {
		return span{}, false
	}
	start := s.i
	ascii := true
	for s.i < len(s.b) {
		if plainASCII[s.b[s.i]] {
			s.i++
			continue
		}
		switch c := s.b[s.i]; {
		case c == '"':
			sp := span{start, s.i}
			s.i++
			return sp, ascii || utf8.Valid(s.b[sp.start:sp.end])
		case c >= utf8.RuneSelf:
			ascii = false
			s.i++
		default: // an escape or a control character
			return span{}, false
		}
	}
	return span{}, false
}

// plainASCII holds the bytes a string may contain that need no second
// look: printable ASCII but the quote and the backslash. stringByte
// adds every byte from 0x80, which encoding/json accepts as they are.
var plainASCII, stringByte = func() (plain, str [256]bool) {
	for c := 0x20; c < 256; c++ {
		if c != '"' && c != '\\' {
			plain[c], str[c] = c < utf8.RuneSelf, true
		}
	}
	return plain, str
}()

// value skips any JSON value, validating it.
func (s *scanner) value(depth int) bool {
	if depth > maxScanDepth {
		return false
	}
	switch c := s.peek(); {
	case c == '"':
		return s.skipString()
	case c == '{':
		s.i++
		if s.expect('}') {
			return true
		}
		for {
			if !s.skipString() || !s.expect(':') || !s.value(depth+1) {
				return false
			}
			if s.expect('}') {
				return true
			}
			if !s.expect(',') {
				return false
			}
		}
	case c == '[':
		s.i++
		if s.expect(']') {
			return true
		}
		for {
			if !s.value(depth + 1) {
				return false
			}
			if s.expect(']') {
				return true
			}
			if !s.expect(',') {
				return false
			}
		}
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return false
}

// skipString skips a string, escapes included; like encoding/json it
// accepts any byte from 0x20 up, valid UTF-8 or not.
func (s *scanner) skipString() bool {
	if !s.expect('"') {
		return false
	}
	for s.i < len(s.b) {
		if stringByte[s.b[s.i]] {
			s.i++
			continue
		}
		c := s.b[s.i]
		s.i++
		switch {
		case c == '"':
			return true
		case c < 0x20:
			return false
		case c == '\\':
			switch s.peek() {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				s.i++
				for range 4 {
					if !isHex(s.peek()) {
						return false
					}
					s.i++
				}
			default:
				return false
			}
		}
	}
	return false
}

// asciiEqualFold reports whether key and k are equal ignoring ASCII case.
func asciiEqualFold(key []byte, k string) bool {
	if len(key) != len(k) {
		return false
	}
	for i := range key {
		a, b := key[i], k[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// number skips a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() bool {
	s.expect('-')
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case c >= '1' && c <= '9':
		s.digits()
	default:
		return false
	}
	if s.expect('.') && !s.digits() {
		return false
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// digits skips [0-9]* and reports whether there was at least one.
func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

func (s *scanner) literal(word string) bool {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return false
	}
	s.i += len(word)
	return true
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
