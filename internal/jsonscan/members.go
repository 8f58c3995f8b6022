package jsonscan

// Members iterates over the members of one JSON object, as readers of
// stored events need, without allocating:
//
//	m := jsonscan.NewMembers(body)
//	for key, value, ok := m.Next(); ok; key, value, ok = m.Next() { … }
//	if !m.Valid() { … the object was malformed … }
//
// key is the raw content of the name's string (between the quotes,
// escapes not decoded: compare it with Equal, decode it with Unquote),
// value the raw text of the member's value. Both alias the input. Values
// nested deeper than MaxDepth are read too (see Scanner.Lenient): events
// stored by older versions may hold them.
type Members struct {
	s     Scanner
	ended bool // the closing brace was read
}

// NewMembers starts iterating over object, which must hold one JSON
// object (leading and trailing whitespace allowed).
func NewMembers(object []byte) Members {
	m := Members{s: Scanner{Data: object, Lenient: true}}
	if t, ok := m.s.Next(); !ok || t.Kind != ObjectStart {
		m.s.fail(ErrSyntax)
	}
	return m
}

// Next returns the next member; ok is false once the object ends or turns
// out malformed (Valid tells which).
func (m *Members) Next() (key, value []byte, ok bool) {
	t, ok := m.s.Next()
	if !ok || t.Kind != Key {
		m.ended = ok && t.Kind == ObjectEnd
		return nil, nil, false
	}
	start, end, ok := m.s.skipValue()
	if !ok {
		return nil, nil, false
	}
	return m.s.Data[t.Start+1 : t.End-1], m.s.Data[start:end], true
}

// Pos is the index in the object just after the last value Next returned.
func (m *Members) Pos() int { return m.s.pos }

// Valid reports whether the whole input was one well-formed object; it is
// meaningful once Next has returned false.
func (m *Members) Valid() bool {
	return m.ended && skipSpace(m.s.Data, m.s.pos) == len(m.s.Data)
}

// skipValue reads the next value whole, returning its span.
func (s *Scanner) skipValue() (start, end int, ok bool) {
	depth := s.depth
	t, ok := s.Next()
	if !ok {
		return 0, 0, false
	}
	start = t.Start
	for s.depth > depth {
		if _, ok := s.Next(); !ok {
			return 0, 0, false
		}
	}
	return start, s.pos, true
}

// Elements iterates over the elements of one JSON array as Members does
// over an object's members.
type Elements struct {
	s     Scanner
	ended bool
}

// NewElements starts iterating over array, which must hold one JSON
// array (leading and trailing whitespace allowed).
func NewElements(array []byte) Elements {
	e := Elements{s: Scanner{Data: array, Lenient: true}}
	if t, ok := e.s.Next(); !ok || t.Kind != ArrayStart {
		e.s.fail(ErrSyntax)
	}
	return e
}

// Next returns the next element's raw text; ok is false once the array
// ends or turns out malformed (Valid tells which).
func (e *Elements) Next() (value []byte, ok bool) {
	t, ok := e.s.Next()
	if !ok || t.Kind == ArrayEnd {
		e.ended = ok
		return nil, false
	}
	for e.s.depth > 1 {
		if _, ok := e.s.Next(); !ok {
			return nil, false
		}
	}
	return e.s.Data[t.Start:e.s.pos], true
}

// Valid reports whether the whole input was one well-formed array; it is
// meaningful once Next has returned false.
func (e *Elements) Valid() bool {
	return e.ended && skipSpace(e.s.Data, e.s.pos) == len(e.s.Data)
}

// Lookup returns the value of the member of object named key, exactly
// (see Equal); the first such member if the name repeats, which nothing
// herald stores does (ingest refuses repeated names).
func Lookup(object []byte, key string) ([]byte, bool) {
	m := NewMembers(object)
	for k, v, ok := m.Next(); ok; k, v, ok = m.Next() {
		if Equal(k, key) {
			return v, true
		}
	}
	return nil, false
}

// StringContent returns the raw content of value (between the quotes) if
// it is a JSON string.
func StringContent(value []byte) ([]byte, bool) {
	if len(value) < 2 || value[0] != '"' {
		return nil, false
	}
	return value[1 : len(value)-1], true
}

// Pos is the index in the array just after the last value Next returned.
func (e *Elements) Pos() int { return e.s.pos }
