package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gobwas/ws"
)

// Bounds of the baseline server.
const (
	baselineMaxConns     = 200_000
	baselineMaxBody      = 4 << 20
	baselineQueue        = 64 // pre-framed batches waiting per shard; then ingest waits
	baselineWriteTimeout = 10 * time.Second
	baselineCoalesce     = 256     // batches written in one writev at most
	baselineCoalesceMax  = 1 << 20 // and at most this many bytes
)

// Baseline is the bench's reference server: just enough of one of herald's
// dialects and of its ingest for `herald bench` (for STOMP: WebSocket
// upgrade at /websocket with x-auth-apikey, CONNECTED to CONNECT, RECEIPT
// to SUBSCRIBE; the others in baseline_wire.go; for all, POST /api/events
// with one event, an array or NDJSON, and POST /api/org/getOrgV2), and
// nothing else: no durability, no filters, no per-connection queue.
//
// Each published event is framed once — WebSocket header and the
// dialect's message with herald's fields and shape, so of the same size
// (a STOMP MESSAGE, a channels alert, an ess or streams push) — and the
// frames of a request are written to every connection with one writev,
// by one writer goroutine per core, each owning a shard of the
// connections; batches queued meanwhile are coalesced into the same
// writev. Events keep their order and are never dropped: a full queue
// makes the ingest request wait. That is the machine's practical limit
// for fan-out over TCP, the yardstick for herald's numbers.
type Baseline struct {
	org    string
	key    string
	wire   baselineWire
	shards []*baselineShard
	http   *http.Server
	done   chan struct{}

	publishMu sync.Mutex // orders publishes: sequence and enqueue order
	seq       uint64     // guarded by publishMu

	connMu  sync.Mutex
	conns   map[*baselineConn]struct{} // guarded by connMu
	closed  bool                       // guarded by connMu
	next    int                        // shard of the next subscriber; guarded by connMu
	workers sync.WaitGroup
}

// baselineShard is the connections one writer goroutine owns.
type baselineShard struct {
	mu    sync.Mutex
	conns []*baselineConn // subscribed; guarded by mu
	queue chan []byte     // pre-framed batches in publish order

	// The writer's working memory.
	snapshot []*baselineConn
	pending  [][]byte
	parts    [][]byte
	bufs     net.Buffers // WriteTo consumes it; a field so it does not escape per write
}

type baselineConn struct {
	nc   net.Conn
	dead bool // set by the writer after a failed write; writer-only
}

// NewBaseline returns a baseline server of one dialect ("" for stomp) for
// one org and API key.
func NewBaseline(org, key, dialect string) (*Baseline, error) {
	w, ok := baselineWires[cmpOr(dialect, "stomp")]
	if !ok {
		_, err := wireOf(dialect)
		return nil, err
	}
	b := &Baseline{org: org, key: key, wire: w, done: make(chan struct{}), conns: make(map[*baselineConn]struct{})}
	for range runtime.GOMAXPROCS(0) {
		s := &baselineShard{queue: make(chan []byte, baselineQueue)}
		b.shards = append(b.shards, s)
		b.workers.Add(1)
		go func() {
			defer b.workers.Done()
			s.writeLoop(b.done)
		}()
	}
	mux := http.NewServeMux()
	w.routes(b, mux)
	mux.HandleFunc("POST /api/events", b.serveEvents)
	mux.HandleFunc("POST /api/org/getOrgV2", b.serveOrg)
	b.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return b, nil
}

