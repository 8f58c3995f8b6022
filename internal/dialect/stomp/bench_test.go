package stomp

import "testing"

// BenchmarkAppendRecipientHeaders measures the per-recipient cost of a
// MESSAGE on the fan-out path; it must report 0 allocs/op.
func BenchmarkAppendRecipientHeaders(b *testing.B) {
	dst := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendRecipientHeaders(dst[:0], V12, "sub-0", "ack-123")
	}
}

// BenchmarkMessageFrame measures building one event's shared parts plus one
// recipient's headers into reused buffers.
func BenchmarkMessageFrame(b *testing.B) {
	body := []byte(`{"entity":"POLICY_ALERT","entityUuid":"pa-1","type":"CREATE","deviceUuid":"cam-1","timestampMs":1711843200000}`)
	head := make([]byte, 0, 256)
	recipient := make([]byte, 0, 64)
	tail := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		head = MessageHead(head[:0], "/topic/change/org-1", "ev-42", len(body))
		recipient = AppendRecipientHeaders(recipient[:0], V12, "sub-0", "")
		tail = MessageTail(tail[:0], body)
	}
}

// BenchmarkParser measures parsing the frames a client sends, one per
// WebSocket message as stompjs and the Rhombus clients do; the cost
// includes every allocation a returned Frame needs.
func BenchmarkParser(b *testing.B) {
	frames := map[string][]byte{
		"subscribe": []byte("SUBSCRIBE\nid:sub-0\ndestination:/topic/change/6b1f0c5e-2f1a-4c3e-9d7a-0d1e2f3a4b5c\n\n\x00"),
		"send": []byte("SEND\ndestination:/queue/a\ncontent-type:application/json\ncontent-length:26\n\n" +
			`{"entity":"CAMERA","x":1}` + "\n\x00"),
		"ack":       []byte("ACK\nid:ack-17\n\n\x00"),
		"heartbeat": []byte("\n"),
	}
	for name, frame := range frames {
		b.Run(name, func(b *testing.B) {
			p := NewParser(Limits{})
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				p.Feed(frame)
				for {
					f, err := p.Next()
					if err != nil {
						b.Fatal(err)
					}
					if f == nil {
						break
					}
				}
			}
		})
	}
}
