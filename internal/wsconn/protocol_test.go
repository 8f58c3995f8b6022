package wsconn

import (
	"errors"
	"net"
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
			expectProtocolClose(t, server, client, ws.StatusProtocolError)
			select {
			case <-server.Done():
			case <-time.After(patience):
				t.Fatal("connection not closed after the close frame")
			}
		})
	}
}

// TestInvalidUTF8TextClosesWith1007: a text message that is not UTF-8 —
// whole, or split inside a character across fragments that are each
// invalid on their own but valid together — fails the connection with 1007
// (RFC 6455 §8.1); a binary message with the same bytes is data.
func TestInvalidUTF8TextClosesWith1007(t *testing.T) {
	masked := func(op ws.OpCode, fin bool, payload string) []byte {
		b, _ := ws.CompileFrame(ws.MaskFrameInPlace(ws.NewFrame(op, fin, []byte(payload))))
		return b
	}
	t.Run("split character is valid", func(t *testing.T) {
		server, client := pair(t, Options{})
		// "é" is C3 A9: each fragment alone is not UTF-8.
		if _, err := client.Write(append(masked(ws.OpText, false, "caf\xc3"), masked(ws.OpContinuation, true, "\xa9")...)); err != nil {
			t.Fatal(err)
		}
		if msg, err := server.ReadMessage(); err != nil || string(msg) != "café" {
			t.Fatalf("ReadMessage = %q, %v, want café", msg, err)
		}
	})
	t.Run("binary is not checked", func(t *testing.T) {
		server, client := pair(t, Options{})
		if _, err := client.Write(masked(ws.OpBinary, true, "caf\xe9")); err != nil {
			t.Fatal(err)
		}
		if msg, err := server.ReadMessage(); err != nil || string(msg) != "caf\xe9" {
			t.Fatalf("ReadMessage = %q, %v", msg, err)
		}
	})
	for _, tt := range []struct {
		name  string
		frame []byte
	}{
		{"whole message", masked(ws.OpText, true, "caf\xe9 \xff")},
		{"across fragments", append(masked(ws.OpText, false, "caf"), masked(ws.OpContinuation, true, "\xe9")...)},
		{"encoded surrogate", masked(ws.OpText, true, "\xed\xa0\x80")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			server, client := pair(t, Options{})
			if _, err := client.Write(tt.frame); err != nil {
				t.Fatal(err)
			}
			expectProtocolClose(t, server, client, ws.StatusInvalidFramePayloadData)
		})
	}
}

// expectProtocolClose checks that server's next read fails with
// ErrProtocol, also ErrPeerClosed, and that client reads a close frame
// with code.
func expectProtocolClose(t *testing.T, server *Conn, client net.Conn, code ws.StatusCode) {
	t.Helper()
	_, err := server.ReadMessage()
	if !errors.Is(err, ErrProtocol) || !errors.Is(err, ErrPeerClosed) {
		t.Fatalf("ReadMessage err = %v, want ErrProtocol that is also ErrPeerClosed", err)
	}
	client.SetReadDeadline(time.Now().Add(patience))
	f, err := readFrame(client)
	if err != nil || f.Header.OpCode != ws.OpClose {
		t.Fatalf("want a close frame, got %+v, %v", f.Header, err)
	}
	if got, _ := ws.ParseCloseFrameData(f.Payload); got != code {
		t.Fatalf("close code %d, want %d", got, code)
	}
}
