package bench

import "bytes"

// Helpers of the JSON dialects' scanners. They read herald's messages by
// their fixed heads (the renderers write the same keys in the same order
// for every event), never decoding the JSON, and allocate nothing.

// cutPrefix is bytes.CutPrefix for a string prefix.
func cutPrefix(b []byte, prefix string) ([]byte, bool) {
	if len(b) < len(prefix) || string(b[:len(prefix)]) != prefix {
		return b, false
	}
	return b[len(prefix):], true
}

// skipString skips the rest of a JSON string whose opening quote was
// consumed; it returns what follows the closing quote.
func skipString(b []byte) ([]byte, bool) {
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return b[i+1:], true
		}
	}
	return nil, false
}

// quotedUint parses the decimal at the start of b, which must end with a
// quote; it returns what follows the quote.
func quotedUint(b []byte) (uint64, []byte, bool) {
	j := bytes.IndexByte(b, '"')
	if j < 0 {
		return 0, nil, false
	}
	n, ok := parseUint(b[:j])
	return n, b[j+1:], ok
}

// leadingInt parses the (non-negative) integer at the start of b.
func leadingInt(b []byte) (uint64, []byte, bool) {
	j := 0
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	n, ok := parseUint(b[:j])
	return n, b[j:], ok
}

// nextElement returns the first element of the JSON array whose opening
// bracket (or the comma after an element) precedes b, and what follows
// it; ok is false at the array's end or when b ends first. Strings and
// nesting are skipped properly, so a bracket or comma inside an element
// does not split it. Strings, most of an event's bytes, are skipped with
// IndexByte rather than byte by byte.
func nextElement(b []byte) (elem, rest []byte, ok bool) {
	depth, start := 0, -1
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch c {
		case '"':
			end := stringEnd(b[i+1:])
			if end < 0 {
				return nil, nil, false
			}
			if start < 0 {
				start = i
			}
			i += end + 1 // at the closing quote
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				if start < 0 {
					return nil, nil, false
				}
				return bytes.TrimRight(b[start:i], " \t\r\n"), b[i:], true
			}
			depth--
		case ',':
			if depth == 0 {
				if start < 0 {
					return nil, nil, false
				}
				return bytes.TrimRight(b[start:i], " \t\r\n"), b[i+1:], true
			}
		case ' ', '\t', '\r', '\n':
			continue
		}
		if start < 0 {
			start = i
		}
	}
	return nil, nil, false
}

// stringEnd returns the index in b of the quote that closes a JSON string
// whose opening quote precedes b (one not escaped by an odd number of
// backslashes), or -1.
func stringEnd(b []byte) int {
	from := 0
	for {
		j := bytes.IndexByte(b[from:], '"')
		if j < 0 {
			return -1
		}
		j += from
		k := j
		for k > 0 && b[k-1] == '\\' {
			k--
		}
		if (j-k)%2 == 0 {
			return j
		}
		from = j + 1
	}
}

func bytesContains(b []byte, s string) bool { return bytes.Contains(b, []byte(s)) }
