// Package jsonscan is herald's one JSON tokenizer: ingest validates and
// compacts events with it, herald.DecodeEvent indexes stored events with
// it, and the renderers read stored bodies with it. It never allocates on
// the paths they run per event and per recipient, and holds every reader
// to one set of rules:
//
//   - the grammar is RFC 8259's, exactly what encoding/json's Valid
//     accepts (FuzzScanner holds the two together);
//   - keys match exactly, after unescaping ("\u0074itle" is "title",
//     "Title" is not): nothing is folded, unlike encoding/json's struct
//     fields;
//   - nesting is bounded by MaxDepth, which ingest enforces, so nothing
//     herald stores from now on is deeper. Readers of stored events
//     (Members, Elements) still read deeper values that older versions
//     stored, validating them with encoding/json instead.
//
// It imports nothing from herald, so the root package can use it.
package jsonscan

import (
	"encoding/json"
	"errors"
)

// MaxDepth is the deepest nesting an event may have, the event object
// itself being level 1: `{"a":{"b":[1]}}` is 3 levels deep. Canonical
// events are flat, with a few small objects (telemetry metrics, metadata);
// 64 leaves room for any real producer's pass-through data while keeping
// the scanner's stack of object/array bits in one machine word.
const MaxDepth = 64

// Errors a Scanner stops with.
var (
	ErrSyntax = errors.New("not valid JSON")
	ErrDepth  = errors.New("nested deeper than 64 levels")
)

// Kind is the kind of a Token.
type Kind uint8

// Token kinds. A Key token is a member name; the colon after it is part
// of it. Commas belong to no token.
const (
	ObjectStart Kind = iota + 1
	ObjectEnd
	ArrayStart
	ArrayEnd
	Key
	String
	Number
	True
	False
	Null
	// Deep is a whole container nested deeper than MaxDepth, which a
	// Scanner made with Lenient reads as one token, checked by
	// encoding/json.
	Deep
)

// Flags describe a String or Key token.
type Flags uint8

const (
	// Escaped: the string holds a backslash escape, so its raw content
	// is not its value.
	Escaped Flags = 1 << iota
	// Special: the string holds a byte that encoding/json escapes when it
	// marshals (<, >, &) or a byte from 0x80 (non-ASCII text, possibly
	// invalid UTF-8, possibly U+2028 or U+2029).
	Special
)

// Token is one token of a JSON text: Data[Start:End] is its raw text,
// the quotes included for strings and keys (the colon not included).
type Token struct {
	Kind       Kind
	Flags      Flags
	Start, End int
}

// What a Scanner expects next.
const (
	expectValue      uint8 = iota // at the start, after a key, after a comma in an array
	expectValueOrEnd              // after '['
	expectKeyOrEnd                // after '{'
	expectKey                     // after a comma in an object
	expectCommaOrEnd              // after a value in a container
	expectNothing                 // the value is complete
	failed
)

// Scanner reads one JSON value from Data, token by token:
//
//	s := jsonscan.Scanner{Data: b}
//	for t, ok := s.Next(); ok; t, ok = s.Next() { … }
//	if s.Err() != nil { … }
//
// It stops after the value; Pos then says where the value ended (trailing
// whitespace is the caller's business: Valid refuses anything after it).
type Scanner struct {
	Data []byte
	// Lenient makes a container nested deeper than MaxDepth one Deep
	// token instead of the error ErrDepth.
	Lenient bool

	pos   int
	depth int    // open containers
	kinds uint64 // bit d-1 is set when level d is an object
	state uint8
	err   error
}

// NewScanner returns a Scanner reading the value at data[pos:].
func NewScanner(data []byte, pos int) Scanner { return Scanner{Data: data, pos: pos} }

// Pos is the index just after the last token read.
func (s *Scanner) Pos() int { return s.pos }

// Depth is the number of containers open.
func (s *Scanner) Depth() int { return s.depth }

// Done reports whether a whole value has been read.
func (s *Scanner) Done() bool { return s.state == expectNothing }

// Err is ErrSyntax or ErrDepth once Next has failed, else nil.
func (s *Scanner) Err() error { return s.err }

