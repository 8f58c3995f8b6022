package wsconn

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

// patience bounds every wait for the other end of a loopback connection:
// generous, since CI runs on a loaded machine, and only spent when a test
// fails.
const patience = 15 * time.Second

// pair returns a server Conn and the raw client end of a loopback TCP
// connection (the handshake is skipped: frames are spoken directly).
func pair(t *testing.T, opts Options) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server := NewConn(<-accepted, opts)
	t.Cleanup(func() {
		server.Close()
		client.Close()
	})
	return server, client
}

func writeClientFrame(t *testing.T, w io.Writer, fin bool, op ws.OpCode, payload []byte) {
	t.Helper()
	f := ws.NewFrame(op, fin, append([]byte(nil), payload...))
	f = ws.MaskFrameInPlace(f)
	if err := ws.WriteFrame(w, f); err != nil {
		t.Fatal(err)
	}
}

func TestReadMessageReassemblesAndAnswersPing(t *testing.T) {
	server, client := pair(t, Options{})
	writeClientFrame(t, client, false, ws.OpText, []byte("CONN"))
	writeClientFrame(t, client, true, ws.OpPing, []byte("p"))
	writeClientFrame(t, client, true, ws.OpContinuation, []byte("ECT\n\n\x00"))
	got, err := server.ReadMessage()
	if err != nil || string(got) != "CONNECT\n\n\x00" {
		t.Fatalf("ReadMessage = %q, %v", got, err)
	}
	client.SetReadDeadline(time.Now().Add(patience))
	pong, err := readFrame(client)
	if err != nil || pong.Header.OpCode != ws.OpPong || string(pong.Payload) != "p" {
		t.Fatalf("pong: %+v %v", pong.Header, err)
	}
}

