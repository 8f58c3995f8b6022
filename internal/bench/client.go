package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
)

// subscriptionID is the id every bench connection subscribes with (the
// baseline server frames its MESSAGEs with it once for everyone).
const subscriptionID = "sub-0"

// readBufferSize is each connection's read buffer: a few MESSAGE frames
// per read when the server coalesces writes, 40 MB for 10,000 connections.
const readBufferSize = 4096

// dialer opens bench connections.
type dialer struct {
	wire     wire
	url      string // the dialect's WebSocket URL, ws://host:port/websocket?...
	wsBase   string // ws://host:port
	http     string // http://host:port, for the dialects' HTTP steps
	hc       *http.Client
	token    string // what wire.prepare fetched for every connection
	key      string
	org      string
	timeout  time.Duration
	localIPs []net.IP // source addresses to spread connections over; empty: the kernel's choice
	perIP    int      // connections per source address
}

func newDialer(w wire, cfg Config, localIPs []net.IP, perIP int) *dialer {
	u, _ := url.Parse(cfg.URL) // checked by withDefaults
	return &dialer{
		wire: w, url: cfg.URL, wsBase: u.Scheme + "://" + u.Host, http: strings.TrimSuffix(cfg.HTTP, "/"),
		hc: &http.Client{Timeout: cfg.ConnectTimeout, Transport: &http.Transport{
			MaxIdleConnsPerHost: cfg.DialConcurrency, DisableCompression: true,
		}},
		key: cfg.Key, org: cfg.Org, timeout: cfg.ConnectTimeout, localIPs: localIPs, perIP: perIP,
	}
}

// slowReceiveBuffer is a slow connection's socket receive buffer: small,
// so that what it does not read backs up into the server at once.
const slowReceiveBuffer = 8 << 10

// clientConn is one subscribed connection. Only its reader goroutine
// touches the unexported plain fields; the atomics are read by the run.
type clientConn struct {
	nc     net.Conn
	stream Stream
	hist   *Histogram // shared by a few connections (sharded to limit contention)
	run    *runClock
	onF    func(*Frame)
	slow   int // bytes per second this connection reads at most; 0: as fast as it can

	// Reader-only state.
	connected  bool
	subscribed bool
	failure    error
	lastID     uint64
	pong       []byte
	readAt     int64 // Unix ns when the bytes being decoded were read

	received   atomic.Int64 // this run's MESSAGEs
	measured   atomic.Int64 // of which published in the measured window
	duplicates atomic.Int64 // message-id equal to the previous one
	outOfOrder atomic.Int64 // message-id below the previous one
	foreign    atomic.Int64 // MESSAGEs without this run's marker
	frameBytes atomic.Int64 // STOMP bytes of this run's MESSAGEs
	bodyBytes  atomic.Int64 // of which bodies
	lastRecv   atomic.Int64 // Unix ns of the latest measured receipt
	closing    atomic.Bool
}

// runClock is what readers share with the run: when measuring started.
type runClock struct {
	measureStart atomic.Int64 // Unix ns; events stamped before are warm-up
}

// dial opens connection i, authenticates and subscribes as its dialect
// does (STOMP: CONNECT and SUBSCRIBE with a receipt), and returns once the
// server confirmed the subscription: it is then active.
func (d *dialer) dial(ctx context.Context, i int, c *clientConn) error {
	nd := &net.Dialer{Timeout: d.timeout}
	if c.slow > 0 {
		nd.Control = func(_, _ string, rc syscall.RawConn) error {
			var err error
			rc.Control(func(fd uintptr) {
				err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, slowReceiveBuffer)
			})
			return err
		}
	}
	if len(d.localIPs) > 0 {
		nd.LocalAddr = &net.TCPAddr{IP: d.localIPs[min(i/d.perIP, len(d.localIPs)-1)]}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	target, header, err := d.wire.open(ctx, d)
	if err != nil {
		return err
	}
	wd := ws.Dialer{
		Timeout: d.timeout,
		Header:  ws.HandshakeHeaderHTTP(header),
		NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return nd.DialContext(ctx, network, addr)
		},
		ReadBufferSize: 1024,
	}
	// A background context: the Timeout bounds the handshake without the
	// interrupter goroutine a cancellable context costs per dial.
	nc, br, _, err := wd.Dial(context.Background(), target)
	if err != nil {
		return fmt.Errorf("WebSocket handshake: %w", err)
	}
	c.nc = nc
	var pending []byte
	if br != nil {
		pending = make([]byte, br.Buffered())
		br.Read(pending)
		ws.PutReader(br)
	}
	out, subscribe := d.wire.hello(d)
	if out == nil { // nothing to authenticate: subscribe at once
		c.connected = true
		out, subscribe = subscribe, nil
	}
	nc.SetDeadline(time.Now().Add(d.timeout))
	if _, err := nc.Write(out); err != nil {
		nc.Close()
		return fmt.Errorf("send the first messages: %w", err)
	}
	c.onF = c.onFrame
	if len(pending) > 0 {
		if err := c.stream.Feed(pending, c.onF); err != nil {
			nc.Close()
			return err
		}
	}
	buf := make([]byte, 512)
	for !c.subscribed && c.failure == nil {
		if c.connected && subscribe != nil {
			if _, err := nc.Write(subscribe); err != nil {
				c.failure = fmt.Errorf("send the subscription: %w", err)
				break
			}
			subscribe = nil
		}
		n, err := nc.Read(buf)
		if n > 0 {
			c.readAt = time.Now().UnixNano()
			if ferr := c.stream.Feed(buf[:n], c.onF); ferr != nil && c.failure == nil {
				c.failure = ferr
			}
		}
		if err != nil && c.failure == nil {
			c.failure = fmt.Errorf("waiting for the subscription's confirmation: %w", err)
		}
	}
	if c.failure != nil {
		nc.Close()
		return c.failure
	}
	nc.SetDeadline(time.Time{})
	return nil
}

