package session

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/dialect/stomp"
	"github.com/herald-gw/herald/internal/filter"
	"github.com/herald-gw/herald/internal/hub"
	"github.com/herald-gw/herald/internal/wsconn"
)

// STOMP extension headers of herald (ignored by vendor clients).
const (
	HeaderAfter   = "x-herald-after"   // resume: deliver every event after this id first
	HeaderEntity  = "x-herald-entity"  // filter: comma list of entity names
	HeaderType    = "x-herald-type"    // filter: comma list of change types
	HeaderDevice  = "x-herald-device"  // filter: comma list of device uuids
	HeaderTrigger = "x-herald-trigger" // filter: comma list of policy alert triggers
)

// TopicPrefix is the destination prefix of an org's change topic.
const TopicPrefix = "/topic/change/"

// STOMPConfig configures the stomp dialect.
type STOMPConfig struct {
	Log    herald.EventLog
	Hub    *hub.Hub
	Logger *slog.Logger
	Limits stomp.Limits
	// HeartBeat is what the server offers in CONNECTED: it can send every
	// HeartBeat and wants to hear from the client every HeartBeat. Default 10s.
	HeartBeat time.Duration
	// ConnectTimeout closes a connection that sends no CONNECT in time. Default 30s.
	ConnectTimeout time.Duration
	// MaxPendingAcks bounds unacknowledged messages per subscription in
	// client ack modes. Default 10000.
	MaxPendingAcks int
	// MaxSubscriptions bounds the subscriptions of one connection. Default 100.
	MaxSubscriptions int
	ServerName       string  // "herald/<version>"
	Gauges           *Gauges // counts connections and subscriptions; may be nil
}

