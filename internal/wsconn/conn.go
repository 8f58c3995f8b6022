// Package wsconn is herald's WebSocket connection engine: upgrade, a read
// loop with limits, a bounded outbound queue drained by a writer goroutine
// that exists only while there is something to write, one writev per
// flush, write deadlines, heart-beats and close.
package wsconn

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"

	"github.com/herald-gw/herald"
)

// Options bound a connection. Zero fields take the defaults.
type Options struct {
	MaxMessageBytes int           // largest inbound message; default 80 KiB
	QueueMessages   int           // outbound queue bound in messages; default 4096
	QueueBytes      int           // outbound queue bound in payload bytes, the batch being written included; default 4 MiB
	WriteTimeout    time.Duration // a peer that accepts no byte for this long is disconnected; default 10s
}

// Stats are what a connection wrote, for metrics.
type Stats struct {
	Events       uint64 // event messages written to the socket: deliveries
	Bytes        uint64 // bytes written to the socket, frame headers included
	WriteTimeout bool   // cut off: the peer accepted nothing for WriteTimeout
}

func (o Options) withDefaults() Options {
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 80 << 10
	}
	if o.QueueMessages <= 0 {
		o.QueueMessages = 4096
	}
	if o.QueueBytes <= 0 {
		o.QueueBytes = 4 << 20
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	return o
}

// Message is one queued outbound message: either an event, rendered by the
// connection's Renderer when it is written, or ready-made Data.
type Message struct {
	Event *herald.Event
	Sub   any    // the dialect's recipient of Event (its subscription), handed back to the Renderer
	Data  []byte // a whole payload when Event is nil; never modified after queueing
	op    ws.OpCode
}

// Renderer renders queued events. It is called from the writer goroutine
// only.
type Renderer interface {
	// AppendEvents appends the payload parts of one WebSocket message
	// carrying events[0] and, if the dialect frames several events in one
	// message, as many of the events that follow as it takes; it returns
	// how many it took (at least 1). events are consecutive event messages
	// of the queue, in order. Per-recipient bytes are appended to scratch
	// and sliced from it; shared, cached encodings are appended to parts
	// as they are.
	AppendEvents(parts [][]byte, scratch []byte, events []Message) ([][]byte, []byte, int)
}

// Framer is a Renderer that can also hand over events as whole WebSocket
// frames, header included, encoded once per event and shared by its
// recipients (herald.Event.RenderedFor): the writer then copies one part
// per event instead of assembling several.
type Framer interface {
	Renderer
	// AppendFramed appends the frames of events from events[0] on, one part
	// each, and returns how many it appended: 0 when events[0] must be
	// rendered with AppendEvents.
	AppendFramed(parts [][]byte, events []Message) ([][]byte, int)
}

// ErrMessageTooLarge is returned by ReadMessage for an inbound message over
// MaxMessageBytes. The message is skipped: reading may go on.
var ErrMessageTooLarge = errors.New("message too large")

