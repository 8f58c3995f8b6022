package ingest

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/herald-gw/herald"
)

// TestParseRefusesInvalidUTF8: an event whose text is not valid UTF-8
// anywhere (a well-known field, a pass-through field, a key, a nested
// value, an escaped lone surrogate) is refused, naming the event and the
// top-level field; stored, it would go out in WebSocket text frames that
// clients reject (issue 9).
func TestParseRefusesInvalidUTF8(t *testing.T) {
	ok := `{"entity":"A"},`
	tests := []struct {
		name  string
		body  string
		index int
		field string
		where string // in the message
	}{
		{"well-known field", `[` + ok + "{\"entity\":\"A\",\"textDescription\":\"caf\xe9 \xff\"}]", 1, "textDescription", "textDescription"},
		{"entity", "{\"entity\":\"\xff\"}", 0, "entity", "entity"},
		{"pass-through field", `[` + ok + ok + "{\"entity\":\"A\",\"note\":\"\xc3\"}]", 2, "note", "note"},
		{"key", "{\"entity\":\"A\",\"n\xffte\":1}", 0, "n\uFFFDte", "the name"},
		{"nested value", "{\"entity\":\"A\",\"metadata\":{\"zone\":{\"label\":[\"ok\",\"\xed\xa0\x80\"]}}}", 0, "metadata", "metadata.zone.label[1]"},
		{"nested key", "{\"entity\":\"T\",\"telemetry\":{\"t\xe9mp\":{\"value\":1}}}", 0, "telemetry", "telemetry"},
		{"trigger", "{\"entity\":\"A\",\"policyAlertTriggers\":[\"MOTION\xff\"]}", 0, "policyAlertTriggers", "policyAlertTriggers[0]"},
		{"ndjson", ok[:len(ok)-1] + "\n" + "{\"entity\":\"A\",\"title\":\"\xf0\x9f\x98\"}\n", 1, "title", "title"},
		{"lone high surrogate", `{"entity":"A","title":"x\ud83d"}`, 0, "title", "surrogate"},
		{"lone low surrogate", `{"entity":"A","custom":{"a":"\ude00y"}}`, 0, "custom", "custom.a"},
		{"swapped pair", `{"entity":"A","title":"\ude00\ud83d"}`, 0, "title", "surrogate"},
		{"surrogate in a key", `{"entity":"A","\ud800":1}`, 0, "\uFFFD", "the name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := Parse([]byte(tt.body), org, 1, Limits{})
			if err == nil {
				t.Fatalf("accepted: %q", recs[len(recs)-1].Data)
			}
			e, isErr := err.(*herald.Error)
			if !isErr {
				t.Fatalf("err = %v (%T), want *herald.Error", err, err)
			}
			if e.Code != herald.EINVALID || e.Index != tt.index || e.Field != tt.field ||
				!strings.Contains(e.Message, "UTF-8") || !strings.Contains(e.Error(), tt.where) {
				t.Fatalf("got code=%s index=%d field=%q message %q, want invalid %d %q, a message naming UTF-8 and %q",
					e.Code, e.Index, e.Field, e.Message, tt.index, tt.field, tt.where)
			}
			if !utf8.ValidString(e.Error()) {
				t.Fatalf("the error is not valid UTF-8 itself: %q", e.Error())
			}
		})
	}
}

// TestParseKeepsValidUnicode: what is valid stays accepted and unchanged:
// non-ASCII text, escaped surrogate pairs, an escaped backslash before
// "ud800" (text, not an escape).
func TestParseKeepsValidUnicode(t *testing.T) {
	for _, body := range []string{
		`{"entity":"A","textDescription":"café ☕ 😀","metadata":{"名前":"値"}}`,
		`{"entity":"A","title":"\ud83d\ude00","custom":["\u00e9\uffff"]}`,
		`{"entity":"A","title":"\\ud800"}`,
	} {
		recs, err := Parse([]byte(body), org, 1, Limits{})
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if !utf8.Valid(recs[0].Data) {
			t.Fatalf("%s: stored %q", body, recs[0].Data)
		}
	}
}
