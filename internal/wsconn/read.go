package wsconn

import (
	"errors"
	"io"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// ErrProtocol is returned by ReadMessage when the peer breaks the
// WebSocket protocol: a reserved opcode or RSV bit, an unmasked, malformed
// or misplaced frame (close code 1002, RFC 6455 §7.4.1), or a text message
// that is not UTF-8 (1007, §8.1). The connection has queued the close frame
// and closes once it is written, so the error is also ErrPeerClosed: a
// caller that only needs to know that reading is over and the close is on
// its way treats both alike.
var ErrProtocol = errors.New("websocket protocol error")

// ErrFrameTooLarge is returned by ReadMessage for a frame so far over the
// message limit (more than 1 MiB) that the connection is not worth keeping.
var ErrFrameTooLarge = errors.New("frame far too large")

// maxSkipBytes is the largest frame ReadMessage skips to keep a connection.
const maxSkipBytes = 1 << 20

// ErrPeerClosed is returned by ReadMessage after the peer's close frame,
// and (with ErrProtocol) after a protocol error: the close frame is queued
// and the connection closes once it is written.
var ErrPeerClosed = errors.New("websocket closed by peer")

// protocolError is what ReadMessage returns for a protocol error: both
// ErrProtocol and ErrPeerClosed.
type protocolError struct{ detail string }

func (e protocolError) Error() string { return ErrProtocol.Error() + ": " + e.detail }

func (e protocolError) Is(target error) bool { return target == ErrProtocol || target == ErrPeerClosed }

// failProtocol queues the 1002 close and returns the error to report.
func (c *Conn) failProtocol(detail string) error {
	c.CloseAfterFlush(ws.StatusProtocolError, "", nil)
	return protocolError{detail}
}

// failPayload queues the 1007 close for a text message that is not UTF-8
// and returns the error to report.
func (c *Conn) failPayload() error {
	c.CloseAfterFlush(ws.StatusInvalidFramePayloadData, "", nil)
	return protocolError{"a text message that is not UTF-8"}
}

// readBufs holds inbound payload buffers, so an idle connection keeps none.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// ReadMessage returns the next data message's payload (text or binary,
// reassembled from fragments), answering pings and close frames itself.
// The payload is valid until the next call. After a close frame it
// returns ErrPeerClosed.
func (c *Conn) ReadMessage() ([]byte, error) {
	c.releaseReadBuf()
	r := c.acquireReader()
	var msg *[]byte
	text := false // msg is a text message: UTF-8 once whole
	for {
		h, err := ws.ReadHeader(r)
		if errors.Is(err, ws.ErrHeaderLengthMSB) || errors.Is(err, ws.ErrHeaderLengthUnexpected) {
			err = c.failProtocol(err.Error())
		}
		if err != nil {
			c.putBuf(msg)
			return nil, err
		}
		if err := c.checkHeader(h); err != nil {
			c.putBuf(msg)
			return nil, err
		}
		if h.OpCode.IsControl() {
			if err := c.readControl(h); err != nil {
				c.putBuf(msg)
				return nil, err
			}
			continue
		}
		if c.skipping {
			// The rest of a message that was too large: skip it.
			if h.OpCode != ws.OpContinuation {
				return nil, c.failProtocol("a new message inside a fragmented one")
			}
			if err := c.skip(r, h.Length); err != nil {
				return nil, err
			}
			c.skipping = !h.Fin
			continue
		}
		if (h.OpCode == ws.OpContinuation) != (msg != nil) {
			c.putBuf(msg)
			if msg == nil {
				return nil, c.failProtocol("a continuation frame with no message to continue")
			}
			return nil, c.failProtocol("a new message inside a fragmented one")
		}
		if msg == nil {
			msg = readBufs.Get().(*[]byte)
			*msg = (*msg)[:0]
			text = h.OpCode == ws.OpText
		}
		start := len(*msg)
		if h.Length > int64(c.opts.MaxMessageBytes-start) {
			c.putBuf(msg)
			if err := c.skip(r, h.Length); err != nil {
				return nil, err
			}
			c.skipping = !h.Fin
			return nil, ErrMessageTooLarge
		}
		*msg = append(*msg, make([]byte, h.Length)...)
		part := (*msg)[start:]
		if _, err := io.ReadFull(r, part); err != nil {
			c.putBuf(msg)
			return nil, err
		}
		ws.Cipher(part, h.Mask, 0)
		if h.Fin {
			// Checked whole: a fragment may end inside a character.
			if text && !utf8.Valid(*msg) {
				c.putBuf(msg)
				return nil, c.failPayload()
			}
			c.readBuf = msg
			return *msg, nil
		}
	}
}

// skip discards n payload bytes of a message over the limit, so that the
// connection can go on; a frame over maxSkipBytes is not worth reading.
func (c *Conn) skip(r io.Reader, n int64) error {
	if n > maxSkipBytes {
		return ErrFrameTooLarge
	}
	_, err := io.CopyN(io.Discard, r, n)
	return err
}

// checkHeader rejects what RFC 6455 §5.2 forbids of a client's frame.
func (c *Conn) checkHeader(h ws.Header) error {
	switch {
	case !h.Masked:
		return c.failProtocol("an unmasked frame")
	case h.Rsv != 0:
		return c.failProtocol("RSV bits set with no extension negotiated")
	case h.OpCode.IsReserved():
		return c.failProtocol("reserved opcode " + strconv.Itoa(int(h.OpCode)))
	case h.OpCode.IsControl() && (h.Length > 125 || !h.Fin):
		return c.failProtocol("a fragmented or oversized control frame")
	}
	return nil
}

func (c *Conn) readControl(h ws.Header) error {
	payload := make([]byte, h.Length)
	if _, err := io.ReadFull(c.reader, payload); err != nil {
		return err
	}
	ws.Cipher(payload, h.Mask, 0)
	switch h.OpCode {
	case ws.OpPing:
		c.sendOp(ws.OpPong, payload)
	case ws.OpClose:
		code := ws.StatusNormalClosure
		if len(payload) >= 2 {
			code, _ = ws.ParseCloseFrameData(payload)
		}
		c.CloseAfterFlush(code, "", nil)
		return ErrPeerClosed
	}
	return nil
}

func (c *Conn) releaseReadBuf() {
	c.putBuf(c.readBuf)
	c.readBuf = nil
}

func (c *Conn) putBuf(b *[]byte) {
	if b != nil && cap(*b) <= 64<<10 {
		readBufs.Put(b)
	}
}
