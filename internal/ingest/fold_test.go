package ingest

import (
	"testing"

	"github.com/herald-gw/herald"
)

// TestParseFoldedIndexedNames: herald.DecodeEvent reads stored events
// with encoding/json, which matches names ignoring case (with Unicode
// folding), so "deviCeUuid":{} fails the decode of a string field: an
// event stored like that is skipped by every reader. Ingest refuses a
// name that folds to a string field's unless its value is a string.
func TestParseFoldedIndexedNames(t *testing.T) {
	for _, tt := range []struct{ body, field string }{
		{`{"entity":"A","deviCeUuid":{}}`, "deviCeUuid"},
		{`{"entity":"A","ENTITY":1}`, "ENTITY"},
		{`{"entity":"A","Org":[]}`, "Org"},
		{`{"entity":"A","chAnnel":true}`, "chAnnel"},
		{`{"entity":"A","TYPE":{"a":1}}`, "TYPE"},
		{`{"entity":"A","entityUUID":5}`, "entityUUID"},
	} {
		recs, err := Parse([]byte(tt.body), org, 1, Limits{})
		if err == nil {
			_, derr := herald.DecodeEvent(1, recs[0].Data)
			t.Errorf("%s: accepted (DecodeEvent of the stored record: %v)", tt.body, derr)
			continue
		}
		if e, ok := err.(*herald.Error); !ok || e.Code != herald.EINVALID || e.Field != tt.field || e.Index != 0 {
			t.Errorf("%s: %#v, want invalid, field %s, index 0", tt.body, err, tt.field)
		}
	}
	// Strings and nulls under such names decode, and stay accepted.
	for _, body := range []string{`{"entity":"A","DeviceUuid":"d"}`, `{"entity":"A","TYPE":null}`} {
		recs, err := Parse([]byte(body), org, 1, Limits{})
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if _, err := herald.DecodeEvent(1, recs[0].Data); err != nil {
			t.Fatalf("%s: stored record does not decode: %v", body, err)
		}
	}
}