// Conn is one upgraded WebSocket connection.
//
// Concurrency: ReadMessage is called by one reader goroutine at a time
// (Serve's). EnqueueAll, Send and Close may be called from any goroutine. mu guards the queue
// fields below it; the writer goroutine runs while writing is true.
type Conn struct {
	nc       net.Conn
	src      source
	reader   *bufio.Reader // pooled; nil while idle (see Serve)
	opts     Options
	renderer Renderer
	readBuf  *[]byte // pooled payload buffer of the last ReadMessage
	// copyAll makes each write one buffer: a connection that is not a
	// socket (TLS) writes every buffer of a writev on its own, a TLS
	// record and a syscall each.
	copyAll bool

	// The reader's state (see Serve); used by one goroutine at a time.
	onRead    func([]byte, error) bool
	raw       syscall.RawConn
	peekFn    func(fd uintptr) bool
	peekWait  bool
	peekEmpty bool
	peekByte  [1]byte
	skipping  bool // the rest of a too-large message is being skipped

	mu          sync.Mutex
	queuedEvent uint64        // guarded by mu: the highest event id ever queued
	queue       []Message     // guarded by mu; nil while idle
	qbox        *[]Message    // guarded by mu: the pooled box queue goes back in
	queuedBytes int           // guarded by mu: queue's bytes and flying's
	flying      int           // guarded by mu: messages the writer took and has not written yet
	writing     bool          // guarded by mu: a writer goroutine is running
	writerGone  chan struct{} // guarded by mu: closed when the running writer exits; made by WaitWriter
	closing     bool          // guarded by mu: close once the queue is flushed
	closed      bool          // guarded by mu

	wrote     atomic.Bool   // set by the writer; heart-beats skip a period with traffic
	rendering atomic.Int64  // set by the writer: its buffers' capacity while it writes
	written   atomic.Uint64 // the highest event id written to the socket
	// What the writer wrote, counted per connection (no cache line shared
	// between connections on the delivery path); read by Stats.
	wroteEvents  atomic.Uint64
	wroteBytes   atomic.Uint64
	writeTimeout atomic.Bool
	room         chan struct{} // guarded by mu; made by the first Room call
	done         chan struct{}
	closeOnce    sync.Once
	heartbeat    *time.Timer   // guarded by mu
	beatEvery    time.Duration // check period (half the interval); set once with heartbeat
	beat         []byte        // set once with heartbeat
	beatOp       ws.OpCode     // set once with heartbeat
}

// Upgrade completes the WebSocket handshake on w. If the client offered
// sub-protocols, the first of supported (in the server's order of
// preference) that the client offered is selected; none is selected
// otherwise. It returns the connection and the selected protocol.
func Upgrade(w http.ResponseWriter, r *http.Request, supported []string, opts Options) (*Conn, string, error) {
	protocol := selectProtocol(r.Header.Values("Sec-WebSocket-Protocol"), supported)
	upgrader := ws.HTTPUpgrader{Protocol: func(p string) bool { return p == protocol }}
	nc, rw, _, err := upgrader.Upgrade(r, w)
	if err != nil {
		return nil, "", err
	}
	c := NewConn(nc, opts)
	if n := rw.Reader.Buffered(); n > 0 {
		// The client spoke before reading our handshake reply: keep those bytes.
		c.src.prefix, _ = rw.Reader.Peek(n)
		c.src.prefix = append([]byte(nil), c.src.prefix...)
	}
	return c, protocol, nil
}

// NewConn wraps a connection whose WebSocket handshake is already done
// (server side): for tests, benchmarks and other upgraders.
func NewConn(nc net.Conn, opts Options) *Conn {
	_, socket := nc.(syscall.Conn)
	return &Conn{
		nc:      nc,
		src:     source{nc: nc},
		opts:    opts.withDefaults(),
		done:    make(chan struct{}),
		copyAll: !socket,
	}
}

func selectProtocol(offered, supported []string) string {
	var names []string
	for _, line := range offered {
		for p := range strings.SplitSeq(line, ",") {
			names = append(names, strings.TrimSpace(p))
		}
	}
	for _, s := range supported {
		for _, p := range names {
			if p == s {
				return s
			}
		}
	}
	return ""
}

// Stats returns what the connection has written so far.
func (c *Conn) Stats() Stats {
	return Stats{Events: c.wroteEvents.Load(), Bytes: c.wroteBytes.Load(), WriteTimeout: c.writeTimeout.Load()}
}

// SetRenderer sets how queued events are rendered; call it before the
// first event is queued.
func (c *Conn) SetRenderer(r Renderer) { c.renderer = r }

// Done is closed when the connection is closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Room receives a value after the writer has written part of what was
// queued (a batch is counted until it is written), so a producer that
// found the queue full can try again.
func (c *Conn) Room() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.room == nil {
		// Only connections that ever fell behind need one. It starts with
		// a token: the writer may have drained the queue before it existed,
		// and the caller then retries at once instead of missing that.
		c.room = make(chan struct{}, 1)
		c.room <- struct{}{}
	}
	return c.room
}

// SetReadDeadline bounds the wait for the next inbound data (zero: none).
func (c *Conn) SetReadDeadline(t time.Time) error { return c.nc.SetReadDeadline(t) }
