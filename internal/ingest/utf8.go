package ingest

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/herald-gw/herald"
)

// Every string of a stored event goes out in WebSocket text frames, which
// must be UTF-8 (RFC 6455 §5.6): a client that checks (Python's
// websocket-client and websockets, browsers) fails on the frame, and on
// every resume that replays it. encoding/json reads raw bytes that are not
// UTF-8 inside a string, and escaped lone surrogates ("\ud800"), without
// complaint; json.RawMessage keeps them as sent. So ingest refuses both,
// anywhere in the event: keys, values, nested or passed through.

// checkText returns an error naming the first string of the event raw (a
// valid JSON value) that is not valid UTF-8, counting an escaped lone
// surrogate as invalid; nil if there is none.
func checkText(raw []byte) *herald.Error {
	if utf8.Valid(raw) && !mayHaveSurrogate(raw) {
		return nil
	}
	w := textWalker{b: raw}
	w.value()
	return w.err
}

// mayHaveSurrogate reports whether raw holds a \u escape in the surrogate
// range D800–DFFF (or an escaped backslash followed by such text: the
// walker tells the two apart).
func mayHaveSurrogate(raw []byte) bool {
	for {
		i := bytes.Index(raw, []byte(`\u`))
		if i < 0 || i+3 >= len(raw) {
			return false
		}
		if (raw[i+2] == 'd' || raw[i+2] == 'D') && strings.IndexByte("89abcdefABCDEF", raw[i+3]) >= 0 {
			return true
		}
		raw = raw[i+2:]
	}
}

// textWalker walks a valid JSON value, keeping the path to where it is
// for the error message.
type textWalker struct {
	b    []byte
	i    int
	path []string // member names (decoded) and "[n]" indexes from the top
	err  *herald.Error
}

func (w *textWalker) space() {
	for w.i < len(w.b) && (w.b[w.i] == ' ' || w.b[w.i] == '\t' || w.b[w.i] == '\n' || w.b[w.i] == '\r') {
		w.i++
	}
}

// value walks one value and stops at the first invalid string.
func (w *textWalker) value() {
	w.space()
	if w.i == len(w.b) {
		return
	}
	switch w.b[w.i] {
	case '"':
		if detail := w.str(); detail != "" {
			w.fail(false, detail)
		}
	case '{':
		w.i++
		for w.err == nil {
			w.space()
			if w.i == len(w.b) || w.b[w.i] == '}' {
				w.i++
				return
			}
			if w.b[w.i] == ',' {
				w.i++
				w.space()
			}
			start := w.i
			detail := w.str()
			w.path = append(w.path, decodeName(w.b[start:w.i]))
			if detail != "" {
				w.fail(true, detail)
				return
			}
			w.space()
			w.i++ // ':'
			w.value()
			w.path = w.path[:len(w.path)-1]
		}
	case '[':
		w.i++
		for n := 0; w.err == nil; n++ {
			w.space()
			if w.i == len(w.b) || w.b[w.i] == ']' {
				w.i++
				return
			}
			if w.b[w.i] == ',' {
				w.i++
			}
			w.path = append(w.path, "["+strconv.Itoa(n)+"]")
			w.value()
			w.path = w.path[:len(w.path)-1]
		}
	default: // a number or a literal
		for w.i < len(w.b) && strings.IndexByte(",]} \t\n\r", w.b[w.i]) < 0 {
			w.i++
		}
	}
}

// str reads the string at w.i and says what is wrong with it, "" if
// nothing.
func (w *textWalker) str() string {
	w.i++ // '"'
	start := w.i
	detail := ""
	for w.i < len(w.b) {
		c := w.b[w.i]
		switch {
		case c == '"':
			w.i++
			return detail
		case c == '\\' && w.i+1 < len(w.b) && w.b[w.i+1] == 'u':
			r, ok := hex4(w.b[w.i+2:])
			if !ok || detail != "" || !utf16.IsSurrogate(r) {
				w.i += 2
				continue
			}
			if r < 0xDC00 && w.i+12 <= len(w.b) && w.b[w.i+6] == '\\' && w.b[w.i+7] == 'u' {
				// A high half: fine if a low one follows.
				if lo, ok := hex4(w.b[w.i+8:]); ok && lo >= 0xDC00 && lo <= 0xDFFF {
					w.i += 12
					continue
				}
			}
			detail = "the escape " + string(w.b[w.i:w.i+6]) + " at byte " + strconv.Itoa(w.i-start) +
				" of the string is half of a UTF-16 surrogate pair, alone"
			w.i += 6
		case c == '\\':
			w.i += 2
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(w.b[w.i:])
			if r == utf8.RuneError && size == 1 && detail == "" {
				detail = "byte " + strconv.Itoa(w.i-start) + " of the string (0x" +
					strconv.FormatUint(uint64(c), 16) + ") is not part of a UTF-8 character"
			}
			w.i += size
		default:
			w.i++
		}
	}
	return detail
}

// hex4 reads four hex digits.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[:4]), 16, 16)
	return rune(n), err == nil
}

// decodeName decodes a JSON string as encoding/json does, invalid text
// becoming U+FFFD: the name as it can be shown in an error.
func decodeName(quoted []byte) string {
	var s string
	if json.Unmarshal(quoted, &s) != nil {
		return strings.ToValidUTF8(string(quoted), "\uFFFD")
	}
	return s
}

// fail records the error for the string just read: a member name if
// isName, else a value.
func (w *textWalker) fail(isName bool, detail string) {
	var field, where string
	if len(w.path) > 0 {
		field = w.path[0]
	}
	if len(w.path) > 1 {
		where = w.path[0]
		for _, p := range w.path[1:] {
			if !strings.HasPrefix(p, "[") {
				where += "."
			}
			where += p
		}
	}
	var msg string
	switch {
	case isName && where == "":
		msg = "the name is not valid UTF-8: " + detail
	case isName:
		msg = "the name " + where + " is not valid UTF-8: " + detail
	case where == "":
		msg = "is not valid UTF-8: " + detail
	default:
		msg = where + " is not valid UTF-8: " + detail
	}
	w.err = fieldError(field, msg+"; text must be UTF-8")
}