// onFrame handles one frame from the server.
func (c *clientConn) onFrame(f *Frame) {
	switch f.Command {
	case CommandMessage:
		if !f.Stamped {
			c.foreign.Add(1)
			return
		}
		now := c.readAt
		switch {
		case !f.HasID:
		case f.MessageID == c.lastID:
			c.duplicates.Add(1)
		case f.MessageID < c.lastID:
			c.outOfOrder.Add(1)
		default:
			c.lastID = f.MessageID
		}
		c.received.Add(1)
		c.frameBytes.Add(int64(len(f.Raw)))
		c.bodyBytes.Add(int64(f.BodyLen))
		if f.Stamp >= c.run.measureStart.Load() {
			c.hist.Record(now - f.Stamp)
			c.measured.Add(1)
			c.lastRecv.Store(now)
		}
	case CommandConnected:
		c.connected = true
	case CommandReceipt:
		// A JSON dialect's scanner reports only the bench's own answer.
		if c.connected && (c.stream.Scan != nil || string(f.Header("receipt-id")) == subscriptionID) {
			c.subscribed = true
		}
	case CommandError:
		switch {
		case c.failure != nil:
		case c.stream.Scan != nil:
			c.failure = fmt.Errorf("server refused: %s", clipBytes(f.Raw, 300))
		default:
			c.failure = fmt.Errorf("server sent ERROR %q: %s", f.Header("message"), bytes.TrimSpace(f.Body()))
		}
	case CommandPing:
		c.pong = append(c.pong, f.Raw...)
		if len(c.pong) > 125 {
			c.pong = c.pong[:125]
		}
	}
}

// readLoop reads until the connection fails or is closed; it returns nil
// when the run closed it.
func (c *clientConn) readLoop() error {
	buf := make([]byte, readBufferSize)
	var began time.Time
	var total int64
	if c.slow > 0 {
		buf = buf[:min(len(buf), max(c.slow/10, 64))] // about ten reads a second
		began = time.Now()
	}
	for {
		if c.slow > 0 {
			// Read no faster than c.slow bytes per second since the start.
			due := began.Add(time.Duration(float64(total) / float64(c.slow) * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				time.Sleep(wait)
			}
		}
		n, err := c.nc.Read(buf)
		total += int64(n)
		if n > 0 {
			// Every frame of one read arrived by the time it returned.
			c.readAt = time.Now().UnixNano()
			if ferr := c.stream.Feed(buf[:n], c.onF); ferr != nil {
				err = ferr
			}
			if c.failure != nil {
				err = c.failure
			}
			if c.pong != nil && err == nil {
				_, err = c.nc.Write(appendClientFrameOp(nil, ws.OpPong, c.pong))
				c.pong = nil
			}
		}
		if err != nil {
			if c.closing.Load() {
				return nil
			}
			var ce *CloseError
			if errors.As(err, &ce) {
				return err
			}
			return fmt.Errorf("read: %w", err)
		}
	}
}

// close closes the connection without lingering (no TIME_WAIT for the
// next run's source ports).
func (c *clientConn) close() {
	c.closing.Store(true)
	if tc, ok := c.nc.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.nc.Close()
}

func clipBytes(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// appendClientFrame appends a masked, final text frame, as a client must send.
func appendClientFrame(dst []byte, payload string) []byte {
	return appendClientFrameOp(dst, ws.OpText, []byte(payload))
}

func appendClientFrameOp(dst []byte, op ws.OpCode, payload []byte) []byte {
	dst = append(dst, 0x80|byte(op))
	switch n := len(payload); {
	case n < 126:
		dst = append(dst, 0x80|byte(n))
	case n <= 0xffff:
		dst = binary.BigEndian.AppendUint16(append(dst, 0x80|126), uint16(n))
	default:
		dst = binary.BigEndian.AppendUint64(append(dst, 0x80|127), uint64(n))
	}
	var mask [4]byte
	binary.LittleEndian.PutUint32(mask[:], rand.Uint32())
	dst = append(dst, mask[:]...)
	for i, b := range payload {
		dst = append(dst, b^mask[i&3])
	}
	return dst
}
