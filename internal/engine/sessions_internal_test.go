package engine

import (
	"testing"
	"time"
)

// TestSessionTTL pins the rounding: the server keeps whole seconds of a
// TTL (truncating) and refuses less than one, and a session must never be
// removed before its Expires.
func TestSessionTTL(t *testing.T) {
	for d, want := range map[time.Duration]time.Duration{
		-time.Hour:                        time.Second,
		0:                                 time.Second,
		time.Nanosecond:                   time.Second,
		time.Second:                       time.Second,
		time.Second + time.Nanosecond:     2 * time.Second,
		90*time.Second - time.Millisecond: 90 * time.Second,
	} {
		if got := sessionTTL(d); got != want {
			t.Errorf("sessionTTL(%v) = %v, want %v", d, got, want)
		}
	}
}
