package wsconn

import (
	"encoding/binary"
	"errors"
	"math"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/gobwas/ws"
)

// Send queues a whole text message (a reply, an error, a heart-beat).
// Replies are admitted past the event bound up to twice it; beyond that
// the peer is flooding us without reading and Send returns false.
func (c *Conn) Send(data []byte) bool { return c.sendOp(ws.OpText, data) }

func (c *Conn) sendOp(op ws.OpCode, data []byte) bool {
	m := Message{Data: data, op: op}
	c.mu.Lock()
	ok := !c.closing && !c.closed && len(c.queue)+c.flying < 2*c.opts.QueueMessages &&
		c.queuedBytes+len(data) <= 2*c.opts.QueueBytes
	if ok {
		c.pushLocked(m)
	}
	c.mu.Unlock()
	return ok
}

// CloseAfterFlush queues last (if not nil) and a WebSocket close frame,
// and closes the connection once they are written. Nothing more is queued.
func (c *Conn) CloseAfterFlush(code ws.StatusCode, reason string, last []byte) {
	c.mu.Lock()
	if c.closing || c.closed {
		c.mu.Unlock()
		return
	}
	if last != nil {
		c.pushLocked(Message{Data: last, op: ws.OpText})
	}
	c.pushLocked(Message{Data: ws.NewCloseFrameBody(code, reason), op: ws.OpClose})
	c.closing = true
	c.mu.Unlock()
}

// Close closes the connection at once. It is safe to call many times.
func (c *Conn) Close() {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.queue = nil
		c.queuedBytes, c.flying = 0, 0
		if c.heartbeat != nil {
			c.heartbeat.Stop()
		}
		c.mu.Unlock()
		c.nc.Close()
		close(c.done)
	})
}

// WaitWriter returns once no writer runs. After Close, the writer stops
// at its next step (a write in progress fails), so Written is final once
// WaitWriter returns: a write the peer has read but the writer has not
// yet counted is counted by then.
func (c *Conn) WaitWriter() {
	c.mu.Lock()
	if !c.writing {
		c.mu.Unlock()
		return
	}
	if c.writerGone == nil {
		c.writerGone = make(chan struct{})
	}
	gone := c.writerGone
	c.mu.Unlock()
	<-gone
}

// Buffered returns the bytes the connection holds for its peer: queued
// messages and the batch the writer is writing, as the queue bound counts
// them (an event's body plus 64, a reply's payload), plus the capacity of
// the writer's rendering buffers while it writes. The kernel's socket
// buffers are not in it.
func (c *Conn) Buffered() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queuedBytes + int(c.rendering.Load())
}

func (m *Message) size() int {
	if m.Event != nil {
		return len(m.Event.Body) + 64
	}
	return len(m.Data)
}

func (c *Conn) roomLocked(n, bytes int) bool {
	return !c.closing && !c.closed && len(c.queue)+c.flying+n <= c.opts.QueueMessages &&
		c.queuedBytes+bytes <= c.opts.QueueBytes
}

// pushLocked appends m and starts the writer if none runs.
func (c *Conn) pushLocked(m Message) {
	if m.op == 0 {
		m.op = ws.OpText
	}
	if c.qbox == nil {
		c.qbox = queues.Get().(*[]Message)
		c.queue = (*c.qbox)[:0]
	}
	c.queue = append(c.queue, m)
	c.queuedBytes += m.size()
	if m.Event != nil {
		c.queuedEvent = max(c.queuedEvent, m.Event.ID)
	}
	if !c.writing {
		c.writing = true
		startWriter(c)
	}
}

// Writer goroutines outlive their connection's burst: one that has drained
// its queue waits idleWriter for another connection's, then exits. A busy
// node so reuses goroutines whose stacks have grown to what a write needs,
// instead of starting one per burst per connection and growing its stack
// (a tenth of the CPU at 1k subscribers), and an idle one keeps none.
const idleWriter = time.Second

// idle hands a connection to a writer goroutine waiting for one.
var idle = make(chan *Conn)

// starting hands connections to new writer goroutines. A goroutine started
// with `go c.writeLoop()` allocates its closure; one started as
// `go startedWriter()` captures nothing and allocates nothing, and takes
// its connection from here instead. Every send is paired with exactly one
// such goroutine, so a send that finds the buffer full waits only until
// the goroutines already started take theirs.
var starting = make(chan *Conn, 1<<14)

func startWriter(c *Conn) {
	select {
	case idle <- c:
		return
	default:
	}
	starting <- c
	go startedWriter()
}

func startedWriter() {
	c := <-starting
	t := time.NewTimer(idleWriter)
	defer t.Stop()
	for {
		c.writeLoop()
		t.Reset(idleWriter)
		select {
		case c = <-idle:
		case <-t.C:
			return
		}
	}
}

