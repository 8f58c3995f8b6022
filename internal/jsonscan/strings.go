package jsonscan

import (
	"bytes"
	"unicode/utf8"
)

// NextRune decodes the rune at raw[i], raw being the content of a JSON
// string the Scanner accepted, the way encoding/json decodes it: escapes
// resolved, a surrogate pair joined, a lone surrogate or a byte that is
// not UTF-8 read as U+FFFD. It returns the rune and the index after it.
func NextRune(raw []byte, i int) (rune, int) {
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
	if !isSurrogate(r) {
		return r, i
	}
	if r < 0xDC00 && i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
		if low := hex4(raw[i+2:]); 0xDC00 <= low && low < 0xE000 {
			return (r-0xD800)<<10 | (low - 0xDC00) + 0x10000, i + 6
		}
	}
	return utf8.RuneError, i
}

func hex4(b []byte) rune {
	return hexValue(b[0])<<12 | hexValue(b[1])<<8 | hexValue(b[2])<<4 | hexValue(b[3])
}

func isSurrogate(r rune) bool { return 0xD800 <= r && r < 0xE000 }

// Equal reports whether the JSON string content raw decodes to exactly s,
// compared rune by rune (a byte that is not UTF-8 reads as U+FFFD on
// either side). Nothing is folded: "Title" is not "title".
func Equal(raw []byte, s string) bool {
	if string(raw) == s {
		return bytes.IndexByte(raw, '\\') < 0 // an escape is longer than what it stands for
	}
	i, j := 0, 0
	for i < len(raw) && j < len(s) {
		var r, t rune
		r, i = NextRune(raw, i)
		t, n := utf8.DecodeRuneInString(s[j:])
		j += n
		if r != t {
			return false
		}
	}
	return i == len(raw) && j == len(s)
}

// needsDecoding reports whether raw holds an escape or a byte from 0x80
// (which may not be UTF-8), so that its bytes may not be its value.
func needsDecoding(raw []byte) bool {
	for _, c := range raw {
		if c == '\\' || c >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

// Unquote returns the string the JSON string content raw stands for, as
// encoding/json decodes it.
func Unquote(raw []byte) string {
	if !needsDecoding(raw) || bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return string(raw)
	}
	return string(AppendUnquoted(make([]byte, 0, len(raw)), raw))
}

// AppendUnquoted appends the decoded JSON string content raw to dst.
func AppendUnquoted(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		if c := raw[i]; c != '\\' && c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		var r rune
		r, i = NextRune(raw, i)
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}
