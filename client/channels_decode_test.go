package client

import (
	"errors"
	"testing"
)

// TestChannelsDecodeErrors: of the server's error messages, events_lost
// alone is ErrEventsLost (the Stream then skips to the newest event);
// catch_up_failed, a log the server could not read for a while, is an
// error the Stream reconnects after, resuming from its cursor; the others
// answer a message of the client's and are not the connection's end.
func TestChannelsDecodeErrors(t *testing.T) {
	tests := []struct {
		name, data string
		lost, ends bool
	}{
		{"events lost", `{"type":"error","error":"events_lost","message":"Events were lost: the events after 5 are past the log's retention."}`, true, true},
		{"catch-up failed", `{"type":"error","error":"catch_up_failed","message":"Reading the event log failed; nothing was skipped."}`, false, true},
		{"rate limited", `{"type":"error","error":"rate_limited","message":"More than 100 messages per second."}`, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := channelsDecode([]byte(tt.data))
			if (err != nil) != tt.ends {
				t.Fatalf("error %v; want one: %v", err, tt.ends)
			}
			if errors.Is(err, ErrEventsLost) != tt.lost {
				t.Fatalf("error %v; want ErrEventsLost: %v", err, tt.lost)
			}
			if permanent(err) {
				t.Fatalf("error %v is permanent: the Stream would end", err)
			}
		})
	}
}

// A revoked credential (auth_failed token_revoked, sent before the
// server's close) ends the Stream: reconnecting cannot help.
func TestChannelsDecodeRevoked(t *testing.T) {
	_, err := channelsDecode([]byte(`{"type":"auth_failed","error":"token_revoked","message":"The connection's credential is no longer valid: the API key was revoked."}`))
	if !permanent(err) {
		t.Fatalf("error %v, want a permanent one", err)
	}
}