// Next returns the next token; ok is false when the value is complete or
// the input turned out malformed (Err tells which).
func (s *Scanner) Next() (t Token, ok bool) {
	b := s.Data
	i := skipSpace(b, s.pos)
	switch s.state {
	case expectCommaOrEnd:
		if i == len(b) {
			return s.fail(ErrSyntax)
		}
		object := s.kinds&(1<<(s.depth-1)) != 0
		switch c := b[i]; {
		case c == ',':
			i = skipSpace(b, i+1)
			if object {
				return s.key(i)
			}
		case c == '}' && object || c == ']' && !object:
			return s.close(i)
		default:
			return s.fail(ErrSyntax)
		}
	case expectKeyOrEnd:
		if i < len(b) && b[i] == '}' {
			return s.close(i)
		}
		return s.key(i)
	case expectKey:
		return s.key(i)
	case expectValueOrEnd:
		if i < len(b) && b[i] == ']' {
			return s.close(i)
		}
	case expectNothing, failed:
		return Token{}, false
	}
	return s.value(i)
}

func (s *Scanner) fail(err error) (Token, bool) {
	s.state, s.err = failed, err
	return Token{}, false
}

// key reads `"name" :` at b[i].
func (s *Scanner) key(i int) (Token, bool) {
	b := s.Data
	if i == len(b) || b[i] != '"' {
		return s.fail(ErrSyntax)
	}
	end, flags, ok := skipString(b, i)
	if !ok {
		return s.fail(ErrSyntax)
	}
	j := skipSpace(b, end)
	if j == len(b) || b[j] != ':' {
		return s.fail(ErrSyntax)
	}
	s.pos, s.state = j+1, expectValue
	return Token{Kind: Key, Flags: flags, Start: i, End: end}, true
}

// close reads the '}' or ']' at b[i].
func (s *Scanner) close(i int) (Token, bool) {
	kind := ArrayEnd
	if s.Data[i] == '}' {
		kind = ObjectEnd
	}
	s.depth--
	s.pos = i + 1
	s.afterValue()
	return Token{Kind: kind, Start: i, End: i + 1}, true
}

func (s *Scanner) afterValue() {
	if s.depth == 0 {
		s.state = expectNothing
	} else {
		s.state = expectCommaOrEnd
	}
}

// value reads the value that starts at b[i].
func (s *Scanner) value(i int) (Token, bool) {
	b := s.Data
	if i == len(b) {
		return s.fail(ErrSyntax)
	}
	t := Token{Start: i}
	var ok bool
	switch c := b[i]; c {
	case '{', '[':
		if s.depth == MaxDepth {
			if !s.Lenient {
				return s.fail(ErrDepth)
			}
			if t.End, ok = skipDeep(b, i); !ok {
				return s.fail(ErrSyntax)
			}
			t.Kind = Deep
			break
		}
		s.depth++
		s.pos = i + 1
		if c == '{' {
			s.kinds |= 1 << (s.depth - 1)
			s.state = expectKeyOrEnd
			return Token{Kind: ObjectStart, Start: i, End: i + 1}, true
		}
		s.kinds &^= 1 << (s.depth - 1)
		s.state = expectValueOrEnd
		return Token{Kind: ArrayStart, Start: i, End: i + 1}, true
	case '"':
		t.Kind = String
		t.End, t.Flags, ok = skipString(b, i)
	case 't':
		t.Kind = True
		t.End, ok = skipLiteral(b, i, "true")
	case 'f':
		t.Kind = False
		t.End, ok = skipLiteral(b, i, "false")
	case 'n':
		t.Kind = Null
		t.End, ok = skipLiteral(b, i, "null")
	default:
		t.Kind = Number
		t.End, ok = skipNumber(b, i)
	}
	if !ok {
		return s.fail(ErrSyntax)
	}
	s.pos = t.End
	s.afterValue()
	return t, true
}

// skipDeep returns the end of the container at b[i], nested deeper than
// a Scanner follows: brackets are counted (strings skipped), and what they
// enclose is checked by encoding/json, whose limit is 10,000 levels. Only
// events stored by older versions of herald come here.
func skipDeep(b []byte, i int) (int, bool) {
	start, depth := i, 0
	for i < len(b) {
		switch b[i] {
		case '"':
			end, _, ok := skipString(b, i)
			if !ok {
				return 0, false
			}
			i = end
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1, json.Valid(b[start : i+1])
			}
		}
		i++
	}
	return 0, false
}

// Valid reports whether data is one JSON value, surrounded by nothing but
// whitespace, nested at most MaxDepth levels.
func Valid(data []byte) bool {
	s := Scanner{Data: data}
	for _, ok := s.Next(); ok; _, ok = s.Next() {
	}
	return s.Done() && skipSpace(data, s.pos) == len(data)
}

// Skip returns the index after the value that starts at data[pos]
// (leading whitespace allowed), reading values deeper than MaxDepth as
// Lenient does.
func Skip(data []byte, pos int) (int, bool) {
	s := Scanner{Data: data, pos: pos, Lenient: true}
	for _, ok := s.Next(); ok; _, ok = s.Next() {
	}
	return s.pos, s.Done()
}
