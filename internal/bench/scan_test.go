package bench

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// heraldMessage is a MESSAGE frame as herald renders it (docs/stomp.md),
// carrying a bench marker of run "r1".
const heraldMessage = "MESSAGE\ndestination:/topic/change/5f0c6b2e-4d2a-4c1e-9b7a-2a9d8e4f1c30\nmessage-id:42\n" +
	"content-type:application/json\ncontent-length:143\nsubscription:sub-0\n\n" +
	`{"id":"42","bench":"r1.1795437209759000123","channel":"events","entity":"BENCH","org":"5f0c6b2e-4d2a-4c1e-9b7a-2a9d8e4f1c30","pad":"xx","timestampMs":1795437209759}` + "\x00"

// serverFrame encodes an unmasked, final WebSocket frame.
func serverFrame(op byte, payload string) []byte {
	b := []byte{0x80 | op}
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	default:
		b = binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
	}
	return append(b, payload...)
}

func TestScanFrame(t *testing.T) {
	marker := Marker("r1")
	tests := []struct {
		name    string
		in      string
		ok      bool
		n       int
		cmd     Command
		id      uint64
		hasID   bool
		stamp   int64
		stamped bool
	}{
		{name: "herald message", in: heraldMessage + "MESSAGE", ok: true, n: len(heraldMessage),
			cmd: CommandMessage, id: 42, hasID: true, stamp: 1795437209759000123, stamped: true},
		{name: "incomplete", in: heraldMessage[:100]},
		{name: "connected", in: "CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\x00", ok: true, n: -1, cmd: CommandConnected},
		{name: "receipt CRLF", in: "RECEIPT\r\nreceipt-id:r\r\n\r\n\x00", ok: true, n: -1, cmd: CommandReceipt},
		{name: "error", in: "ERROR\nmessage:access denied\n\nno\x00", ok: true, n: -1, cmd: CommandError},
		{name: "other run", in: strings.Replace(heraldMessage, `"r1.`, `"r2.`, 1), ok: true, n: len(heraldMessage),
			cmd: CommandMessage, id: 42, hasID: true},
		{name: "marker in a header only", in: "MESSAGE\nx:\"bench\":\"r1.5\"\nmessage-id:7\n\n{}\x00", ok: true, n: -1,
			cmd: CommandMessage, id: 7, hasID: true},
		{name: "bad message-id", in: "MESSAGE\nmessage-id:ev-1\n\n\x00", ok: true, n: -1, cmd: CommandMessage},
		{name: "no blank line", in: "MESSAGE\nmessage-id:3\x00", ok: true, n: -1, cmd: CommandMessage, id: 3, hasID: true},
		{name: "stamp not closed", in: "MESSAGE\n\n{\"bench\":\"r1.12\x00", ok: true, n: -1, cmd: CommandMessage},
		{name: "stamp overflow", in: "MESSAGE\n\n{\"bench\":\"r1.9999999999999999999\"}\x00", ok: true, n: -1, cmd: CommandMessage},
		{name: "unknown command", in: "HELLO\n\n\x00", ok: true, n: -1, cmd: CommandOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.n < 0 {
				tt.n = len(tt.in)
			}
			f, n, ok := ScanFrame([]byte(tt.in), marker)
			if ok != tt.ok || n != tt.n {
				t.Fatalf("ok=%v n=%d, want ok=%v n=%d", ok, n, tt.ok, tt.n)
			}
			if f.Command != tt.cmd || f.MessageID != tt.id || f.HasID != tt.hasID || f.Stamp != tt.stamp || f.Stamped != tt.stamped {
				t.Fatalf("got %+v", f)
			}
		})
	}
}

func TestFrameHeaderAndBody(t *testing.T) {
	f, _, _ := ScanFrame([]byte("ERROR\nmessage:access denied\r\nreceipt-id:77\n\nThis key may not.\x00"), nil)
	if got := string(f.Header("message")); got != "access denied" {
		t.Errorf("message = %q", got)
	}
	if got := string(f.Header("receipt-id")); got != "77" {
		t.Errorf("receipt-id = %q", got)
	}
	if f.Header("receipt") != nil || f.Header("This key may not.") != nil {
		t.Error("found a header that is not there")
	}
	if got := string(f.Body()); got != "This key may not." {
		t.Errorf("body = %q", got)
	}
}

// collect feeds the chunks to a fresh stream and describes what it emits.
func collect(chunks ...[]byte) ([]string, error) {
	s := &Stream{Marker: Marker("r1"), MaxFrame: 4096}
	var out []string
	on := func(f *Frame) {
		out = append(out, describe(f))
	}
	for _, c := range chunks {
		if err := s.Feed(c, on); err != nil {
			return out, err
		}
	}
	return out, nil
}

