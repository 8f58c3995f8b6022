package wsconn

import (
	"bufio"
	"errors"
	"net"
	"sync"
	"syscall"
)

// Serve reads inbound messages and passes each to fn, in order, on a
// goroutine of its own, and returns at once. When reading fails (the peer
// closed or broke the protocol, a read deadline passed, the connection was
// closed), fn is called once more with that error and nil data. Reading
// stops after that call or after fn returns false, except that after
// ErrMessageTooLarge (the message was skipped) it goes on if fn returns
// true.
//
// An idle connection holds no reader goroutine and no read buffer: after
// each message, if nothing more is waiting on the socket, the goroutine
// that read it (whose stack grew while handling it) hands the wait to a
// fresh goroutine and exits, and that one waits for readability in the
// runtime's poller, with a stack of its own of about 2 KB, instead of
// blocking in a read that would need a buffer and a deep stack. Read
// deadlines apply to that wait as to a read. Connections that are not
// sockets (tests' pipes) keep one blocking reader.
func (c *Conn) Serve(fn func(data []byte, err error) bool) {
	c.onRead = fn
	if sc, ok := c.nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw = raw
			c.peekFn = c.peek
		}
	}
	go c.readLoop()
}

// readLoop reads and handles messages while the peer keeps sending.
func (c *Conn) readLoop() {
	for {
		data, err := c.ReadMessage()
		if !c.onRead(data, err) || (err != nil && !errors.Is(err, ErrMessageTooLarge)) {
			c.releaseReader()
			return
		}
		if c.idle() {
			c.releaseReader()
			go c.park()
			return
		}
	}
}

// park waits until the socket is readable (or closed, or past its read
// deadline) and then reads on.
func (c *Conn) park() {
	c.peekWait = true
	err := c.raw.Read(c.peekFn)
	if err != nil {
		c.onRead(nil, err)
		return
	}
	c.readLoop()
}

// idle reports whether nothing is waiting to be read: no buffered bytes
// and none on the socket.
func (c *Conn) idle() bool {
	if c.raw == nil || len(c.src.prefix) > 0 || (c.reader != nil && c.reader.Buffered() > 0) {
		return false
	}
	c.peekWait = false
	if err := c.raw.Read(c.peekFn); err != nil {
		return false // let the next read report it
	}
	return c.peekEmpty
}

// peek looks at the socket without taking anything from it. With
// peekWait it reports false while there is nothing to read, so that
// RawConn.Read waits for readability; without, it only records whether
// there was (peekEmpty).
func (c *Conn) peek(fd uintptr) bool {
	_, _, err := syscall.Recvfrom(int(fd), c.peekByte[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	c.peekEmpty = err == syscall.EAGAIN
	return !(c.peekWait && c.peekEmpty)
}

// readers are the buffered readers of connections that are busy reading;
// an idle connection keeps none.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 512) }}

func (c *Conn) acquireReader() *bufio.Reader {
	if c.reader == nil {
		c.reader = readers.Get().(*bufio.Reader)
		c.reader.Reset(&c.src)
	}
	return c.reader
}

func (c *Conn) releaseReader() {
	c.releaseReadBuf()
	if c.reader != nil && c.reader.Buffered() == 0 {
		c.reader.Reset(nil)
		readers.Put(c.reader)
		c.reader = nil
	}
}

// source is what the buffered reader reads: first any bytes the client
// sent before the handshake completed, then the socket.
type source struct {
	prefix []byte
	nc     net.Conn
}

func (s *source) Read(p []byte) (int, error) {
	if len(s.prefix) > 0 {
		n := copy(p, s.prefix)
		s.prefix = s.prefix[n:]
		return n, nil
	}
	return s.nc.Read(p)
}