// WithDefaults returns c with its zero fields set to the defaults.
func (c STOMPConfig) WithDefaults() STOMPConfig {
	if c.MaxSubscriptions <= 0 {
		c.MaxSubscriptions = 100
	}
	if c.HeartBeat <= 0 {
		c.HeartBeat = 10 * time.Second
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 30 * time.Second
	}
	if c.MaxPendingAcks <= 0 {
		c.MaxPendingAcks = 10000
	}
	if c.ServerName == "" {
		c.ServerName = "herald"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Gauges == nil {
		c.Gauges = new(Gauges)
	}
	return c
}

// stompSub is what the renderer and ACK handling need of a subscription.
// id and mode never change; pending is guarded by mu.
type stompSub struct {
	id      string
	mode    string // auto | client | client-individual
	gone    bool   // unsubscribed; reader goroutine only
	mu      sync.Mutex
	pending []uint64 // delivered, unacknowledged event ids, in order
}

// stompConn is one STOMP connection.
type stompConn struct {
	cfg       *STOMPConfig
	principal herald.Principal
	conn      *wsconn.Conn
	parser    *stomp.Parser
	version   string
	session   *Session
	readWait  time.Duration               // client heart-beat deadline; 0 = none
	subs      atomic.Pointer[[]*stompSub] // by tag; copy on write, read by the renderer
	active    int                         // live subscriptions; reader goroutine only
	txs       map[string][]*stomp.Frame   // open transactions and their ACK/NACKs; made on the first BEGIN
	overAcks  atomic.Bool
}

// ServeSTOMP serves a STOMP session on an upgraded connection. It returns
// at once; the connection's reader (see wsconn.Conn.Serve) drives the
// session, and ended, if not nil, is called once the session is over. cfg
// is shared by the node's connections: set it up once, with WithDefaults.
func ServeSTOMP(conn *wsconn.Conn, p herald.Principal, cfg *STOMPConfig, ended func()) {
	c := &stompConn{
		cfg: cfg, principal: p, conn: conn,
		parser: stomp.NewParser(cfg.Limits),
	}
	conn.SetRenderer(c)
	cfg.Gauges.Connections.Add(1)
	finish := func() {
		if c.session != nil {
			c.session.Close()
		}
		conn.Close()
		cfg.Gauges.Connections.Add(-1)
		cfg.Gauges.Subscriptions.Add(-int64(c.active))
		if ended != nil {
			ended()
		}
	}
	conn.SetReadDeadline(time.Now().Add(cfg.ConnectTimeout))
	conn.Serve(func(data []byte, err error) bool {
		switch {
		case err == nil:
		case errors.Is(err, wsconn.ErrMessageTooLarge), errors.Is(err, wsconn.ErrFrameTooLarge):
			c.fail(nil, "frame too large", "A WebSocket message exceeded the server's frame size limit.")
		case errors.Is(err, os.ErrDeadlineExceeded) && c.session == nil:
			c.fail(nil, "connect timeout", "No CONNECT frame arrived in time.")
		case errors.Is(err, os.ErrDeadlineExceeded):
			c.fail(nil, "no heart-beat", "Nothing was received within the negotiated heart-beat interval.")
		case errors.Is(err, wsconn.ErrPeerClosed):
			// The close reply is queued: let it go out.
		default:
			finish() // the peer is gone: nothing to flush
			return false
		}
		if err != nil || !c.process(data) {
			// The connection is ending: stop reading, and let the writer
			// flush what is queued (ERROR, RECEIPT, close) and close it.
			<-conn.Done()
			finish()
			return false
		}
		return true
	})
}

// process handles the frames of one inbound message; false means the
// connection is ending.
func (c *stompConn) process(data []byte) bool {
	if c.readWait > 0 {
		c.conn.SetReadDeadline(time.Now().Add(c.readWait))
	}
	c.parser.Feed(data)
	for {
		f, err := c.parser.Next()
		if err != nil {
			return c.fail(receiptFrame(err), "malformed frame", err.Error())
		}
		if f == nil {
			return true
		}
		if !c.handle(f) {
			return false
		}
	}
}

// handle processes one client frame; false means the connection is ending.
func (c *stompConn) handle(f *stomp.Frame) bool {
	if c.session == nil {
		if f.Command != "CONNECT" && f.Command != "STOMP" {
			return c.fail(f, "not connected", "The first frame must be CONNECT or STOMP.")
		}
		return c.connect(f)
	}
	switch f.Command {
	case "SUBSCRIBE":
		return c.subscribe(f)
	case "UNSUBSCRIBE":
		return c.unsubscribe(f)
	case "ACK", "NACK":
		if tx, ok := f.Get("transaction"); ok {
			if _, open := c.txs[tx]; !open {
				return c.fail(f, "unknown transaction", "No transaction "+tx+" is open.")
			}
			c.txs[tx] = append(c.txs[tx], f)
			return c.receipt(f)
		}
		return c.ack(f)
	case "BEGIN", "COMMIT", "ABORT":
		return c.transaction(f)
	case "DISCONNECT":
		if r, ok := f.Get("receipt"); ok {
			c.conn.CloseAfterFlush(ws.StatusNormalClosure, "",
				stomp.AppendFrame(nil, c.version, "RECEIPT", []stomp.Header{{Name: "receipt-id", Value: r}}, nil))
		} else {
			c.conn.CloseAfterFlush(ws.StatusNormalClosure, "", nil)
		}
		return false
	case "CONNECT", "STOMP":
		return c.fail(f, "already connected", "CONNECT was already received on this connection.")
	case "SEND":
		return c.fail(f, "SEND not supported", "herald does not take events over STOMP; publish with POST /api/events.")
	}
	return c.fail(f, "unexpected frame", f.Command+" is not a client frame.")
}

func (c *stompConn) connect(f *stomp.Frame) bool {
	accept, present := f.Get("accept-version")
	v, ok := stomp.NegotiateVersion(accept, present)
	if !ok {
		c.conn.CloseAfterFlush(ws.StatusProtocolError, "", stomp.AppendFrame(nil, stomp.V12, "ERROR", []stomp.Header{
			{Name: "version", Value: "1.2,1.1,1.0"},
			{Name: "content-type", Value: "text/plain"},
			{Name: "message", Value: "unsupported protocol version"},
		}, []byte("Supported protocol versions are 1.0, 1.1 and 1.2.")))
		return false
	}
	c.version = v
	c.parser.SetVersion(v)
	hb, _ := f.Get("heart-beat")
	cx, cy, err := stomp.ParseHeartBeat(hb)
	if err != nil {
		return c.fail(f, "bad heart-beat header", err.Error())
	}
	ms := int(c.cfg.HeartBeat / time.Millisecond)
	headers := []stomp.Header{{Name: "version", Value: v}}
	var out time.Duration
	if v != stomp.V10 {
		headers = append(headers, stomp.Header{Name: "heart-beat", Value: strconv.Itoa(ms) + "," + strconv.Itoa(ms)})
		if cy > 0 {
			out = time.Duration(max(ms, cy)) * time.Millisecond
		}
		if cx > 0 {
			// Allow the client twice its interval, as stompjs does for us.
			c.readWait = 2*time.Duration(max(ms, cx))*time.Millisecond + time.Second
		}
	}
	headers = append(headers,
		stomp.Header{Name: "session", Value: newSessionID()},
		stomp.Header{Name: "server", Value: c.cfg.ServerName})
	if r, ok := f.Get("receipt"); ok {
		headers = append(headers, stomp.Header{Name: "receipt-id", Value: r})
	}
	// CONNECTED must be the first message the client sees, so it is queued
	// before the session exists and before any heart-beat can be.
	c.conn.Send(stomp.AppendFrame(nil, v, "CONNECTED", headers, nil))
	c.session = New(Config{
		Org: c.principal.Org, Log: c.cfg.Log, Hub: c.cfg.Hub, Conn: c.conn, Logger: c.cfg.Logger, Gauges: c.cfg.Gauges,
		OnLost: func(err error) {
			if herald.ErrorCode(err) == herald.ECONFLICT {
				c.fail(nil, "events lost", herald.ErrorMessage(err))
				return
			}
			c.fail(nil, "catch-up failed", "Reading the event log failed; reconnect and resume from your last message-id.")
		},
	})
	if c.readWait > 0 {
		c.conn.SetReadDeadline(time.Now().Add(c.readWait))
	} else {
		c.conn.SetReadDeadline(time.Time{})
	}
	c.conn.StartHeartbeat(out, []byte("\n"))
	return true
}

func (c *stompConn) subscribe(f *stomp.Frame) bool {
	id, ok := f.Get("id")
	if !ok || id == "" {
		return c.fail(f, "missing id header", "SUBSCRIBE requires an id header.")
	}
	id = strings.Clone(id) // kept for the subscription's life; not the whole frame head
	if _, dup := c.lookup(id); dup {
		return c.fail(f, "duplicate subscription id", "Subscription "+id+" already exists on this connection.")
	}
	if c.active >= c.cfg.MaxSubscriptions {
		return c.fail(f, "too many subscriptions",
			"A connection may hold "+strconv.Itoa(c.cfg.MaxSubscriptions)+" subscriptions (limits.max_subscriptions).")
	}
	dest, _ := f.Get("destination")
	org, ok := strings.CutPrefix(dest, TopicPrefix)
	if !ok || org == "" || strings.ContainsAny(org, "/*>") {
		return c.fail(f, "unknown destination", "Destinations have the form /topic/change/{orgUuid}.")
	}
	if !strings.EqualFold(org, c.principal.Org) {
		return c.fail(f, "access denied", "This API key may not subscribe to "+dest+".")
	}
	mode, _ := f.Get("ack")
	switch mode {
	case "":
		mode = "auto"
	case "auto", "client", "client-individual":
	default:
		return c.fail(f, "bad ack header", "ack must be auto, client or client-individual.")
	}
	var after *uint64
	if s, ok := f.Get(HeaderAfter); ok {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return c.fail(f, "bad "+HeaderAfter+" header", HeaderAfter+" must be an event id (a decimal number).")
		}
		after = &n
	}
	flt := filter.Filter{
		Entities: filter.ParseList(header(f, HeaderEntity)),
		Types:    filter.ParseList(header(f, HeaderType)),
		Devices:  filter.ParseList(header(f, HeaderDevice)),
		Triggers: filter.ParseList(header(f, HeaderTrigger)),
	}
	old := c.loadSubs()
	tag := uint32(len(old))
	subs := append(old[:len(old):len(old)], &stompSub{id: id, mode: mode})
	c.subs.Store(&subs)
	c.active++
	// The RECEIPT is queued once the subscription is active and before any
	// of its messages.
	ok = true
	c.session.Subscribe(&Sub{ID: id, Tag: tag, Filter: flt}, after, func() {
		c.cfg.Gauges.Subscriptions.Add(1)
		ok = c.receipt(f)
	})
	return ok
}

