package jsonscan

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// seeds are real events (what producers send, what herald stores) and
// the edge cases of the grammar.
var seeds = []string{
	`{"entity":"POLICY_ALERT","entityUuid":"a","type":"CREATE","deviceUuid":"d","timestampMs":1711843200000,"durationSec":5.2,"policyAlertTriggers":["MOTION_HUMAN"],"textDescription":"x"}`,
	`[{"entity":"TELEMETRY","telemetry":{"temperature":{"value":23.5,"unit":"°C"}}},{"entity":"DEVICE_STATUS","status":"offline"}]`,
	`{"channel":"alerts","deviceUuid":"9d1e0f7a-1111-4c2b-8a3e-000000000001","entity":"ALERT","entityUuid":"123","message":"Temperature exceeds safe threshold","metadata":{"actual_value":32.5,"threshold_value":30.0},"org":"acme","severity":"critical","timestampMs":1704110400000,"title":"High Temperature Alert","type":"CREATE"}`,
	`{"id":"7","channel":"telemetry","telemetry":{"humidity":{"unit":"%","value":45.2},"temperature":{"timestamp":"2024-01-01T11:59:59Z","unit":"°C","value":23.5}}}`,
	`{"entity":"A","textDescription":"a \"quoted\" <b>&amp;</b> \u00e9\n","title":"caf` + "\u00e9\u2028\u2029" + `"}`,
	`{"entity":"A","custom":{"x":[1,-2.5e+3,0,true,false,null,{}],"y":[]},"z":"<>&"}`,
	`{"st\u0061tus":"on\"line","t":{"x":[1,{"z":"}"}]},"y":-0.5e+3,"n":null,"b":true}`,
	"{ \"a\" : [ 1 , 2 ] ,\n\"b\":{}}", `{"a":1,}`, `{"a":01}`, `{"\ud83d\ude00":"\ud83d"}`, `{"a":"\x"}`,
	`{"a":[[[[[[1]]]]]]}`, `{"k":"\u212a"}`, `{"severity":"info","Severity":"critical","ſeverity":"x"}`,
	`{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `{"Title":1,"title":2}`, `{"org":"o"}{}`, `{"a":-}`, `{"a":1.}`,
	`[1,]`, `[,1]`, `[]`, `{}`, ` 1 `, `"x"`, `nul`, `{"a" 1}`, `{"a":[}`, `{"a":{"b":1,}}`, `{a:1}`, ``,
	"{\"a\":\"\t\"}", "{\"a\":\"\xff\"}", `{"a":"\u12G4"}`,
	`{"metadata":{"x":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `},"title":"t"}`,
	strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth),
	strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1),
}

// fileSeeds reads the corpus files of ingest's fuzz targets: events
// that once found a bug.
func fileSeeds(f *testing.F) []string {
	files, _ := filepath.Glob("../ingest/testdata/fuzz/*/*")
	var out []string
	for _, name := range files {
		text, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range strings.Split(string(text), "\n") {
			if quoted, ok := strings.CutPrefix(line, "[]byte("); ok {
				if s, err := strconv.Unquote(strings.TrimSuffix(quoted, ")")); err == nil {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

// FuzzScanner holds the scanner to encoding/json: on any bytes, Valid
// says what json.Valid says (for input no deeper than MaxDepth; deeper
// is refused); the tokens of a valid value are its compact form; Members
// and Elements read exactly what json.Unmarshal decodes into a
// map[string]json.RawMessage or a []json.RawMessage (for objects without
// repeated names), at any depth encoding/json takes; and Equal agrees
// with comparing decoded names.
func FuzzScanner(f *testing.F) {
	for _, s := range append(seeds, fileSeeds(f)...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		std := json.Valid(data)
		if got := Valid(data); got != (std && depth(data) <= MaxDepth) {
			t.Fatalf("Valid(%q) = %v, json.Valid %v, depth %d", data, got, std, depth(data))
		}
		if _, ok := Skip(data, 0); ok && !std && skipSpace(data, mustSkip(data)) == len(data) {
			t.Fatalf("Skip accepts invalid %q", data)
		}
		if !std {
			m := NewMembers(data)
			for _, _, ok := m.Next(); ok; _, _, ok = m.Next() {
			}
			if m.Valid() {
				t.Fatalf("Members accepts invalid %q", data)
			}
			e := NewElements(data)
			for _, ok := e.Next(); ok; _, ok = e.Next() {
			}
			if e.Valid() {
				t.Fatalf("Elements accepts invalid %q", data)
			}
			return
		}
		if end, ok := Skip(data, 0); !ok || skipSpace(data, end) != len(data) {
			t.Fatalf("Skip refuses valid %q", data)
		}
		if depth(data) <= MaxDepth {
			var want bytes.Buffer
			_ = json.Compact(&want, data)
			if got := compactTokens(data); got != want.String() {
				t.Fatalf("tokens of %q:\n got %s\nwant %s", data, got, want.String())
			}
		}
		checkMembers(t, data)
		checkElements(t, data)
	})
}

func mustSkip(data []byte) int {
	end, _ := Skip(data, 0)
	return end
}

func checkMembers(t *testing.T, data []byte) {
	var want map[string]json.RawMessage
	if json.Unmarshal(data, &want) != nil || want == nil {
		return // not an object
	}
	m := NewMembers(data)
	got := map[string]string{}
	repeated := false
	for k, v, ok := m.Next(); ok; k, v, ok = m.Next() {
		key := Unquote(k)
		if _, dup := got[key]; dup {
			repeated = true
		}
		got[key] = string(v)
		for _, s := range []string{key, strings.ToUpper(key), strings.ToLower(key), key + "x", "x" + key} {
			if Equal(k, s) != (key == s) {
				t.Fatalf("Equal(%q, %q) = %v, decoded %q", k, s, Equal(k, s), key)
			}
		}
	}
	if !m.Valid() {
		t.Fatalf("Members refuses valid %q", data)
	}
	if repeated {
		return // encoding/json keeps the last; nothing herald stores repeats a name
	}
	if len(got) != len(want) {
		t.Fatalf("%q: %d members, encoding/json %d", data, len(got), len(want))
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || compact(g) != compact(string(v)) {
			t.Fatalf("%q member %q: %q, encoding/json %q", data, k, g, v)
		}
	}
}

func checkElements(t *testing.T, data []byte) {
	var want []json.RawMessage
	if json.Unmarshal(data, &want) != nil || want == nil {
		return // not an array
	}
	e := NewElements(data)
	var got []string
	for v, ok := e.Next(); ok; v, ok = e.Next() {
		got = append(got, string(v))
	}
	if !e.Valid() || len(got) != len(want) {
		t.Fatalf("%q: %d elements (valid %v), encoding/json %d", data, len(got), e.Valid(), len(want))
	}
	for i := range want {
		if compact(got[i]) != compact(string(want[i])) {
			t.Fatalf("%q element %d: %q, encoding/json %q", data, i, got[i], want[i])
		}
	}
}

// compactTokens writes the tokens of data back to back with the commas
// and colons between them: the compact form, if every token is right.
func compactTokens(data []byte) string {
	var out []byte
	s := NewScanner(data, 0)
	var prev Kind
	for tok, ok := s.Next(); ok; tok, ok = s.Next() {
		switch prev {
		case ObjectEnd, ArrayEnd, String, Number, True, False, Null:
			if tok.Kind != ObjectEnd && tok.Kind != ArrayEnd {
				out = append(out, ',')
			}
		}
		out = append(out, data[tok.Start:tok.End]...)
		if tok.Kind == Key {
			out = append(out, ':')
		}
		prev = tok.Kind
	}
	if s.Err() != nil {
		return "error: " + s.Err().Error()
	}
	return string(out)
}

func compact(s string) string {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		return "invalid: " + err.Error()
	}
	return b.String()
}

// depth is the deepest nesting of containers in data, a valid JSON text.
func depth(data []byte) int {
	d, most, inString := 0, 0, false
	for i := 0; i < len(data); i++ {
		switch c := data[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			d++
			most = max(most, d)
		case c == '}' || c == ']':
			d--
		}
	}
	return most
}
