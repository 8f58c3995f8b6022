// Package dialecttest holds what every dialect's tests share: the path a
// producer's body takes to a renderer, for the render fuzz targets, and a
// session node with a client's end of its connection, to see how a
// session ends (lost.go).
package dialecttest

import (
	"testing"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/ingest"
)

// Org is the org the fuzzed bodies are published for.
const Org = "5f0c6b2e-4d2a-4c1e-9b7a-2a9d8e4f1c30"

// Ingested parses body as POST /api/events does and passes each event it
// accepts, decoded as a node decodes a stored event, to render. An
// accepted record that does not decode fails the test: it would be stored
// and never delivered.
func Ingested(t *testing.T, body []byte, render func(*herald.Event)) {
	t.Helper()
	records, err := ingest.Parse(body, Org, 1, ingest.Limits{})
	if err != nil {
		return
	}
	for i, r := range records {
		e, err := herald.DecodeEvent(uint64(i+1), r.Data)
		if err != nil {
			t.Fatalf("accepted record %q does not decode: %v", r.Data, err)
		}
		render(e)
	}
}
