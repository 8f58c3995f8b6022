package wsconn

import (
	"errors"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// TestProtocolErrorClosesWith1002: a frame that breaks RFC 6455 — a
// reserved opcode (3–7 data, 11–15 control), an unmasked frame, a
// continuation with nothing to continue — is not read as data: ReadMessage
// reports ErrProtocol, which is also ErrPeerClosed (reading is over and the
// close frame is queued), and the peer reads a close with 1002 before the
// connection closes.
func TestProtocolErrorClosesWith1002(t *testing.T) {
	masked := func(op ws.OpCode, fin bool) []byte {
		f := ws.MaskFrameInPlace(ws.NewFrame(op, fin, []byte("x")))
		b, _ := ws.CompileFrame(f)
		return b
	}
	unmasked, _ := ws.CompileFrame(ws.NewTextFrame([]byte("x")))
	tests := []struct {
		name  string
		frame []byte
	}{
		{"reserved data opcode 3", masked(3, true)},
		{"reserved data opcode 7", masked(7, true)},
		{"reserved control opcode 11", masked(11, true)},
		{"reserved control opcode 15", masked(15, true)},
		{"reserved opcode in a fragmented message", append(masked(ws.OpText, false), masked(4, true)...)},
		{"unmasked", unmasked},
		{"continuation first", masked(ws.OpContinuation, true)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server, client := pair(t, Options{})
			if _, err := client.Write(tt.frame); err != nil {
				t.Fatal(err)
			}
			_, err := server.ReadMessage()
			if !errors.Is(err, ErrProtocol) || !errors.Is(err, ErrPeerClosed) {
				t.Fatalf("ReadMessage err = %v, want ErrProtocol that is also ErrPeerClosed", err)
			}
			client.SetReadDeadline(time.Now().Add(patience))
			f, err := readFrame(client)
			if err != nil || f.Header.OpCode != ws.OpClose {
				t.Fatalf("want a close frame, got %+v, %v", f.Header, err)
			}
			if code, _ := ws.ParseCloseFrameData(f.Payload); code != ws.StatusProtocolError {
				t.Fatalf("close code %d, want %d", code, ws.StatusProtocolError)
			}
			select {
			case <-server.Done():
			case <-time.After(patience):
				t.Fatal("connection not closed after the close frame")
			}
		})
	}
}