// writeState is the writer's working memory, pooled so that idle
// connections hold none of it.
type writeState struct {
	batch   []Message
	parts   [][]byte
	scratch []byte
	out     [][]byte    // parts with the small ones copied together into wbuf
	wbuf    []byte      // the copies
	bufs    net.Buffers // WriteTo consumes it; kept here so it does not escape per flush
}

var writeStates = sync.Pool{New: func() any { return new(writeState) }}

// queues are the outbound queues of busy connections: an idle connection
// gives its queue back, so that it holds no slice sized by its last burst.
var queues = sync.Pool{New: func() any { q := make([]Message, 0, 16); return &q }}

// Writes copy parts shorter than copyBelow (headers, small bodies) into
// one buffer instead of giving each an iovec of its own: the kernel's cost
// per iovec exceeds a small copy, and the runtime keeps, for the life of
// the socket, an iovec array as large as the largest writev it made. At
// most maxIovecs go in one writev for the same reason.
// One write takes messages of at most about flushBytes (queue accounting:
// an event counts its body plus 64), so that the writer's buffers stay
// small however much is queued.
const (
	copyBelow  = 1024
	maxIovecs  = 64
	flushBytes = 64 << 10
)

// writeLoop drains the queue, one writev per batch, and exits when the
// queue is empty. It is the only goroutine that writes to the socket.
func (c *Conn) writeLoop() {
	st := writeStates.Get().(*writeState)
	defer func() {
		c.rendering.Store(0)
		writeStates.Put(st)
	}()
	for {
		c.mu.Lock()
		if len(c.queue) == 0 || c.closed {
			c.writing = false
			if c.writerGone != nil {
				close(c.writerGone)
				c.writerGone = nil
			}
			if c.qbox != nil {
				// Empty, and its slots were cleared when flushed.
				*c.qbox = c.queue[:0]
				queues.Put(c.qbox)
				c.qbox, c.queue = nil, nil
			}
			closing := c.closing && !c.closed
			c.mu.Unlock()
			if closing {
				c.Close()
			}
			return
		}
		// The batch stays counted in queuedBytes and flying until it is
		// written: a peer that stops reading holds at most the bound.
		st.batch, c.queue = c.queue, st.batch[:0]
		c.flying = len(st.batch)
		c.mu.Unlock()
		err := c.flush(st)
		clear(st.batch) // drop event references before idling in the pool
		st.batch = st.batch[:0]
		if err != nil {
			c.Close()
			continue
		}
	}
}

func (c *Conn) flush(st *writeState) error {
	for from := 0; from < len(st.batch); {
		next, closeAfter, err := c.flushChunk(st, from)
		bytes := 0
		for i := from; i < next; i++ {
			bytes += st.batch[i].size()
		}
		c.release(next-from, bytes)
		if err != nil {
			return err
		}
		if closeAfter {
			c.Close()
			return nil
		}
		from = next
	}
	return nil
}

// release takes n written messages of bytes out of the queue's count and
// tells a producer waiting for room.
func (c *Conn) release(n, bytes int) {
	c.mu.Lock()
	c.flying = max(c.flying-n, 0) // Close may have zeroed both
	c.queuedBytes = max(c.queuedBytes-bytes, 0)
	room := c.room
	c.mu.Unlock()
	select {
	case room <- struct{}{}: // nil: nobody ever waited
	default:
	}
}

// flushChunk renders and writes the batch's messages from from on, up to
// about flushBytes of them (at least one message), and returns where it
// stopped and whether it wrote the close frame. Bounding one write bounds
// the writer's buffers, which hold copies of what they write.
func (c *Conn) flushChunk(st *writeState, from int) (next int, closeAfter bool, err error) {
	parts, scratch := st.parts[:0], st.scratch[:0]
	var lastEvent uint64
	events := 0
	size, i := 0, from
	// run ends the events the renderer may frame together: the run of
	// consecutive events from i within the chunk's bytes. Where it ends
	// depends on the chunk's start, not on i, so it is found once per run,
	// not once per message: a renderer that takes one event at a time
	// would otherwise make a deep queue's flush quadratic.
	run := 0
	framer, _ := c.renderer.(Framer)
	for ; i < len(st.batch) && size < flushBytes; i++ {
		m := &st.batch[i]
		if m.Event != nil && run <= i {
			run = i + 1
			for runBytes := size + m.size(); run < len(st.batch) && st.batch[run].Event != nil && runBytes < flushBytes; run++ {
				runBytes += st.batch[run].size()
			}
		}
		at := -1 // where the frame header goes, filled in below; none for whole frames
		if m.Event != nil {
			var took int
			if framer != nil {
				parts, took = framer.AppendFramed(parts, st.batch[i:run])
			}
			if took == 0 {
				at = len(parts)
				parts = append(parts, nil)
				parts, scratch, took = c.renderer.AppendEvents(parts, scratch, st.batch[i:run])
			}
			first := i
			i += min(max(took, 1), run-i) - 1
			events += i - first + 1
			lastEvent = max(lastEvent, st.batch[i].Event.ID)
			for k := first; k <= i; k++ {
				size += st.batch[k].size()
			}
		} else {
			at = len(parts)
			parts = append(parts, nil, m.Data)
			size += len(m.Data)
		}
		if at < 0 {
			continue
		}
		n := 0
		for _, p := range parts[at+1:] {
			n += len(p)
		}
		start := len(scratch)
		scratch = appendFrameHeader(scratch, m.op, n)
		parts[at] = scratch[start:len(scratch):len(scratch)]
		if m.op == ws.OpClose {
			closeAfter = true
			i++
			break
		}
	}
	c.wrote.Store(true)
	below := copyBelow
	if c.copyAll {
		below = math.MaxInt
	}
	out, wbuf := compact(st.out[:0], st.wbuf[:0], parts, below)
	c.rendering.Store(int64(cap(scratch) + cap(wbuf)))
	written := 0
	for k := 0; k < len(out) && err == nil; k += maxIovecs {
		st.bufs = out[k:min(k+maxIovecs, len(out))]
		var n int64
		n, err = c.write(&st.bufs)
		written += int(n)
	}
	c.wroteBytes.Add(uint64(written))
	if err == nil {
		c.wroteEvents.Add(uint64(events))
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		c.writeTimeout.Store(true)
	}
	st.bufs = nil
	clear(parts)
	clear(out)
	st.parts, st.scratch, st.out, st.wbuf = parts[:0], scratch[:0], out[:0], wbuf[:0]
	if err == nil && lastEvent > c.written.Load() {
		c.written.Store(lastEvent) // the writer is the only one storing it
	}
	return i, closeAfter, err
}

