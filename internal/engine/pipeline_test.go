package engine

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

func TestParsePubAck(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		seq     uint64
		errCode jetstream.ErrorCode // 0: no API error expected
		fails   bool
	}{
		{"ack", `{"stream":"EVENTS","seq":42}`, 42, 0, false},
		{"with domain", `{"stream":"EVENTS","domain":"hub","seq":7}`, 7, 0, false},
		{"duplicate", `{"stream":"EVENTS","seq":3,"duplicate":true}`, 3, 0, false},
		{"spaced", `{"stream": "EVENTS", "seq": 9}`, 9, 0, false},
		{"error", `{"error":{"code":400,"err_code":10054,"description":"maximum messages exceeded"},"stream":"EVENTS","seq":0}`, 0, 10054, true},
		{"no sequence", `{"stream":"EVENTS"}`, 0, 0, true},
		{"garbage", `nope`, 0, 0, true},
		{"empty", ``, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seq, err := parsePubAck([]byte(tt.data))
			if (err != nil) != tt.fails || seq != tt.seq {
				t.Fatalf("parsePubAck(%s) = %d, %v", tt.data, seq, err)
			}
			var api *jetstream.APIError
			if tt.errCode != 0 && (!errors.As(err, &api) || api.ErrorCode != tt.errCode) {
				t.Fatalf("error %v, want API error %d", err, tt.errCode)
			}
		})
	}
}