func (c *stompConn) unsubscribe(f *stomp.Frame) bool {
	id, _ := f.Get("id")
	tag, ok := c.lookup(id)
	if !ok || id == "" {
		return c.fail(f, "unknown subscription", "There is no subscription "+id+" on this connection.")
	}
	c.loadSubs()[tag].gone = true
	c.active--
	c.cfg.Gauges.Subscriptions.Add(-1)
	c.session.Unsubscribe(id)
	return c.receipt(f)
}

func (c *stompConn) transaction(f *stomp.Frame) bool {
	tx, ok := f.Get("transaction")
	if !ok || tx == "" {
		return c.fail(f, "missing transaction header", f.Command+" requires a transaction header.")
	}
	frames, open := c.txs[tx]
	switch {
	case f.Command == "BEGIN" && open:
		return c.fail(f, "transaction already open", "Transaction "+tx+" is already open.")
	case f.Command == "BEGIN":
		if c.txs == nil {
			c.txs = make(map[string][]*stomp.Frame)
		}
		c.txs[tx] = nil
	case !open:
		return c.fail(f, "unknown transaction", "No transaction "+tx+" is open.")
	case f.Command == "COMMIT":
		delete(c.txs, tx)
		for _, a := range frames {
			if !c.applyAck(a) {
				return false
			}
		}
	default: // ABORT
		delete(c.txs, tx)
	}
	return c.receipt(f)
}

