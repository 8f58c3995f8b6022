package client

import (
	"errors"
	"fmt"
	"testing"

	"github.com/coder/websocket"
)

// TestCloseError: of the servers' close frames, "events lost" (1011 in
// ess and streams, 4003 in channels) alone is ErrEventsLost, after which
// the Stream skips to the newest event; 1013, a log the server could not
// read for a while, is never a loss, even if its reason quotes an error
// that says "events lost", and the Stream resumes from its cursor.
func TestCloseError(t *testing.T) {
	tests := []struct {
		name   string
		code   websocket.StatusCode
		reason string
		lost   bool
	}{
		{"ess or streams events lost", websocket.StatusInternalError, "events lost: events after 5 are no longer in the log (oldest is 9)", true},
		{"channels events lost", 4003, "events lost", true},
		{"ess catch-up failed", websocket.StatusTryAgainLater, "catch-up failed: reconnect and resume with sessionId and eventId (engine: replay: nats: no responders available for request", false},
		{"streams catch-up failed", websocket.StatusTryAgainLater, "catch-up failed: reconnect to the session to resume (engine: replay: nats: no responders available for request)", false},
		{"catch-up failed quoting events lost", websocket.StatusTryAgainLater, "catch-up failed: reconnect to the session to resume (events lost? no: the log timed out)", false},
		{"malformed command", websocket.StatusPolicyViolation, "malformed command: command \"getState\" has no \"commandId\"", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := closeError(fmt.Errorf("failed to get reader: %w", websocket.CloseError{Code: tt.code, Reason: tt.reason}))
			if errors.Is(err, ErrEventsLost) != tt.lost {
				t.Fatalf("closeError = %v; want ErrEventsLost: %v", err, tt.lost)
			}
			if permanent(err) {
				t.Fatalf("closeError = %v is permanent: the Stream would end", err)
			}
		})
	}
}

// A revoked credential (ess and streams close 1008 "unauthorized: …",
// channels 4001 "credential revoked") ends the Stream: reconnecting
// cannot help.
func TestCloseErrorRevoked(t *testing.T) {
	for _, ce := range []websocket.CloseError{
		{Code: websocket.StatusPolicyViolation, Reason: "unauthorized: the API key was revoked"},
		{Code: websocket.StatusPolicyViolation, Reason: "unauthorized: the user was deleted"},
		{Code: 4001, Reason: "credential revoked"},
	} {
		if err := closeError(ce); !permanent(err) {
			t.Errorf("closeError(%d %q) = %v, want a permanent error", ce.Code, ce.Reason, err)
		}
	}
}
