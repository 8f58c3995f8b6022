package channels

import (
	"testing"

	"github.com/herald-gw/herald/internal/auth"
)

// TestConfigReadLimit: the connection reads an auth message carrying the
// largest token the verifier takes, whatever MaxMessageBytes is, and every
// message MaxMessageBytes allows.
func TestConfigReadLimit(t *testing.T) {
	largestAuth := len(`{"type":"auth","token":""}`) + len("Bearer ") + auth.MaxTokenBytes
	tests := []struct {
		name            string
		maxMessageBytes int
		wantMax, wantRd int
	}{
		{name: "default", maxMessageBytes: 0, wantMax: 1024, wantRd: MaxAuthMessageBytes},
		{name: "the document's 1 KB", maxMessageBytes: 1024, wantMax: 1024, wantRd: MaxAuthMessageBytes},
		{name: "larger than an auth message", maxMessageBytes: 64 << 10, wantMax: 64 << 10, wantRd: 64 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{MaxMessageBytes: tt.maxMessageBytes}.WithDefaults()
			if c.MaxMessageBytes != tt.wantMax || c.ReadLimit() != tt.wantRd {
				t.Fatalf("MaxMessageBytes %d, ReadLimit %d; want %d, %d", c.MaxMessageBytes, c.ReadLimit(), tt.wantMax, tt.wantRd)
			}
			if c.ReadLimit() < largestAuth {
				t.Fatalf("ReadLimit %d cannot hold a %d-byte auth message", c.ReadLimit(), largestAuth)
			}
		})
	}
}