func (c *stompConn) ack(f *stomp.Frame) bool {
	if !c.applyAck(f) {
		return false
	}
	return c.receipt(f)
}

// applyAck settles an ACK or NACK. herald does not redeliver NACKed
// messages: the event stays in the log, where a resume can fetch it.
func (c *stompConn) applyAck(f *stomp.Frame) bool {
	tag, seq, ok := c.ackTarget(f)
	if !ok {
		return c.fail(f, "bad ack id", "The ACK/NACK does not name a message awaiting acknowledgement.")
	}
	if !c.loadSubs()[tag].settle(seq) {
		return c.fail(f, "bad ack id", "The ACK/NACK does not name a message awaiting acknowledgement.")
	}
	return true
}

// settle removes an acknowledged message: in client mode it and every
// earlier one, in client-individual mode only it. It reports whether the
// message was awaiting acknowledgement.
func (s *stompSub) settle(seq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.pending {
		if x != seq {
			continue
		}
		if s.mode == "client" {
			s.pending = append(s.pending[:0], s.pending[i+1:]...)
		} else {
			s.pending = append(s.pending[:i], s.pending[i+1:]...)
		}
		return true
	}
	return false
}

// ackTarget finds the subscription tag and event id an ACK names: the
// 1.2 `id` header (our `ack` token "tag.id"), or 1.0/1.1's
// `subscription` + `message-id`.
func (c *stompConn) ackTarget(f *stomp.Frame) (uint32, uint64, bool) {
	var tag uint32
	var seqText string
	if token, ok := f.Get("id"); ok && c.version == stomp.V12 {
		tagText, s, found := strings.Cut(token, ".")
		n, err := strconv.ParseUint(tagText, 10, 32)
		if !found || err != nil || int(n) >= len(c.loadSubs()) {
			return 0, 0, false
		}
		tag, seqText = uint32(n), s
	} else {
		subID, _ := f.Get("subscription")
		t, ok := c.lookup(subID)
		if !ok {
			return 0, 0, false
		}
		tag, seqText = t, header(f, "message-id")
	}
	seq, err := strconv.ParseUint(seqText, 10, 64)
	return tag, seq, err == nil
}

