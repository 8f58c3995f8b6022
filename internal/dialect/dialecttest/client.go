package dialecttest

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// Pipe is a connection for a server to serve and the client's end of it,
// closed when the test ends. A read from client fails after 10 seconds,
// which only a test waiting for a frame that never comes spends.
func Pipe(t testing.TB) (server, client net.Conn) {
	server, client = net.Pipe()
	t.Cleanup(func() { client.Close() })
	client.SetDeadline(time.Now().Add(10 * time.Second))
	return server, client
}

// maxFrame bounds the frames a test reads: more than any error or close a
// server sends, so that a broken length fails the read instead of
// allocating it.
const maxFrame = 4 << 10

// ReadFrame reads one server frame of at most 4 KiB.
func ReadFrame(r io.Reader) (ws.Frame, error) {
	h, err := ws.ReadHeader(r)
	if err != nil {
		return ws.Frame{}, err
	}
	if h.Length > maxFrame {
		return ws.Frame{Header: h}, fmt.Errorf("a %d-byte frame", h.Length)
	}
	payload := make([]byte, h.Length)
	_, err = io.ReadFull(r, payload)
	return ws.Frame{Header: h, Payload: payload}, err
}

// ReadClose reads the server's frames up to its close frame and returns
// its code and reason.
func ReadClose(t testing.TB, r io.Reader) (ws.StatusCode, string) {
	t.Helper()
	for {
		f, err := ReadFrame(r)
		if err != nil {
			t.Fatalf("no close frame: %v", err)
		}
		if f.Header.OpCode == ws.OpClose {
			return ws.ParseCloseFrameData(f.Payload)
		}
	}
}

// CheckClose fails unless the close is wantCode with a reason that starts
// with wantReason, fits a close frame (123 bytes of UTF-8), and says
// "events lost" only with 1011: clients read those words as a loss.
func CheckClose(t testing.TB, code ws.StatusCode, reason string, wantCode ws.StatusCode, wantReason string) {
	t.Helper()
	if code != wantCode || !strings.HasPrefix(reason, wantReason) {
		t.Errorf("closed %d %q, want %d %q…", code, reason, wantCode, wantReason)
	}
	if len(reason) > 123 || !utf8.ValidString(reason) {
		t.Errorf("close reason %q: %d bytes, valid UTF-8 %v; want at most 123 bytes of UTF-8", reason, len(reason), utf8.ValidString(reason))
	}
	if strings.Contains(reason, "events lost") != (wantCode == ws.StatusInternalServerError) {
		t.Errorf("close reason %q: clients read \"events lost\" as a loss", reason)
	}
}
