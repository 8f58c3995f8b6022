package jsonscan

// The lexical rules of RFC 8259 (and encoding/json): whitespace, strings,
// numbers, literals.

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

// Byte classes inside a string.
const (
	plain     = iota // stands for itself
	quote            // ends the string
	backslash        // starts an escape
	control          // below 0x20: not allowed
	special          // stands for itself, but see Special
)

var stringClass = func() (t [256]uint8) {
	for c := range 0x20 {
		t[c] = control
	}
	t['"'], t['\\'] = quote, backslash
	t['<'], t['>'], t['&'] = special, special, special
	for c := 0x80; c < 256; c++ {
		t[c] = special
	}
	return t
}()

// skipString returns the index after the string whose opening quote is
// b[i]. Like encoding/json it takes any byte from 0x20 up, valid UTF-8 or
// not, and checks only the form of escapes.
func skipString(b []byte, i int) (end int, flags Flags, ok bool) {
	for i++; i < len(b); i++ {
		for i < len(b) && stringClass[b[i]] == plain {
			i++
		}
		if i == len(b) {
			break
		}
		switch stringClass[b[i]] {
		case quote:
			return i + 1, flags, true
		case control:
			return 0, 0, false
		case special:
			flags |= Special
		case backslash:
			flags |= Escaped
			i++
			if i == len(b) {
				return 0, 0, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return 0, 0, false
				}
				for _, h := range b[i+1 : i+5] {
					if hexValue(h) < 0 {
						return 0, 0, false
					}
				}
				i += 4
			default:
				return 0, 0, false
			}
		}
	}
	return 0, 0, false
}

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

func skipLiteral(b []byte, i int, literal string) (int, bool) {
	if len(b)-i < len(literal) || string(b[i:i+len(literal)]) != literal {
		return 0, false
	}
	return i + len(literal), true
}
