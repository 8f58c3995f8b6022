package channels

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

type member struct{ key, value string }

// scanAll collects the members the scanner yields, with keys decoded.
func scanAll(b []byte) ([]member, bool) {
	var got []member
	m := newMembers(b)
	for k, v, ok := m.next(); ok; k, v, ok = m.next() {
		got = append(got, member{decodeKey(k), string(v)})
	}
	return got, m.valid()
}

// stdMembers is what encoding/json reads from b: its top-level members in
// order, values compacted; ok is false unless b is one valid object.
func stdMembers(b []byte) ([]member, bool) {
	if !json.Valid(b) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, _ := dec.Token(); tok != json.Delim('{') {
		return nil, false
	}
	var got []member
	for dec.More() {
		k, _ := dec.Token()
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		got = append(got, member{k.(string), string(v)})
	}
	return got, true
}

func TestScanner(t *testing.T) {
	tests := []struct {
		in    string
		want  []member
		valid bool
	}{
		{`{}`, nil, true},
		{` { } `, nil, true},
		{`{"a":1}`, []member{{"a", "1"}}, true},
		{`{"id":"7","status":"on\"line","t":{"x":{"y":[1,{"z":"}"}]}},"u":[],"v":{},"w":true,"x":null,"y":-0.5e+3}`,
			[]member{{"id", `"7"`}, {"status", `"on\"line"`}, {"t", `{"x":{"y":[1,{"z":"}"}]}}`}, {"u", "[]"}, {"v", "{}"},
				{"w", "true"}, {"x", "null"}, {"y", "-0.5e+3"}}, true},
		{"{\n \"st\\u0061tus\" : \"a\\\\\" ,\t\"b\":[ 1 , [ ] ] }", []member{{"status", `"a\\"`}, {"b", "[ 1 , [ ] ]"}}, true},
		{`{"a":1,}`, []member{{"a", "1"}}, false},
		{`{"a":1 "b":2}`, []member{{"a", "1"}}, false},
		{`{"a":01}`, []member{{"a", "0"}}, false}, // members come out until the scanner stumbles
		{`{"a":[1,]}`, nil, false},
		{`{"a":{"b":1,}}`, nil, false},
		{`{"a":"\x"}`, nil, false},
		{`{"a":"\u12G4"}`, nil, false},
		{"{\"a\":\"\t\"}", nil, false},
		{`{"a":tru}`, nil, false},
		{`{"a":1} {}`, []member{{"a", "1"}}, false},
		{`[1]`, nil, false},
		{`{"a":[}`, nil, false},
		{`{"a":1`, []member{{"a", "1"}}, false},
		{`{a:1}`, nil, false},
		{``, nil, false},
	}
	for _, tt := range tests {
		got, valid := scanAll([]byte(tt.in))
		if valid != tt.valid || !equalMembers(got, tt.want) {
			t.Errorf("scan %q = %q, valid %v; want %q, %v", tt.in, got, valid, tt.want, tt.valid)
		}
		if _, std := stdMembers([]byte(tt.in)); std != tt.valid {
			t.Errorf("encoding/json disagrees on %q: valid %v", tt.in, std)
		}
	}
	deep := func(n int) []byte {
		return []byte(`{"a":` + strings.Repeat(`[{"b":`, n/2) + strings.Repeat("[", n%2) + "1" +
			strings.Repeat("]", n%2) + strings.Repeat("}]", n/2) + `}`)
	}
	if _, valid := scanAll(deep(maxDepth)); !valid {
		t.Errorf("nesting of %d refused", maxDepth)
	}
	if _, valid := scanAll(deep(maxDepth + 1)); valid {
		t.Errorf("nesting beyond %d accepted", maxDepth)
	}
}

func equalMembers(a, b []member) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRawEqualFold(t *testing.T) {
	tests := []struct {
		raw, s      string
		equal, fold bool
	}{
		{`online`, "online", true, true},
		{`Online`, "ONLINE", false, true},
		{`on\u006cine`, "online", true, true},
		{`\u00e9t\u00C9`, "étÉ", true, true},
		{`\u00e9t\u00e9`, "ÉTÉ", false, true},
		{`\ud83d\ude00`, "😀", true, true},
		{`\ud83d`, "\ufffd", true, true},
		{`\ud83dx`, "\ufffdx", true, true},
		{"\xff", "\ufffd", true, true},
		{`k`, "\u212a", false, true}, // KELVIN SIGN folds to k
		{`a\/b\"\\\n`, "a/b\"\\\n", true, true},
		{`onlin`, "online", false, false},
		{`online`, "onlin", false, false},
		{`@`, "`", false, false},
		{`[`, "{", false, false},
	}
	for _, tt := range tests {
		if got := rawEqual([]byte(tt.raw), tt.s); got != tt.equal {
			t.Errorf("rawEqual(%q, %q) = %v", tt.raw, tt.s, got)
		}
		if got := rawEqualFold([]byte(tt.raw), tt.s); got != tt.fold {
			t.Errorf("rawEqualFold(%q, %q) = %v", tt.raw, tt.s, got)
		}
	}
}
