package ingest

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/herald-gw/herald"
)

// TestParseExactNames: names are exact. One that differs from a field's
// only in case, or by Unicode folding ("ſ" folds to "s", "K" to "k"), is
// another field: stored as sent, of any type, and read by nobody as the
// field it resembles.
func TestParseExactNames(t *testing.T) {
	for _, body := range []string{
		`{"entity":"A","deviCeUuid":{}}`, `{"entity":"A","ENTITY":1}`, `{"entity":"A","Org":[]}`,
		`{"entity":"A","chAnnel":true}`, `{"entity":"A","TYPE":{"a":1}}`, `{"entity":"A","entityUUID":5}`,
		`{"entity":"A","POLICYALERTTRIGGERS":` + triggersJSON(100, numbered("T")) + `}`,
	} {
		recs, err := Parse([]byte(body), org, 1, Limits{})
		if err != nil {
			t.Errorf("%s: %v", body, err)
			continue
		}
		e, err := herald.DecodeEvent(1, recs[0].Data)
		if err != nil || e.Entity != "A" || e.DeviceUUID != "" || e.Type != "" || e.Triggers != nil {
			t.Errorf("%s: stored record decodes to %+v (%v)", body, e, err)
		}
	}
	body := `{"entity":"POLICY_ALERT","severity":"info","title":"MOTION","policyAlertTriggers":["MOTION"],` +
		`"Severity":"critical","ſeverity":"critical","TITLE":"FIRE","policyAlertTriggerſ":["FIRE"],"POLICYALERTTRIGGERS":["FIRE"]}`
	recs, err := Parse([]byte(body), org, 1, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := herald.DecodeEvent(1, recs[0].Data)
	if err != nil || e.Severity != "info" || !slices.Equal(e.Triggers, []string{"MOTION"}) {
		t.Fatalf("stored record decodes to severity %q, triggers %q (%v); want info, [MOTION]", e.Severity, e.Triggers, err)
	}
}

// TestParseRepeatedNames: no object of an event may repeat a name after
// unescaping, at the top or nested, in an object of any size.
func TestParseRepeatedNames(t *testing.T) {
	many := func(n int) string {
		var b strings.Builder
		for i := range n {
			b.WriteString(`"k` + string(rune('a'+i%26)) + string(rune('a'+i/26)) + `":1,`)
		}
		return b.String()
	}
	for _, tt := range []struct{ body, field, message string }{
		{`{"entity":"A","severity":"info","severity":"critical"}`, "severity",
			"appears twice in the event: a name may appear once in each object"},
		{`{"entity":"A","title":"x","\u0074itle":"y"}`, "title", "appears twice in the event: a name may appear once in each object"},
		{`{"entity":"A",` + many(20) + `"kdb":2,"kda":3}`, "kda", "appears twice in the event: a name may appear once in each object"},
		{`{"entity":"A","metadata":{"a":{"b":[1,{"c":1,"c":2}]}}}`, "metadata",
			`metadata.a.b[1] holds the name "c" twice: a name may appear once in each object`},
		{`{"entity":"A","metadata":{` + many(30) + `"kzz":{"x":1},"kza":2}}`, "metadata",
			`metadata holds the name "kza" twice: a name may appear once in each object`},
	} {
		_, err := Parse([]byte(tt.body), org, 1, Limits{})
		var e *herald.Error
		if !errors.As(err, &e) || e.Code != herald.EINVALID || e.Index != 0 || e.Field != tt.field || e.Message != tt.message {
			t.Errorf("%.60s: %v (%#v)\nwant field %s, message %s", tt.body, err, e, tt.field, tt.message)
		}
	}
	// The same names in different objects, and names that differ in case, are fine.
	for _, body := range []string{
		`{"entity":"A","a":{"x":1},"b":{"x":1,"y":{"x":2}},"c":[{"x":1},{"x":2}]}`,
		`{"entity":"A","title":"a","Title":"b","TITLE":"c"}`,
		`{"entity":"A","metadata":{` + many(40) + `"x":{` + many(40) + `"y":1}}}`,
	} {
		if _, err := Parse([]byte(body), org, 1, Limits{}); err != nil {
			t.Errorf("%.60s: %v", body, err)
		}
	}
}

// TestParseDepth: an event nests at most 64 levels, the event object
// being level 1; deeper is refused naming the field, in a batch the
// event too.
func TestParseDepth(t *testing.T) {
	nested := func(levels int) string { return strings.Repeat("[", levels) + strings.Repeat("]", levels) }
	ok := `{"entity":"A","metadata":{"x":` + nested(62) + `}}`
	if _, err := Parse([]byte(ok), org, 1, Limits{}); err != nil {
		t.Fatalf("64 levels: %v", err)
	}
	for _, body := range []string{
		`[{"entity":"A"},{"entity":"A","metadata":{"x":` + nested(63) + `}}]`,
		`[{"entity":"A"},{"entity":"A","metadata":{"x":` + nested(600) + `}}]`,
		"{\"entity\":\"A\"}\n{ \"entity\" : \"A\" , \"metadata\" : { \"x\" : " + nested(9000) + " } }",
	} {
		_, err := Parse([]byte(body), org, 1, Limits{})
		var e *herald.Error
		want := `metadata.x[0][0][0][0]… nests deeper than 64 levels (the event object being level 1); herald takes at most 64`
		if !errors.As(err, &e) || e.Code != herald.EINVALID || e.Index != 1 || e.Field != "metadata" || e.Message != want {
			t.Errorf("%.60s: %#v\nwant index 1, field metadata, message %s", body, err, want)
		}
	}
}