// compact appends parts to out, copying runs of parts shorter than
// below into wbuf so that each run is one part.
func compact(out [][]byte, wbuf []byte, parts [][]byte, below int) ([][]byte, []byte) {
	need := 0
	for _, p := range parts {
		if len(p) < below {
			need += len(p)
		}
	}
	wbuf = slices.Grow(wbuf[:0], need) // no reallocation below: earlier runs stay valid
	run := 0                           // start of the current run in wbuf
	for _, p := range parts {
		if len(p) < below {
			wbuf = append(wbuf, p...)
			continue
		}
		if run < len(wbuf) {
			out = append(out, wbuf[run:len(wbuf):len(wbuf)])
			run = len(wbuf)
		}
		out = append(out, p)
	}
	if run < len(wbuf) {
		out = append(out, wbuf[run:len(wbuf):len(wbuf)])
	}
	return out, wbuf
}

// write writes bufs, giving up only when the peer accepted nothing for a
// whole WriteTimeout: a peer that reads, however slowly, is not cut off
// for the size of what it is behind.
func (c *Conn) write(bufs *net.Buffers) (written int64, err error) {
	for {
		c.nc.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout))
		n, err := bufs.WriteTo(c.nc)
		written += n
		if err == nil || n == 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			return written, err
		}
	}
}

// AppendTextHeader appends the header of an unmasked, final WebSocket text
// frame of n payload bytes, for a Framer's frames.
func AppendTextHeader(dst []byte, n int) []byte { return appendFrameHeader(dst, ws.OpText, n) }

// appendFrameHeader appends an unmasked, final WebSocket frame header.
func appendFrameHeader(dst []byte, op ws.OpCode, n int) []byte {
	dst = append(dst, 0x80|byte(op))
	switch {
	case n < 126:
		return append(dst, byte(n))
	case n <= 0xFFFF:
		return binary.BigEndian.AppendUint16(append(dst, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(dst, 127), uint64(n))
	}
}

// StartHeartbeat makes sure the peer hears from us at least every
// interval: it queues payload when nothing was written for a while. It
// checks every interval/2 and sends when the last check saw no write, so
// the gap between two writes never exceeds interval, and an idle
// connection gets one heart-beat per interval (the heart-beat's own write
// marks the following half period as busy). A runtime timer, not a
// goroutine, waits while idle.
func (c *Conn) StartHeartbeat(interval time.Duration, payload []byte) {
	c.startBeat(interval, payload, ws.OpText)
}

// StartPing is StartHeartbeat with WebSocket pings instead of a text
// message, for dialects whose messages have no heart-beat of their own.
func (c *Conn) StartPing(interval time.Duration) {
	c.startBeat(interval, []byte("herald"), ws.OpPing)
}

func (c *Conn) startBeat(interval time.Duration, payload []byte, op ws.OpCode) {
	if interval <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.heartbeat != nil {
		return
	}
	c.beatEvery, c.beat, c.beatOp = max(interval/2, time.Millisecond), payload, op
	c.heartbeat = time.AfterFunc(c.beatEvery, c.heartbeatTick)
}

func (c *Conn) heartbeatTick() {
	if !c.wrote.Swap(false) {
		c.sendOp(c.beatOp, c.beat)
	}
	c.mu.Lock()
	if !c.closed {
		c.heartbeat.Reset(c.beatEvery)
	}
	c.mu.Unlock()
}
