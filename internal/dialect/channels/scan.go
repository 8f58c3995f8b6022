package channels

import (
	"unicode"
	"unicode/utf8"
)

// This file reads the top-level members of a JSON object without
// allocating, so that Match can look at "status", "alert_type" or the
// telemetry keys of an event's Body on the fan-out path. Bodies are
// herald's canonical compact JSON, but events decoded by the slow path may
// carry whitespace, so the scanner accepts any RFC 8259 text. It validates
// what it skips (strings, numbers, literals, nesting) and accepts exactly
// the objects encoding/json's Valid accepts, up to maxDepth levels of
// nesting; FuzzScanner holds it to that.

// maxDepth bounds the nesting the scanner skips through; its stack of
// object/array bits is a fixed array so that it stays off the heap.
const maxDepth = 512

// members iterates over the top-level members of one JSON object:
//
//	m := newMembers(body)
//	for key, value, ok := m.next(); ok; key, value, ok = m.next() { … }
//	if !m.valid() { … the object was malformed … }
//
// key is the raw content of the key's string (between the quotes, escapes
// not decoded; compare it with rawEqual or rawEqualFold), value the raw
// bytes of the member's value. Both alias the input.
type members struct {
	b     []byte
	i     int
	state uint8
}

const (
	stateFirst uint8 = iota // after '{'
	stateMore               // after a member
	stateEnd                // after '}' and trailing whitespace
	stateBad                // malformed
)

// newMembers starts iterating over b, which must hold one JSON object
// (leading and trailing whitespace allowed).
func newMembers(b []byte) members {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return members{b: b, i: i, state: stateBad}
	}
	return members{b: b, i: i + 1, state: stateFirst}
}

// next returns the next member; ok is false once the object ends or turns
// out malformed (valid tells which).
func (m *members) next() (key, value []byte, ok bool) {
	if m.state >= stateEnd {
		return nil, nil, false
	}
	b, i := m.b, skipSpace(m.b, m.i)
	if i >= len(b) {
		return m.fail()
	}
	switch {
	case b[i] == '}':
		m.i = skipSpace(b, i+1)
		m.state = stateEnd
		if m.i != len(b) {
			m.state = stateBad
		}
		return nil, nil, false
	case m.state == stateMore:
		if b[i] != ',' {
			return m.fail()
		}
		i = skipSpace(b, i+1)
	}
	ks, ke, i, good := memberKey(b, i)
	if !good {
		return m.fail()
	}
	vs := i
	ve, good := skipValue(b, vs)
	if !good {
		return m.fail()
	}
	m.i, m.state = ve, stateMore
	return b[ks:ke], b[vs:ve], true
}

func (m *members) fail() ([]byte, []byte, bool) {
	m.state = stateBad
	return nil, nil, false
}

// valid reports whether the whole input was one well-formed object; it is
// meaningful once next has returned false.
func (m *members) valid() bool { return m.state == stateEnd }

// lookup returns the value of the first top-level member of the object
// body named key.
func lookup(body []byte, key string) ([]byte, bool) {
	m := newMembers(body)
	for k, v, ok := m.next(); ok; k, v, ok = m.next() {
		if rawEqual(k, key) {
			return v, true
		}
	}
	return nil, false
}

// memberKey reads `"key" :` followed by whitespace at b[i] and returns the
// key's content span and the index of the value.
func memberKey(b []byte, i int) (start, end, next int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, 0, 0, false
	}
	end, ok = skipString(b, i)
	if !ok {
		return 0, 0, 0, false
	}
	j := skipSpace(b, end)
	if j >= len(b) || b[j] != ':' {
		return 0, 0, 0, false
	}
	return i + 1, end - 1, skipSpace(b, j+1), true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index after the string that starts with the quote
// at b[i].
func skipString(b []byte, i int) (int, bool) {
	for i++; i < len(b); i++ {
		for i < len(b) && plain[b[i]] {
			i++
		}
		if i >= len(b) {
			break
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return 0, false
		case c == '\\':
			i++
			if i >= len(b) {
				return 0, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return 0, false
				}
				for _, h := range b[i+1 : i+5] {
					if hexValue(h) < 0 {
						return 0, false
					}
				}
				i += 4
			default:
				return 0, false
			}
		}
	}
	return 0, false
}

// plain marks the bytes that stand for themselves inside a JSON string.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func hexValue(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// skipNumber returns the index after the number that starts at b[i]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func skipNumber(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

func skipLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}

