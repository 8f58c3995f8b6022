package wsconn

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/herald-gw/herald"
)

// stalledConn is a peer that accepts no byte: Write blocks until Close.
// entered is closed when the writer first blocks in it.
type stalledConn struct {
	net.Conn // the client end of a pipe, for the methods not overridden
	entered  chan struct{}
	once     bool
	closed   chan struct{}
}

func (s *stalledConn) Write(p []byte) (int, error) {
	if !s.once {
		s.once = true // only the writer goroutine writes
		close(s.entered)
	}
	<-s.closed
	return 0, net.ErrClosed
}

func (s *stalledConn) Close() error {
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	return s.Conn.Close()
}

func (s *stalledConn) SetWriteDeadline(time.Time) error { return nil }

// TestQueueBoundHoldsWhileWriting: a peer that reads nothing makes the
// connection hold at most QueueBytes of messages, counting the batch the
// writer is blocked on, and Buffered (which adds the writer's rendering
// buffers) stays within QueueBytes plus one flush's buffers. The queue used
// to forget a batch as soon as the writer took it, so a stalled peer held
// the bound twice over, plus the batch's copy in the write buffer.
func TestQueueBoundHoldsWhileWriting(t *testing.T) {
	const bound = 1 << 20
	a, b := net.Pipe()
	defer b.Close()
	peer := &stalledConn{Conn: a, entered: make(chan struct{}), closed: make(chan struct{})}
	server := NewConn(peer, Options{QueueBytes: bound, QueueMessages: 1 << 20})
	defer server.Close()
	server.SetRenderer(textRenderer{})
	body := bytes.Repeat([]byte("e"), 500) // small: the writer copies such parts into its buffer
	event := func(id uint64) Message { return Message{Event: &herald.Event{ID: id, Body: body}, Sub: "1"} }

	// A full queue, taken by the writer as one batch, which blocks.
	accepted := 0
	server.mu.Lock()
	id := uint64(0)
	for {
		m := event(id + 1)
		if !server.roomLocked(1, m.size()) {
			break
		}
		id++
		server.pushLocked(m)
		accepted += m.size()
	}
	server.mu.Unlock()
	select {
	case <-peer.entered:
	case <-time.After(patience):
		t.Fatal("the writer never wrote")
	}
	// Whatever more the queue takes now is held too.
	for {
		id++
		m := event(id)
		if !server.EnqueueAll([]Message{m}) {
			break
		}
		accepted += m.size()
		if accepted > 4*bound {
			break
		}
	}
	buffered := server.Buffered()
	t.Logf("stalled peer: %d KiB accepted, Buffered %d KiB, bound %d KiB", accepted>>10, buffered>>10, bound>>10)
	if accepted > bound {
		t.Fatalf("a stalled peer's connection accepted %d bytes, more than QueueBytes (%d)", accepted, bound)
	}
	if max := bound + 2*flushBytes; buffered > max {
		t.Fatalf("Buffered = %d, want at most QueueBytes + two flushes' buffers = %d", buffered, max)
	}
}
