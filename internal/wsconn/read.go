package wsconn

import (
	"errors"
	"io"
	"sync"

	"github.com/gobwas/ws"
)

// ErrProtocol is returned by ReadMessage when the peer breaks the
// WebSocket protocol (unmasked or malformed frames).
var ErrProtocol = errors.New("websocket protocol error")

// ErrPeerClosed is returned by ReadMessage after the peer's close frame;
// the close reply is queued and the connection closes once it is written.
var ErrPeerClosed = errors.New("websocket closed by peer")

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
	for {
		h, err := ws.ReadHeader(r)
		if err != nil {
			c.putBuf(msg)
			return nil, err
		}
		if !h.Masked || h.Rsv != 0 {
			c.putBuf(msg)
			return nil, ErrProtocol
		}
		if h.OpCode.IsControl() {
			if err := c.readControl(h); err != nil {
				c.putBuf(msg)
				return nil, err
			}
			continue
		}
		if (h.OpCode == ws.OpContinuation) != (msg != nil) {
			c.putBuf(msg)
			return nil, ErrProtocol
		}
		if msg == nil {
			msg = readBufs.Get().(*[]byte)
			*msg = (*msg)[:0]
		}
		start := len(*msg)
		if h.Length > int64(c.opts.MaxMessageBytes-start) {
			c.putBuf(msg)
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
			c.readBuf = msg
			return *msg, nil
		}
	}
}

func (c *Conn) readControl(h ws.Header) error {
	if h.Length > 125 || !h.Fin {
		return ErrProtocol
	}
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
