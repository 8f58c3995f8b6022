package stomp

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the encoder's output")

// renderNUL shows NUL as ^@ so golden files stay text and diff readably;
// no golden frame holds the two characters "^@" of its own.
func renderNUL(b []byte) []byte { return bytes.ReplaceAll(b, []byte{0}, []byte("^@")) }

// TestGolden pins the exact bytes herald puts on the wire for the frames
// vendor clients read with naive parsers. Review changes as diffs; regenerate
// with go test -run TestGolden -update.
func TestGolden(t *testing.T) {
	event := []byte(`{"entity":"POLICY_ALERT","entityUuid":"pa-1","type":"CREATE","deviceUuid":"cam-1","timestampMs":1711843200000}`)
	message := func(v, subscription, ack string) []byte {
		b := MessageHead(nil, "/topic/change/org-1", "ev-42", len(event))
		b = AppendRecipientHeaders(b, v, subscription, ack)
		return MessageTail(b, event)
	}
	tests := []struct {
		name  string
		frame []byte
	}{
		{
			name: "connected",
			frame: AppendFrame(nil, V12, "CONNECTED",
				hdrs("version", V12, "heart-beat", "10000,10000", "server", "herald/1.0", "session", "sess-1"), nil),
		},
		{
			name:  "receipt",
			frame: AppendFrame(nil, V12, "RECEIPT", hdrs("receipt-id", "r:1"), nil),
		},
		{
			name: "error",
			frame: AppendFrame(nil, V12, "ERROR",
				hdrs("message", "body not allowed on SUBSCRIBE", "receipt-id", "77", "content-type", "text/plain"),
				[]byte("The SUBSCRIBE frame carried a body.\n")),
		},
		{
			name: "error-version",
			frame: AppendFrame(nil, V12, "ERROR",
				hdrs("version", V12, "content-type", "text/plain", "message", "unsupported protocol version"),
				[]byte("Supported protocol versions are 1.2\n")),
		},
		{name: "message", frame: message(V12, "sub-0", "")},
		{name: "message-ack-1.1", frame: message(V11, "sub:1", "ack-9")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := renderNUL(tt.frame)
			path := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s differs from the encoder's output:\n got  %q\n want %q", path, got, want)
			}
			// Every golden frame must also read back as exactly one frame.
			frames, err := collect(NewParser(Limits{}), tt.frame)
			if err != nil || len(frames) != 1 {
				t.Fatalf("parse back: %d frames, err %v", len(frames), err)
			}
		})
	}
}