// lookup returns the tag of the live subscription id. A connection holds
// at most MaxSubscriptions, so a scan is as quick as a map and costs no
// memory.
func (c *stompConn) lookup(id string) (uint32, bool) {
	for tag, s := range c.loadSubs() {
		if s.id == id && !s.gone {
			return uint32(tag), true
		}
	}
	return 0, false
}

func (c *stompConn) receipt(f *stomp.Frame) bool {
	r, ok := f.Get("receipt")
	if !ok {
		return true
	}
	if !c.conn.Send(stomp.AppendFrame(nil, c.version, "RECEIPT", []stomp.Header{{Name: "receipt-id", Value: r}}, nil)) {
		c.conn.Close()
		return false
	}
	return true
}

// fail sends an ERROR frame and closes the connection after it. It returns
// false so that handlers can `return c.fail(...)`.
func (c *stompConn) fail(f *stomp.Frame, message, detail string) bool {
	headers := []stomp.Header{{Name: "message", Value: message}, {Name: "content-type", Value: "text/plain"}}
	if f != nil {
		if r, ok := f.Get("receipt"); ok {
			headers = append(headers, stomp.Header{Name: "receipt-id", Value: r})
		}
	}
	v := c.version
	if v == "" {
		v = stomp.V12
	}
	c.conn.CloseAfterFlush(ws.StatusPolicyViolation, message, stomp.AppendFrame(nil, v, "ERROR", headers, []byte(detail)))
	return false
}

func (c *stompConn) loadSubs() []*stompSub {
	if p := c.subs.Load(); p != nil {
		return *p
	}
	return nil
}

// AppendEvent implements wsconn.Renderer: the shared MESSAGE head and
// body come from the event's cache, only the subscription (and ack)
// headers are written per recipient.
func (c *stompConn) AppendEvent(parts [][]byte, scratch []byte, m wsconn.Message) ([][]byte, []byte) {
	e := m.Event
	frame := e.Rendered(herald.RenderSTOMP, renderMessage)
	split := len(frame) - len(e.Body) - 1
	sub := c.loadSubs()[m.Tag]
	ack := ""
	if sub.mode != "auto" {
		ack = c.track(sub, e.ID, m.Tag)
	}
	start := len(scratch)
	scratch = stomp.AppendRecipientHeaders(scratch, c.version, sub.id, ack)
	return append(parts, frame[:split], scratch[start:], frame[split:]), scratch
}

// track records a delivered message awaiting ACK and returns its ack token.
func (c *stompConn) track(sub *stompSub, id uint64, tag uint32) string {
	sub.mu.Lock()
	sub.pending = append(sub.pending, id)
	over := len(sub.pending) > c.cfg.MaxPendingAcks
	sub.mu.Unlock()
	if over && !c.overAcks.Swap(true) {
		c.fail(nil, "too many unacknowledged messages",
			"Subscription "+sub.id+" has more than "+strconv.Itoa(c.cfg.MaxPendingAcks)+" messages awaiting ACK.")
	}
	return strconv.FormatUint(uint64(tag), 10) + "." + strconv.FormatUint(id, 10)
}

// renderMessage encodes the shared part of an event's MESSAGE frame:
// head then body and NUL; the per-recipient headers go in between.
func renderMessage(e *herald.Event) []byte {
	b := stomp.MessageHead(make([]byte, 0, 160+len(e.Body)), TopicPrefix+e.Org, e.IDString(), len(e.Body))
	return stomp.MessageTail(b, e.Body)
}

// receiptFrame returns a stand-in frame carrying the receipt header of a
// frame that failed to parse, if the parser could read it, so the ERROR
// names it; nil otherwise.
func receiptFrame(err error) *stomp.Frame {
	var pe *stomp.ParseError
	if errors.As(err, &pe) && pe.Receipt != "" {
		return &stomp.Frame{Headers: []stomp.Header{{Name: "receipt", Value: pe.Receipt}}}
	}
	return nil
}

func header(f *stomp.Frame, name string) string {
	v, _ := f.Get(name)
	return v
}

func newSessionID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