func TestReadMessageLimitsAndProtocolErrors(t *testing.T) {
	tests := []struct {
		name  string
		write func(t *testing.T, c net.Conn)
		want  error
	}{
		{"too large in one frame", func(t *testing.T, c net.Conn) {
			writeClientFrame(t, c, true, ws.OpText, make([]byte, 200))
		}, ErrMessageTooLarge},
		{"too large across fragments", func(t *testing.T, c net.Conn) {
			writeClientFrame(t, c, false, ws.OpText, make([]byte, 80))
			writeClientFrame(t, c, true, ws.OpContinuation, make([]byte, 80))
		}, ErrMessageTooLarge},
		{"unmasked", func(t *testing.T, c net.Conn) {
			ws.WriteFrame(c, ws.NewTextFrame([]byte("x")))
		}, ErrProtocol},
		{"continuation first", func(t *testing.T, c net.Conn) {
			writeClientFrame(t, c, true, ws.OpContinuation, []byte("x"))
		}, ErrProtocol},
		{"close", func(t *testing.T, c net.Conn) {
			writeClientFrame(t, c, true, ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
		}, ErrPeerClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server, client := pair(t, Options{MaxMessageBytes: 128})
			tt.write(t, client)
			if _, err := server.ReadMessage(); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

type textRenderer struct{}

func (textRenderer) AppendEvents(parts [][]byte, scratch []byte, events []Message) ([][]byte, []byte, int) {
	m := events[0]
	start := len(scratch)
	scratch = append(scratch, "tag="...)
	scratch = append(scratch, m.Sub.(string)...)
	return append(parts, scratch[start:], []byte(":"), m.Event.Body), scratch, 1
}

func readText(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(patience))
	data, op, err := wsutil.ReadServerData(c)
	if err != nil || op != ws.OpText {
		t.Fatalf("read: %q op=%v err=%v", data, op, err)
	}
	return string(data)
}

func TestWriteEventsRepliesAndClose(t *testing.T) {
	server, client := pair(t, Options{})
	server.SetRenderer(textRenderer{})
	e := &herald.Event{ID: 1, Body: bytes.Repeat([]byte("b"), 300)} // 16-bit length header
	if !server.Send([]byte("hello")) || !server.EnqueueAll([]Message{{Event: e, Sub: "3"}}) {
		t.Fatal("queue refused")
	}
	if got := readText(t, client); got != "hello" {
		t.Fatalf("got %q", got)
	}
	if got := readText(t, client); got != "tag=3:"+string(e.Body) {
		t.Fatalf("got %q", got)
	}
	server.CloseAfterFlush(ws.StatusPolicyViolation, "bye", []byte("last words"))
	if server.Send([]byte("too late")) {
		t.Fatal("Send accepted after CloseAfterFlush")
	}
	if got := readText(t, client); got != "last words" {
		t.Fatalf("got %q", got)
	}
	f, err := readFrame(client)
	if err != nil || f.Header.OpCode != ws.OpClose {
		t.Fatalf("close frame: %+v %v", f.Header, err)
	}
	if code, reason := ws.ParseCloseFrameData(f.Payload); code != ws.StatusPolicyViolation || reason != "bye" {
		t.Fatalf("close %d %q", code, reason)
	}
	select {
	case <-server.Done():
	case <-time.After(patience):
		t.Fatal("connection not closed after flush")
	}
}

func TestQueueBound(t *testing.T) {
	server, _ := pair(t, Options{QueueMessages: 4, QueueBytes: 1 << 20})
	server.SetRenderer(textRenderer{})
	server.mu.Lock() // hold the writer off so the queue fills
	for range 4 {
		server.pushLocked(Message{Event: &herald.Event{Body: []byte("x")}, Sub: "0"})
	}
	full := !server.roomLocked(1, 1)
	server.mu.Unlock()
	if !full {
		t.Fatal("queue has room beyond its bound")
	}
	ms := []Message{{Event: &herald.Event{Body: []byte("a")}, Sub: "0"}, {Event: &herald.Event{Body: []byte("b")}, Sub: "0"}}
	deadline := time.Now().Add(patience)
	for !server.EnqueueAll(ms) {
		if time.Now().After(deadline) {
			t.Fatal("queue never drained")
		}
		<-server.Room()
	}
}

func TestHeartbeatOnlyWhenIdle(t *testing.T) {
	server, client := pair(t, Options{})
	server.StartHeartbeat(50*time.Millisecond, []byte("\n"))
	if got := readText(t, client); got != "\n" {
		t.Fatalf("heart-beat %q", got)
	}
}

func TestSelectProtocol(t *testing.T) {
	supported := []string{"v12.stomp", "v11.stomp", "v10.stomp"}
	for _, tt := range []struct {
		offered []string
		want    string
	}{
		{nil, ""},
		{[]string{"v10.stomp, v12.stomp"}, "v12.stomp"},
		{[]string{"v10.stomp", "v11.stomp"}, "v11.stomp"},
		{[]string{"mqtt"}, ""},
	} {
		if got := selectProtocol(tt.offered, supported); got != tt.want {
			t.Errorf("selectProtocol(%q) = %q, want %q", tt.offered, got, tt.want)
		}
	}
}

// readFrame reads one server frame (small test frames only).
func readFrame(r io.Reader) (ws.Frame, error) {
	h, err := ws.ReadHeader(r)
	if err != nil {
		return ws.Frame{}, err
	}
	payload := make([]byte, h.Length)
	_, err = io.ReadFull(r, payload)
	return ws.Frame{Header: h, Payload: payload}, err
}

// TestCompactKeepsBytesAndOrder: small parts are merged into runs, large
// ones stay parts of their own, and the bytes and their order are kept.
func TestCompactKeepsBytesAndOrder(t *testing.T) {
	big := bytes.Repeat([]byte("B"), copyBelow)
	for _, parts := range [][][]byte{
		nil,
		{[]byte("a")},
		{[]byte("a"), []byte("bc"), nil, []byte("d")},
		{big},
		{[]byte("h1"), big, []byte("t1"), []byte("h2"), big, big, []byte("t2")},
	} {
		out, _ := compact(nil, []byte("stale"), parts, copyBelow)
		if got, want := bytes.Join(out, nil), bytes.Join(parts, nil); !bytes.Equal(got, want) {
			t.Fatalf("compact(%q) wrote %q", parts, got)
		}
		bigs := 0
		for _, p := range parts {
			if len(p) >= copyBelow {
				bigs++
			}
		}
		if len(out) > 2*bigs+1 {
			t.Fatalf("compact made %d parts of %d with %d large ones", len(out), len(parts), bigs)
		}
	}
}

// TestTooLargeMessageIsSkipped: a message over the limit is reported and
// skipped, fragments included, and the next message reads normally; a
// frame over the skip cap ends the connection.
func TestTooLargeMessageIsSkipped(t *testing.T) {
	server, client := pair(t, Options{MaxMessageBytes: 128})
	writeClientFrame(t, client, true, ws.OpText, make([]byte, 200))
	writeClientFrame(t, client, false, ws.OpText, make([]byte, 100))
	writeClientFrame(t, client, false, ws.OpContinuation, make([]byte, 100))
	writeClientFrame(t, client, true, ws.OpContinuation, make([]byte, 100))
	writeClientFrame(t, client, true, ws.OpText, []byte("next"))
	for i := range 2 {
		if _, err := server.ReadMessage(); !errors.Is(err, ErrMessageTooLarge) {
			t.Fatalf("message %d: err = %v, want ErrMessageTooLarge", i, err)
		}
	}
	if got, err := server.ReadMessage(); err != nil || string(got) != "next" {
		t.Fatalf("after skipping: %q, %v", got, err)
	}
	huge := ws.MaskFrameInPlace(ws.NewFrame(ws.OpText, true, make([]byte, maxSkipBytes+1)))
	go ws.WriteFrame(client, huge) // fails once the server hangs up; nothing to check
	if _, err := server.ReadMessage(); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err = %v, want ErrFrameTooLarge", err)
	}
}

// TestStats: a connection counts the events and bytes it writes (a
// reply is bytes, not an event), and whether a peer that accepted nothing
// for WriteTimeout cut it off.
func TestStats(t *testing.T) {
	server, client := pair(t, Options{})
	server.SetRenderer(textRenderer{})
	events := []Message{{Event: &herald.Event{ID: 1, Body: []byte("one")}, Sub: "a"}, {Event: &herald.Event{ID: 2, Body: []byte("two")}, Sub: "b"}}
	if !server.Send([]byte("hello")) || !server.EnqueueAll(events) {
		t.Fatal("queue refused")
	}
	counted := &countingConn{Conn: client}
	for range 3 {
		client.SetReadDeadline(time.Now().Add(patience))
		if _, _, err := wsutil.ReadServerData(counted); err != nil {
			t.Fatal(err)
		}
	}
	waitStats := func(c *Conn, what string, cond func(Stats) bool) {
		t.Helper()
		for deadline := time.Now().Add(patience); !cond(c.Stats()); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %+v", what, c.Stats())
			}
		}
	}
	waitStats(server, "two events in the bytes read", func(st Stats) bool {
		return st.Events == 2 && st.Bytes == uint64(counted.n) && !st.WriteTimeout
	})

	stalled, _ := pair(t, Options{WriteTimeout: 50 * time.Millisecond, QueueBytes: 16 << 20})
	stalled.SetRenderer(textRenderer{})
	big := &herald.Event{ID: 3, Body: bytes.Repeat([]byte("x"), 8<<20)} // more than the socket buffers take
	if !stalled.EnqueueAll([]Message{{Event: big, Sub: "c"}}) {
		t.Fatal("queue refused")
	}
	waitStats(stalled, "a write timeout", func(st Stats) bool { return st.WriteTimeout && st.Events == 0 })
}

// countingConn counts the bytes read from it.
type countingConn struct {
	net.Conn
	n int
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n += n
	return n, err
}
