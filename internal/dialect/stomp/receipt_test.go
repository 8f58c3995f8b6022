package stomp

import (
	"errors"
	"testing"
)

// A frame that fails on a bad escape still names its receipt, so the
// server's ERROR can carry receipt-id.
func TestParseErrorCarriesReceipt(t *testing.T) {
	tests := []struct{ frame, want string }{
		{"SUBSCRIBE\nid:a\\tb\nreceipt:r-1\n\n\x00", "r-1"},
		{"SUBSCRIBE\nreceipt:r\\c2\nid:a\\tb\n\n\x00", "r:2"},
		{"SUBSCRIBE\nreceipt:bad\\t\nid:x\n\n\x00", ""},
		{"SUBSCRIBE\nid:a\\tb\n\n\x00", ""},
	}
	for _, tt := range tests {
		p := NewParser(Limits{})
		p.Feed([]byte(tt.frame))
		_, err := p.Next()
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Receipt != tt.want {
			t.Errorf("%q: err %v, receipt %q, want %q", tt.frame, err, pe.Receipt, tt.want)
		}
	}
}
