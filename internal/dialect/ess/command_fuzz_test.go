package ess

import (
	"errors"
	"testing"
	"unicode/utf8"
)

// FuzzDecode: whatever a client sends, Decode returns a command or a
// *MalformedError, never panics, and hands on only UTF-8.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"command":"startSession","commandId":1,"sessionId":"","eventId":""}`,
		`{"command":"startSession","commandId":2,"sessionId":"5c1e","eventId":"42"}`,
		`{"command":"addSubscription","commandId":0,"subscriptionId":"","filters":[{"modifier":"Include","resourceTypes":["*"],"sourceIds":["*"],"eventTypes":["*"]}]}`,
		`{"command":"addSubscription","commandId":3,"filters":[{"modifier":"exclude","resourceTypes":["cameras"],"sourceIds":["25d08c6a-cc08-4498-8772-242111f9840c"],"eventTypes":["6eb95dd6-7ccc-4bce-99f8-af0d0b582d77"]}]}`,
		`{"command":"getState","commandId":4,"sessionId":"","eventId":"","filters":null}`,
		`{"command":"authenticate","commandId":0,"token":"Bearer abc"}`,
		`{"command":"removeSubscription","commandId":5,"subscriptionId":"a7f"}`,
		`{"command":"fly","commandId":6}`,
		`{"command":"getState","commandId":1.5}`,
		`[1,2]`, `null`, `{"command":`, "{\"command\":\"x\xff\",\"commandId\":1}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Decode(data)
		if err != nil {
			var m *MalformedError
			if !errors.As(err, &m) || m.Reason == "" {
				t.Fatalf("error %v (%T) is not a *MalformedError with a reason", err, err)
			}
			return
		}
		for _, s := range []string{c.Name, c.Unknown, c.Token, c.SessionID, c.EventID, c.SubscriptionID} {
			if !utf8.ValidString(s) {
				t.Fatalf("decoded %q is not UTF-8", s)
			}
		}
		if c.Name == "" && c.Unknown == "" {
			t.Fatal("a command with no name")
		}
		if len(c.Filters) > MaxFiltersPerCommand {
			t.Fatalf("%d filters", len(c.Filters))
		}
	})
}