// Serve serves on ln until Close.
func (b *Baseline) Serve(ln net.Listener) error {
	err := b.http.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops serving, closes every connection and waits for the
// baseline's goroutines.
func (b *Baseline) Close() error {
	err := b.http.Close()
	b.connMu.Lock()
	if !b.closed {
		b.closed = true
		close(b.done)
	}
	for c := range b.conns {
		c.nc.Close()
	}
	b.connMu.Unlock()
	b.workers.Wait()
	return err
}

func (b *Baseline) authorized(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("x-auth-apikey") != b.key {
		http.Error(w, `{"error":{"code":"unauthorized","message":"invalid API key"}}`, http.StatusUnauthorized)
		return false
	}
	return true
}

func (b *Baseline) serveOrg(w http.ResponseWriter, r *http.Request) {
	if !b.authorized(w, r) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"error":false,"errorMsg":null,"org":{"name":"baseline","uuid":%q},"warningMsg":null}`, b.org)
}

// serveWebSocket upgrades (the dialect's route checked the credentials),
// then reads the client's frames until it leaves.
func (b *Baseline) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	b.connMu.Lock()
	full := b.closed || len(b.conns) >= baselineMaxConns
	b.connMu.Unlock()
	if full {
		http.Error(w, "too many connections", http.StatusServiceUnavailable)
		return
	}
	nc, rw, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		return
	}
	c := &baselineConn{nc: nc}
	b.connMu.Lock()
	if b.closed {
		b.connMu.Unlock()
		nc.Close()
		return
	}
	b.conns[c] = struct{}{}
	b.workers.Add(1) // under connMu with closed false: Close's Wait has not begun
	b.connMu.Unlock()
	defer b.workers.Done()
	var shard *baselineShard
	if _, ok := b.wire.(stompWire); ok {
		shard = b.readLoop(c, rw.Reader)
	} else {
		shard = b.readJSON(c, rw.Reader)
	}
	if shard != nil {
		shard.remove(c)
	}
	b.connMu.Lock()
	delete(b.conns, c)
	b.connMu.Unlock()
	nc.Close()
}

// readClientFrame reads one masked client frame of at most 64 KiB and
// unmasks it. ok is false when the client left, closed or broke the
// protocol; payload is nil for a ping or pong; fin is the frame's FIN.
func readClientFrame(br io.Reader) (payload []byte, fin, ok bool) {
	h, err := ws.ReadHeader(br)
	if err != nil || h.Length > 64<<10 || !h.Masked {
		return nil, false, false
	}
	payload = make([]byte, h.Length)
	if _, err := io.ReadFull(br, payload); err != nil {
		return nil, false, false
	}
	ws.Cipher(payload, h.Mask, 0)
	switch h.OpCode {
	case ws.OpClose:
		return nil, false, false
	case ws.OpPing, ws.OpPong:
		return nil, h.Fin, true
	}
	return payload, h.Fin, true
}

// readLoop answers CONNECT and SUBSCRIBE and returns when the client
// leaves, with the shard it subscribed on (nil if none).
func (b *Baseline) readLoop(c *baselineConn, br io.Reader) *baselineShard {
	var shard *baselineShard
	var stomp []byte
	connected := false
	for {
		payload, _, ok := readClientFrame(br)
		if !ok {
			return shard
		}
		if payload == nil {
			continue // a ping or pong
		}
		stomp = append(stomp, payload...)
		for {
			stomp = stomp[skipEOL(stomp):]
			f, n, ok := ScanFrame(stomp, nil)
			if !ok {
				break
			}
			frame := f.Raw
			stomp = stomp[n:]
			cmd, _, _ := bytes.Cut(frame, []byte("\n"))
			switch string(bytes.TrimSuffix(cmd, []byte("\r"))) {
			case "CONNECT", "STOMP":
				if connected || writeText(c.nc, "CONNECTED\nversion:1.2\nheart-beat:0,0\nserver:herald-bench-baseline\n\n\x00") != nil {
					return shard
				}
				connected = true
			case "SUBSCRIBE":
				dest := string(f.Header("destination"))
				if !connected || shard != nil || string(f.Header("id")) != subscriptionID ||
					!strings.EqualFold(dest, "/topic/change/"+b.org) {
					writeText(c.nc, "ERROR\nmessage:the baseline takes one SUBSCRIBE, id "+subscriptionID+
						", to its org's topic\n\n\x00")
					return shard
				}
				shard = b.nextShard()
				var receipt string
				if id := f.Header("receipt"); id != nil {
					receipt = "RECEIPT\nreceipt-id:" + string(id) + "\n\n\x00"
				}
				if shard.add(c, receipt) != nil {
					return shard
				}
			case "DISCONNECT":
				return shard
			default:
				if shard == nil {
					writeText(c.nc, "ERROR\nmessage:not supported by the baseline\n\n\x00")
				}
				return shard
			}
		}
		if len(stomp) > 64<<10 {
			return shard
		}
	}
}

// nextShard is the shard of the next subscriber.
func (b *Baseline) nextShard() *baselineShard {
	b.connMu.Lock()
	defer b.connMu.Unlock()
	s := b.shards[b.next%len(b.shards)]
	b.next++
	return s
}

// add subscribes c and writes its receipt, both under the shard's lock,
// so that the receipt precedes every MESSAGE the writer sends c.
func (s *baselineShard) add(c *baselineConn, receipt string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if receipt != "" {
		if err := writeText(c.nc, receipt); err != nil {
			return err
		}
	}
	s.conns = append(s.conns, c)
	return nil
}

func (s *baselineShard) remove(c *baselineConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.conns {
		if x == c {
			last := len(s.conns) - 1
			s.conns[i] = s.conns[last]
			s.conns[last] = nil
			s.conns = s.conns[:last]
			return
		}
	}
}

// writeLoop writes queued batches to the shard's connections: everything
// queued so far in one writev per connection.
func (s *baselineShard) writeLoop(done <-chan struct{}) {
	for {
		select {
		case p := <-s.queue:
			s.pending = append(s.pending[:0], p)
		case <-done:
			return
		}
		size := len(s.pending[0])
	more:
		for len(s.pending) < baselineCoalesce && size < baselineCoalesceMax {
			select {
			case p := <-s.queue:
				s.pending = append(s.pending, p)
				size += len(p)
			default:
				break more
			}
		}
		s.mu.Lock()
		s.snapshot = append(s.snapshot[:0], s.conns...)
		s.mu.Unlock()
		for _, c := range s.snapshot {
			if c.dead {
				continue
			}
			// The deadline bounds this write, not the whole pass: a pass
			// over thousands of connections may take longer.
			c.nc.SetWriteDeadline(time.Now().Add(baselineWriteTimeout))
			s.parts = append(s.parts[:0], s.pending...)
			s.bufs = s.parts
			if _, err := s.bufs.WriteTo(c.nc); err != nil {
				c.dead = true
				c.nc.Close() // its reader unsubscribes it
			}
		}
		clear(s.snapshot)
		clear(s.pending)
	}
}

// serveEvents is POST /api/events: frame each event once, hand the batch
// to every shard, answer the ids.
func (b *Baseline) serveEvents(w http.ResponseWriter, r *http.Request) {
	if !b.authorized(w, r) {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, baselineMaxBody))
	if err != nil {
		http.Error(w, `{"error":{"code":"too_large","message":"body too large"}}`, http.StatusRequestEntityTooLarge)
		return
	}
	events, err := splitEvents(body, maxBatch)
	if err != nil {
		http.Error(w, `{"error":{"code":"invalid","message":`+strconv.Quote(err.Error())+`}}`, http.StatusBadRequest)
		return
	}
	nowMs := time.Now().UnixMilli()
	answer := make([]byte, 0, 16+12*len(events))
	answer = append(answer, `{"ids":[`...)
	b.publishMu.Lock()
	var batch []byte
	for i, ev := range events {
		b.seq++
		batch = b.appendMessage(batch, b.seq, nowMs, ev, b.wire)
		if i > 0 {
			answer = append(answer, ',')
		}
		answer = append(answer, '"')
		answer = strconv.AppendUint(answer, b.seq, 10)
		answer = append(answer, '"')
	}
	for _, s := range b.shards {
		select {
		case s.queue <- batch:
		case <-b.done:
			b.publishMu.Unlock()
			http.Error(w, "closing", http.StatusServiceUnavailable)
			return
		}
	}
	b.publishMu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(answer, "]}\n"...))
}

// appendMessage appends one event as herald would send it to a bench
// connection: an unmasked WebSocket text frame holding w's message.
func (b *Baseline) appendMessage(dst []byte, id uint64, nowMs int64, event []byte, w baselineWire) []byte {
	msg := w.appendPayload(nil, b, id, nowMs, event)
	dst = appendServerHeader(dst, len(msg))
	return append(dst, msg...)
}

// appendBody appends the body herald delivers for event: "id", "channel",
// "org" and "timestampMs" added (at the front rather than in key order;
// the size is what matters).
func (b *Baseline) appendBody(dst []byte, id uint64, nowMs int64, event []byte) []byte {
	dst = append(dst, `{"id":"`...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, `","channel":"events","org":"`...)
	dst = append(dst, b.org...)
	dst = append(dst, `","timestampMs":`...)
	dst = strconv.AppendInt(dst, nowMs, 10)
	if rest := bytes.TrimSpace(event[1:]); len(rest) > 0 && rest[0] != '}' {
		dst = append(dst, ',')
	}
	return append(dst, bytes.TrimSpace(event[1:])...)
}

// splitEvents splits one event object, a JSON array of them, or NDJSON
// into the events' raw objects.
func splitEvents(body []byte, maxEvents int) ([][]byte, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, errors.New("empty body")
	}
	var raws []json.RawMessage
	if body[0] == '[' {
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, err
		}
	} else {
		dec := json.NewDecoder(bytes.NewReader(body))
		for {
			var raw json.RawMessage
			err := dec.Decode(&raw)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, err
			}
			raws = append(raws, raw)
		}
	}
	if len(raws) == 0 || len(raws) > maxEvents {
		return nil, fmt.Errorf("want 1 to %d events, got %d", maxEvents, len(raws))
	}
	out := make([][]byte, len(raws))
	for i, raw := range raws {
		raw = bytes.TrimSpace(raw)
		if len(raw) < 2 || raw[0] != '{' {
			return nil, fmt.Errorf("event %d is not a JSON object", i)
		}
		out[i] = raw
	}
	return out, nil
}

// writeText writes one unmasked WebSocket text frame.
func writeText(nc net.Conn, payload string) error {
	nc.SetWriteDeadline(time.Now().Add(baselineWriteTimeout))
	_, err := nc.Write(append(appendServerHeader(nil, len(payload)), payload...))
	return err
}

// appendServerHeader appends an unmasked, final text frame header.
func appendServerHeader(dst []byte, n int) []byte {
	dst = append(dst, 0x80|opText)
	switch {
	case n < 126:
		return append(dst, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(dst, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(dst, 127), uint64(n))
	}
}

// ServeBaseline runs a baseline server on addr until ctx is done; ready,
// if not nil, receives the bound address once it listens. Only loopback
// addresses are accepted: the baseline has one key and no limits worth
// exposing.
func ServeBaseline(ctx context.Context, addr, org, key, dialect string, ready func(net.Addr)) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("the baseline listens on loopback only, not %q", addr)
	}
	b, err := NewBaseline(org, key, dialect)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- b.Serve(ln) }()
	select {
	case <-ctx.Done():
		b.Close()
		<-errc
		return nil
	case err := <-errc:
		b.Close()
		return err
	}
}
