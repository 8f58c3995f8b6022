package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
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
		h, err := ws.ReadHeader(c)
		if err == nil && h.Length > 1<<20 {
			err = fmt.Errorf("a %d-byte frame", h.Length)
		}
		var payload []byte
		if err == nil {
			payload = make([]byte, h.Length)
			_, err = io.ReadFull(c, payload)
		}
		if err != nil {
			t.Fatalf("connection ended without a close frame: %v", err)
		}
		if h.OpCode == ws.OpClose {
			code, _ := ws.ParseCloseFrameData(payload)
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

// dialFrom opens a TCP connection to addr from the loopback address
// local (any of 127.0.0.0/8), so that a test has a remote IP to itself.
func dialFrom(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: patience}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", local, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// getHealthz sends GET /healthz on a keep-alive connection and reads the
// answer; it reports the error if the server closed the connection.
func getHealthz(c net.Conn, r *bufio.Reader) error {
	c.SetDeadline(time.Now().Add(patience))
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: herald\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// waitClosedByServer reads c until the server closes it; it fails the test
// if c is still open after patience.
func waitClosedByServer(t *testing.T, c net.Conn, r io.Reader, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(patience))
	_, err := io.Copy(io.Discard, r)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: still open after %v", what, patience)
	}
}

// TestConnectionsPerIPCap: one IP holds at most http.max_conns_per_ip
// HTTP connections that are not WebSockets. 30 keep-alive connections from
// one address, each idle after a GET /healthz: the first 20 are served, the
// other 10 closed unanswered; another address is served meanwhile; once
// the idle ones are gone the first address is served again; and upgraded
// WebSockets leave the count.
func TestConnectionsPerIPCap(t *testing.T) {
	const limit, extra = 20, 10
	cfg := testConfig(t.TempDir())
	cfg.HTTP.MaxConnsPerIP = limit
	ts := startServer(t, cfg)
	addr := ts.srv.Addr()

	var idle []net.Conn
	served := 0
	for range limit + extra {
		c := dialFrom(t, "127.0.0.3", addr)
		if err := getHealthz(c, bufio.NewReader(c)); err == nil {
			served++
			idle = append(idle, c)
		}
	}
	if served != limit {
		t.Fatalf("%d of %d keep-alive connections from one IP were served, want %d (http.max_conns_per_ip)", served, limit+extra, limit)
	}
	other := dialFrom(t, "127.0.0.4", addr)
	if err := getHealthz(other, bufio.NewReader(other)); err != nil {
		t.Fatalf("another IP is refused while the first is at its cap: %v", err)
	}
	ts.health() // and the harness's 127.0.0.1

	for _, c := range idle {
		c.Close()
	}
	waitFor(t, patience, "127.0.0.3 to be served again once its idle connections are closed", func() bool {
		c := dialFrom(t, "127.0.0.3", addr)
		defer c.Close()
		return getHealthz(c, bufio.NewReader(c)) == nil
	})

	// WebSockets are hijacked: they leave the count.
	dialer := ws.Dialer{
		Header:  ws.HandshakeHeaderHTTP(http.Header{"x-auth-apikey": {keyA}}),
		Timeout: patience,
		NetDial: func(ctx context.Context, network, a string) (net.Conn, error) {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}}
			return d.DialContext(ctx, network, a)
		},
	}
	for i := range limit + extra {
		c, _, _, err := dialer.Dial(context.Background(), ts.wsURL())
		if err != nil {
			t.Fatalf("WebSocket %d from one IP: %v (upgraded connections must leave the cap's count)", i, err)
		}
		t.Cleanup(func() { c.Close() })
	}
	c := dialFrom(t, "127.0.0.3", addr)
	if err := getHealthz(c, bufio.NewReader(c)); err != nil {
		t.Fatalf("with %d WebSockets open, a plain request from the same IP: %v", limit+extra, err)
	}
}

// TestHTTPIdleAndReadTimeouts: a keep-alive connection idle for
// http.idle_timeout is closed, and so is a request whose body does not
// arrive within http.read_timeout.
func TestHTTPIdleAndReadTimeouts(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.HTTP.IdleTimeout = 200 * time.Millisecond
	cfg.HTTP.ReadTimeout = 300 * time.Millisecond
	ts := startServer(t, cfg)
	addr := ts.srv.Addr()

	t.Run("idle", func(t *testing.T) {
		c := dialFrom(t, "127.0.0.1", addr)
		r := bufio.NewReader(c)
		if err := getHealthz(c, r); err != nil {
			t.Fatal(err)
		}
		waitClosedByServer(t, c, r, "a keep-alive connection idle past http.idle_timeout")
	})
	t.Run("read", func(t *testing.T) {
		slow := dialFrom(t, "127.0.0.1", addr)
		slow.SetDeadline(time.Now().Add(patience))
		io.WriteString(slow, "POST /api/events HTTP/1.1\r\nHost: herald\r\nx-auth-apikey: "+keyA+
			"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[")
		waitClosedByServer(t, slow, slow, "a request whose body never comes, past http.read_timeout")
	})
}

// TestWebSocketOutlivesHTTPTimeouts: the HTTP timeouts end plain requests
// and idle keep-alive connections, never an upgraded WebSocket: one opened
// before an idle connection is cut off still answers after it.
func TestWebSocketOutlivesHTTPTimeouts(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.HTTP.IdleTimeout = 200 * time.Millisecond
	cfg.HTTP.ReadTimeout = 200 * time.Millisecond
	ts := startServer(t, cfg)

	sock := dialRaw(t, ts.wsURL(), keyA)
	sock.connect() // heart-beat 0,0: the server sets no read deadline of its own
	c := dialFrom(t, "127.0.0.1", ts.srv.Addr())
	r := bufio.NewReader(c)
	if err := getHealthz(c, r); err != nil {
		t.Fatal(err)
	}
	// Both timeouts have passed for the WebSocket's request, which came
	// first, once they have for this one.
	waitClosedByServer(t, c, r, "a keep-alive connection idle past http.idle_timeout")
	sock.send("SUBSCRIBE\nid:s\ndestination:/topic/change/" + orgA + "\nreceipt:r\n\n\x00")
	sock.expect("RECEIPT\nreceipt-id:r\n")
}
