package herald

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// TestDecodeEventInvalidUTF8: an event stored before ingest refused text
// that is not UTF-8 decodes with U+FFFD for each bad byte, in Body and in
// the indexed fields, so every dialect renders it as valid text.
func TestDecodeEventInvalidUTF8(t *testing.T) {
	data := []byte("{\"channel\":\"alerts\",\"entity\":\"POLICY_\xff\",\"n\xe9\":{\"k\":[\"\xed\xa0\x80\"]},\"org\":\"o\",\"textDescription\":\"caf\xe9 \xff\",\"timestampMs\":5}")
	e, err := DecodeEvent(3, data)
	if err != nil {
		t.Fatal(err)
	}
	want := "{\"id\":\"3\",\"channel\":\"alerts\",\"entity\":\"POLICY_\uFFFD\",\"n\uFFFD\":{\"k\":[\"\uFFFD\uFFFD\uFFFD\"]},\"org\":\"o\",\"textDescription\":\"caf\uFFFD \uFFFD\",\"timestampMs\":5}"
	if string(e.Body) != want {
		t.Fatalf("Body = %q\nwant   %q", e.Body, want)
	}
	if e.Entity != "POLICY_\uFFFD" || e.Org != "o" || e.TimestampMs != 5 || !utf8.Valid(e.Body) || !json.Valid(e.Body) {
		t.Fatalf("decoded %+v", e)
	}
	// The same as encoding/json decodes the original.
	var fields map[string]json.RawMessage
	var entity string
	if err := json.Unmarshal(data, &fields); err != nil || json.Unmarshal(fields["entity"], &entity) != nil || entity != e.Entity {
		t.Fatalf("encoding/json reads entity %q (%v), DecodeEvent %q", entity, err, e.Entity)
	}
}
