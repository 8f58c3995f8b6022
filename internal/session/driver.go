package session

import (
	"errors"
	"os"

	"github.com/gobwas/ws"

	"github.com/herald-gw/herald/internal/wsconn"
)

// Handler is a dialect's side of one connection. The driver reads
// messages and owns the session; the handler understands the messages,
// answers them and renders events. Every method but Lost and the
// renderer's is called from the connection's reader, one at a time.
type Handler interface {
	// Handle handles one inbound message. It returns false when the
	// connection must end; it has then queued what the client reads last
	// (wsconn.Conn.CloseAfterFlush), or the driver closes with 1008.
	Handle(data []byte) bool

	// ReadFailed is told why a read failed, for the failures a client
	// hears about in its dialect: wsconn.ErrMessageTooLarge (the message
	// was skipped, reading may go on), wsconn.ErrFrameTooLarge, and
	// os.ErrDeadlineExceeded (the read deadline the handler set passed).
	// It returns true to go on reading, which only a skipped message
	// allows; false ends the connection as for Handle.
	ReadFailed(err error) bool

	// Lost tells the client that the session cannot go on and ends the
	// connection: code ECONFLICT when the events it needs are past the
	// log's retention, EUNAUTHORIZED when its credential was revoked
	// (Credentials.Revoke; the session is not kept then), another code
	// when the log could not be read. It is called from a catch-up
	// goroutine, or from the goroutine that revokes.
	Lost(err error)

	// Ended releases what the handler holds (timers, admission slots);
	// called once, after the session is closed.
	Ended()

	// The renderer of the session's events (called from the writer).
	wsconn.Renderer
}

// Serve runs the session on its connection with h: it returns at once,
// and the connection's reader (wsconn.Conn.Serve) drives the session from
// then on. ended, if not nil, runs once the session is over and its
// connection closed.
func (s *Session) Serve(h Handler, ended func()) {
	if s.h == nil {
		s.Use(h)
	}
	s.node.Gauges.Connections.Add(1)
	finish := func() {
		// The connection first, and its writer done: the session's saved
		// cursor must count every event the peer may have read.
		s.conn.Close()
		s.conn.WaitWriter()
		s.Close()
		h.Ended()
		if ended != nil {
			ended()
		}
		// Last: a gauge back at zero means every limit the connection held
		// is free too.
		s.node.Gauges.Connections.Add(-1)
	}
	s.conn.Serve(func(data []byte, err error) bool {
		var goOn bool
		switch {
		case err == nil:
			goOn = h.Handle(data)
		case errors.Is(err, wsconn.ErrPeerClosed):
			// The close reply is queued: let it go out.
		case errors.Is(err, wsconn.ErrMessageTooLarge), errors.Is(err, wsconn.ErrFrameTooLarge),
			errors.Is(err, os.ErrDeadlineExceeded):
			goOn = h.ReadFailed(err) && errors.Is(err, wsconn.ErrMessageTooLarge)
		default:
			finish() // the peer is gone: nothing to flush
			return false
		}
		if goOn {
			return true
		}
		// The connection is ending: stop reading, and let the writer flush
		// what is queued (the handler's last words, the close frame) and
		// close it.
		s.conn.CloseAfterFlush(closeCode(err), "", nil) // no-op if the handler closed
		<-s.conn.Done()
		finish()
		return false
	})
}

// Use sets the session's handler and renderer before Serve, for a
// dialect that subscribes (and so may queue events, or lose them) before
// its connection is served: call it before that Subscribe, and pass the
// same h to Serve.
func (s *Session) Use(h Handler) {
	s.h = h
	s.conn.SetRenderer(h)
}

func closeCode(err error) ws.StatusCode {
	switch {
	case errors.Is(err, wsconn.ErrMessageTooLarge), errors.Is(err, wsconn.ErrFrameTooLarge):
		return ws.StatusMessageTooBig
	case errors.Is(err, wsconn.ErrPeerClosed):
		return ws.StatusNormalClosure
	}
	return ws.StatusPolicyViolation
}