func describe(f *Frame) string {
	var b strings.Builder
	b.WriteString([]string{"other", "message", "connected", "receipt", "error", "ping"}[f.Command])
	if f.HasID {
		b.WriteString(" id=" + itoa(f.MessageID))
	}
	if f.Stamped {
		b.WriteString(" stamp=" + itoa(uint64(f.Stamp)))
	}
	b.WriteString(" raw=" + strings.ReplaceAll(string(f.Raw), "\x00", "^@"))
	return b.String()
}

func itoa(n uint64) string {
	if n == 0 {
		return "0"
	}
	var d []byte
	for ; n > 0; n /= 10 {
		d = append([]byte{byte('0' + n%10)}, d...)
	}
	return string(d)
}

func TestStreamSplitsAnywhere(t *testing.T) {
	var wire []byte
	wire = append(wire, serverFrame(opText, "CONNECTED\nversion:1.2\n\n\x00")...)
	wire = append(wire, serverFrame(opText, "\n")...) // heart-beat
	wire = append(wire, serverFrame(opText, "RECEIPT\nreceipt-id:r\n\n\x00")...)
	wire = append(wire, serverFrame(opPing, "p")...)
	wire = append(wire, serverFrame(opText, heraldMessage)...)
	// One STOMP frame over two WebSocket messages, then two in one.
	wire = append(wire, serverFrame(opText, heraldMessage[:50])...)
	wire = append(wire, serverFrame(opContinuation, heraldMessage[50:])...)
	wire = append(wire, serverFrame(opText, heraldMessage+"\n"+heraldMessage)...)
	wire = append(wire, serverFrame(opText, strings.Repeat("x", 300)+"\x00")...) // 16-bit length
	want, err := collect(wire)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 8 {
		t.Fatalf("got %d frames: %q", len(want), want)
	}
	for i := 0; i <= len(wire); i++ {
		for j := i; j <= len(wire); j += 7 {
			got, err := collect(clone(wire[:i]), clone(wire[i:j]), clone(wire[j:]))
			if err != nil {
				t.Fatalf("split %d,%d: %v", i, j, err)
			}
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Fatalf("split %d,%d:\n got %q\nwant %q", i, j, got, want)
			}
		}
	}
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

func TestStreamErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"close", serverFrame(opClose, "\x03\xe8bye"), "server closed the WebSocket: 1000 bye"},
		{"close without code", serverFrame(opClose, ""), "server closed the WebSocket: 1005 "},
		{"reserved bits", []byte{0xc1, 0}, "reserved bits"},
		{"bad opcode", []byte{0x83, 0}, "unknown WebSocket opcode"},
		{"long control", append([]byte{0x89, 126, 0, 200}, make([]byte, 200)...), "invalid WebSocket control frame"},
		{"fragmented control", []byte{0x09, 0}, "invalid WebSocket control frame"},
		{"frame too large", serverFrame(opText, strings.Repeat("a", 5000)), "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := collect(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	_, err := collect(serverFrame(opClose, "\x03\xe8"))
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 1000 {
		t.Fatalf("close error = %#v", err)
	}
}

func TestStreamMaskedFrame(t *testing.T) {
	payload := []byte("RECEIPT\nreceipt-id:1\n\n\x00")
	mask := [4]byte{1, 2, 3, 4}
	frame := []byte{0x81, 0x80 | byte(len(payload)), 1, 2, 3, 4}
	for i, c := range payload {
		frame = append(frame, c^mask[i%4])
	}
	got, err := collect(frame[:9], frame[9:])
	if err != nil || len(got) != 1 || !strings.HasPrefix(got[0], "receipt") {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestScanMessageDoesNotAllocate(t *testing.T) {
	wire := serverFrame(opText, heraldMessage)
	s := &Stream{Marker: Marker("r1")}
	var last uint64
	on := func(f *Frame) { last = f.MessageID }
	n := testing.AllocsPerRun(1000, func() {
		if err := s.Feed(wire, on); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 || last != 42 {
		t.Fatalf("%v allocations per message (last id %d)", n, last)
	}
}

func BenchmarkStreamMessage(b *testing.B) {
	wire := serverFrame(opText, heraldMessage)
	s := &Stream{Marker: Marker("r1")}
	on := func(*Frame) {}
	b.SetBytes(int64(len(wire)))
	for range b.N {
		if err := s.Feed(wire, on); err != nil {
			b.Fatal(err)
		}
	}
}