// skipValue returns the index after the JSON value that starts at b[i]
// (which must not be whitespace). Nested containers are walked iteratively
// with a bit per level: 1 for an object, 0 for an array.
func skipValue(b []byte, i int) (int, bool) {
	var stack [maxDepth / 64]uint64
	depth := 0
	isObject := func() bool { return stack[(depth-1)/64]&(1<<((depth-1)%64)) != 0 }
	for {
		// A value starts at b[i].
		if i >= len(b) {
			return 0, false
		}
		ok := true
		switch c := b[i]; {
		case c == '{' || c == '[':
			j := skipSpace(b, i+1)
			if j < len(b) && b[j] == c+2 { // '}' is '{'+2, ']' is '['+2
				i = j + 1
				break
			}
			if depth == maxDepth {
				return 0, false
			}
			depth++
			w, bit := (depth-1)/64, uint64(1)<<((depth-1)%64)
			if c == '{' {
				stack[w] |= bit
				if _, _, j, ok = memberKey(b, j); !ok {
					return 0, false
				}
			} else {
				stack[w] &^= bit
			}
			i = j
			continue
		case c == '"':
			i, ok = skipString(b, i)
		case c == 't':
			i, ok = skipLiteral(b, i, "true")
		case c == 'f':
			i, ok = skipLiteral(b, i, "false")
		case c == 'n':
			i, ok = skipLiteral(b, i, "null")
		default:
			i, ok = skipNumber(b, i)
		}
		if !ok {
			return 0, false
		}
		// A value ended at i: close containers until one continues.
		for {
			if depth == 0 {
				return i, true
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return 0, false
			}
			closer := byte(']')
			if isObject() {
				closer = '}'
			}
			if b[i] == closer {
				i++
				depth--
				continue
			}
			if b[i] != ',' {
				return 0, false
			}
			i = skipSpace(b, i+1)
			if isObject() {
				if _, _, i, ok = memberKey(b, i); !ok {
					return 0, false
				}
			}
			break
		}
	}
}

// nextRune decodes the rune at raw[i], raw being the content of a JSON
// string that skipString accepted, the way encoding/json decodes it:
// escapes resolved, a surrogate pair joined, a lone surrogate or an
// invalid UTF-8 byte read as U+FFFD.
func nextRune(raw []byte, i int) (rune, int) {
	c := raw[i]
	if c != '\\' {
		if c < utf8.RuneSelf {
			return rune(c), i + 1
		}
		r, n := utf8.DecodeRune(raw[i:])
		return r, i + n
	}
	switch raw[i+1] {
	case 'b':
		return '\b', i + 2
	case 'f':
		return '\f', i + 2
	case 'n':
		return '\n', i + 2
	case 'r':
		return '\r', i + 2
	case 't':
		return '\t', i + 2
	case 'u':
	default: // '"', '\\', '/'
		return rune(raw[i+1]), i + 2
	}
	r := hex4(raw[i+2:])
	i += 6
	if !utf16IsSurrogate(r) {
		return r, i
	}
	if r < 0xDC00 && i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
		if lo := hex4(raw[i+2:]); 0xDC00 <= lo && lo < 0xE000 {
			return (r-0xD800)<<10 | (lo - 0xDC00) + 0x10000, i + 6
		}
	}
	return utf8.RuneError, i
}

func hex4(b []byte) rune {
	return hexValue(b[0])<<12 | hexValue(b[1])<<8 | hexValue(b[2])<<4 | hexValue(b[3])
}

func utf16IsSurrogate(r rune) bool { return 0xD800 <= r && r < 0xE000 }

// rawEqual reports whether the JSON string content raw decodes to s
// (compared rune by rune, an invalid UTF-8 byte on either side reading as
// U+FFFD).
func rawEqual(raw []byte, s string) bool {
	if !hasBackslash(raw) && string(raw) == s {
		return true
	}
	return rawCompare(raw, s, false)
}

// rawEqualFold is rawEqual under Unicode simple case folding, as
// strings.EqualFold compares.
func rawEqualFold(raw []byte, s string) bool {
	return rawCompare(raw, s, true)
}

func rawCompare(raw []byte, s string, fold bool) bool {
	i, j := 0, 0
	for i < len(raw) && j < len(s) {
		var r, t rune
		r, i = nextRune(raw, i)
		if c := s[j]; c < utf8.RuneSelf {
			t, j = rune(c), j+1
		} else {
			var n int
			t, n = utf8.DecodeRuneInString(s[j:])
			j += n
		}
		if r != t && (!fold || !foldEqual(r, t)) {
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

func hasBackslash(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

// stringValue returns the content of value if it is a JSON string.
func stringValue(value []byte) ([]byte, bool) {
	if len(value) < 2 || value[0] != '"' {
		return nil, false
	}
	return value[1 : len(value)-1], true
}
