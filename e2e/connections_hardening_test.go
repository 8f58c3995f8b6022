package e2e

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// dialHandshake opens a WebSocket to url with gobwas's dialer and returns
// the raw connection: the test speaks frames itself.
func dialHandshake(t *testing.T, url string, header http.Header) net.Conn {
	t.Helper()
	dialer := ws.Dialer{Header: ws.HandshakeHeaderHTTP(header), Timeout: patience}
	c, _, _, err := dialer.Dial(context.Background(), url)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readCloseCode reads server frames until the close frame and returns its
// code; it fails the test if the connection ends without one.
func readCloseCode(t *testing.T, c net.Conn) ws.StatusCode {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(patience))
	for {
		f, err := ws.ReadFrame(c)
		if err != nil {
			t.Fatalf("connection ended without a close frame: %v", err)
		}
		if f.Header.OpCode == ws.OpClose {
			code, _ := ws.ParseCloseFrameData(f.Payload)
			return code
		}
	}
}

// TestReservedOpcodeClosesWith1002: a client frame with a reserved opcode
// (3: a data opcode RFC 6455 leaves undefined) is not taken for a message:
// in every dialect the server answers with a close frame with 1002
// (protocol error) and ends the connection.
func TestReservedOpcodeClosesWith1002(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Auth.JWTSecret = "0123456789abcdef0123456789abcdef" // the channels dialect wants token auth on
	ts := startServer(t, cfg)
	ws0 := "ws" + ts.base[len("http"):]
	for _, d := range []struct {
		name   string
		url    string
		header http.Header
	}{
		{"stomp", ts.wsURL(), http.Header{"x-auth-apikey": {keyA}}},
		{"channels", ws0 + "/ws", nil},
	} {
		t.Run(d.name, func(t *testing.T) {
			c := dialHandshake(t, d.url, d.header)
			frame := ws.MaskFrameInPlace(ws.NewFrame(ws.OpCode(3), true, []byte("CONNECT\n\n\x00")))
			if err := ws.WriteFrame(c, frame); err != nil {
				t.Fatal(err)
			}
			if code := readCloseCode(t, c); code != ws.StatusProtocolError {
				t.Fatalf("close code %d, want %d (protocol error)", code, ws.StatusProtocolError)
			}
		})
	}
	waitFor(t, patience, "both connections to end", func() bool {
		return ts.health()["connections"] == float64(0)
	})
}
