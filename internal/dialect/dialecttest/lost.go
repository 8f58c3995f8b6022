package dialecttest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gobwas/ws"

	"github.com/herald-gw/herald"
)

// Unavailable is the error of a log that could not be read, as while the
// engine elects a leader.
var Unavailable = herald.Errorf(herald.EUNAVAILABLE, "engine: replay: nats: no responders available for request")

// LostCase is an error a session's catch-up ends with and how the
// connection must close: with what code, a reason that starts with what,
// and whether the session is kept for the client to resume.
type LostCase struct {
	Name   string
	Err    error
	Close  ws.StatusCode
	Reason string
	Kept   bool
}

// LostCases are the ends of a session of a dialect that resumes one:
// only events past the log's retention (ECONFLICT) are "events lost"
// (1011), and the session goes with them; any other error skipped
// nothing, so the close is catchUp, with a reason that starts with
// reason, and the session is kept; a revoked credential is 1008 and ends
// the session.
func LostCases(catchUp ws.StatusCode, reason string) []LostCase {
	return []LostCase{
		{"past retention", herald.Errorf(herald.ECONFLICT, "events after 5 are no longer in the log (oldest is 9)"), ws.StatusInternalServerError, "events lost: ", false},
		{"log unavailable", Unavailable, catchUp, reason, true},
		{"log unavailable, wrapped", fmt.Errorf("catch-up after 5: %w", Unavailable), catchUp, reason, true},
		{"an error without a code", fmt.Errorf("a bug"), catchUp, reason, true},
		{"a long message", herald.Errorf(herald.EUNAVAILABLE, "%s", strings.Repeat("é", 100)), catchUp, reason, true},
		{"revoked", herald.Errorf(herald.EUNAUTHORIZED, "the API key was revoked"), ws.StatusPolicyViolation, "unauthorized: ", false},
	}
}

// RunLost runs each case as a subtest: lost makes a session end with the
// case's error and returns the close its client received and whether the
// session was kept once the connection ended.
func RunLost(t *testing.T, cases []LostCase, lost func(t *testing.T, err error) (code ws.StatusCode, reason string, kept bool)) {
	for _, tt := range cases {
		t.Run(tt.Name, func(t *testing.T) {
			code, reason, kept := lost(t, tt.Err)
			CheckClose(t, code, reason, tt.Close, tt.Reason)
			if kept != tt.Kept {
				t.Errorf("session kept for a resume: %v, want %v", kept, tt.Kept)
			}
		})
	}
}
