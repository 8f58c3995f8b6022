package stomp

import "strings"

// escaping is the set of header escapes a version defines.
type escaping uint8

const (
	escape12   escaping = iota // \r \n \c \\
	escape11                   // \n \c \\
	escapeNone                 // 1.0: backslashes are literal
)

// escapingFor maps a version string to its escaping. Unknown strings get the
// 1.2 rules: they are the strictest, so a typo cannot loosen parsing.
func escapingFor(v string) escaping {
	switch v {
	case V10:
		return escapeNone
	case V11:
		return escape11
	}
	return escape12
}

// escapeByte returns the letter that follows the backslash when c must be
// escaped under m, or 0 when c goes through as it is.
func escapeByte(m escaping, c byte) byte {
	if m == escapeNone {
		return 0
	}
	switch c {
	case '\\':
		return '\\'
	case '\n':
		return 'n'
	case ':':
		return 'c'
	case '\r':
		if m == escape12 {
			return 'r'
		}
	}
	return 0
}

// Escape returns s escaped for version v (1.2 all four, 1.1 no \r, 1.0 none).
// It returns s itself, without allocating, when nothing needs escaping.
func Escape(v, s string) string {
	m := escapingFor(v)
	for i := 0; i < len(s); i++ {
		if escapeByte(m, s[i]) != 0 {
			var b strings.Builder
			b.Grow(len(s) + 8)
			b.WriteString(s[:i])
			for ; i < len(s); i++ {
				if e := escapeByte(m, s[i]); e != 0 {
					b.WriteByte('\\')
					b.WriteByte(e)
				} else {
					b.WriteByte(s[i])
				}
			}
			return b.String()
		}
	}
	return s
}

// appendEscaped appends s escaped under m; it never allocates beyond
// growing dst, which keeps the per-recipient MESSAGE headers allocation-free.
func appendEscaped(dst []byte, m escaping, s string) []byte {
	if m == escapeNone {
		return append(dst, s...)
	}
	start := 0
	for i := 0; i < len(s); i++ {
		if e := escapeByte(m, s[i]); e != 0 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', e)
			start = i + 1
		}
	}
	return append(dst, s[start:]...)
}

// unescape decodes the escapes of s under m. ok is false on a sequence the
// version does not define (such as \t, \r in 1.1, or a trailing backslash),
// which the spec makes a fatal protocol error. Without a backslash it returns
// s itself, so common headers cost no allocation.
func unescape(m escaping, s string) (string, bool) {
	if m == escapeNone {
		return s, true
	}
	i := strings.IndexByte(s, '\\')
	if i < 0 {
		return s, true
	}
	var b strings.Builder
	b.Grow(len(s) - 1)
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(s) {
			return "", false
		}
		switch s[i] {
		case '\\':
			c = '\\'
		case 'n':
			c = '\n'
		case 'c':
			c = ':'
		case 'r':
			if m != escape12 {
				return "", false
			}
			c = '\r'
		default:
			return "", false
		}
		b.WriteByte(c)
	}
	return b.String(), true
}
