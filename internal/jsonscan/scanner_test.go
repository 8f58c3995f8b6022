package jsonscan

import (
	"strings"
	"testing"
)

func nested(levels int) string {
	return strings.Repeat("[", levels) + strings.Repeat("]", levels)
}

// TestDepth: MaxDepth levels are valid, one more is not, and the readers
// of stored events still read the deeper value whole.
func TestDepth(t *testing.T) {
	if !Valid([]byte(nested(MaxDepth))) {
		t.Errorf("%d levels refused", MaxDepth)
	}
	if Valid([]byte(nested(MaxDepth + 1))) {
		t.Errorf("%d levels accepted", MaxDepth+1)
	}
	s := NewScanner([]byte(nested(MaxDepth+1)), 0)
	for _, ok := s.Next(); ok; _, ok = s.Next() {
	}
	if s.Err() != ErrDepth {
		t.Errorf("error %v, want ErrDepth", s.Err())
	}
	deep := `{"metadata":{"x":` + nested(600) + `},"title":"t"}`
	m := NewMembers([]byte(deep))
	var keys []string
	for k, v, ok := m.Next(); ok; k, v, ok = m.Next() {
		keys = append(keys, Unquote(k)+"="+string(v[:min(len(v), 8)]))
	}
	if !m.Valid() || strings.Join(keys, " ") != `metadata={"x":[[[ title="t"` {
		t.Errorf("members of a 601-level event: %q, valid %v", keys, m.Valid())
	}
	if v, ok := Lookup([]byte(deep), "title"); !ok || string(v) != `"t"` {
		t.Errorf("Lookup past a deep value: %q %v", v, ok)
	}
	if _, ok := Skip([]byte(`{"a":`+nested(600)[1:]+`}`), 0); ok {
		t.Error("Skip accepts an unbalanced deep value")
	}
}

// TestEqual: names match exactly after unescaping; nothing is folded.
func TestEqual(t *testing.T) {
	for _, tt := range []struct {
		raw, s string
		equal  bool
	}{
		{`title`, "title", true},
		{`\u0074itle`, "title", true},
		{`Title`, "title", false},
		{`TITLE`, "title", false},
		{`ſeverity`, "severity", false},
		{`\u017feverity`, "severity", false},
		{`k`, "\u212a", false},
		{`\u00e9t\u00C9`, "étÉ", true},
		{`\ud83d\ude00`, "😀", true},
		{`\ud83d`, "\ufffd", true},
		{"\xff", "\ufffd", true},
		{`a\/b\"\\\n`, "a/b\"\\\n", true},
		{`a\\b`, `a\\b`, false},
		{`titl`, "title", false},
		{`title`, "titl", false},
	} {
		if got := Equal([]byte(tt.raw), tt.s); got != tt.equal {
			t.Errorf("Equal(%q, %q) = %v", tt.raw, tt.s, got)
		}
		if got := Unquote([]byte(tt.raw)) == tt.s; got != tt.equal {
			t.Errorf("Unquote(%q) = %q, compared with %q: %v", tt.raw, Unquote([]byte(tt.raw)), tt.s, got)
		}
	}
}

// TestFlags: what a String token says about its content.
func TestFlags(t *testing.T) {
	for _, tt := range []struct {
		in    string
		flags Flags
	}{
		{`"abc"`, 0}, {`"a\nb"`, Escaped}, {`"<b>"`, Special}, {`"é"`, Special}, {`"\u00e9&"`, Escaped | Special},
	} {
		s := NewScanner([]byte(tt.in), 0)
		if tok, ok := s.Next(); !ok || tok.Kind != String || tok.Flags != tt.flags {
			t.Errorf("%s: %+v, want flags %b", tt.in, tok, tt.flags)
		}
	}
}
