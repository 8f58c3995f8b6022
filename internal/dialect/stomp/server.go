package stomp

import (
	"errors"
	"os"
	"strconv"
	"time"

	"github.com/gobwas/ws"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/session"
	"github.com/herald-gw/herald/internal/wsconn"
)

// Name is the dialect's name, in metrics and logs.
const Name = "stomp"

// Protocols are the WebSocket sub-protocols of STOMP, preferred first.
var Protocols = []string{"v12.stomp", "v11.stomp", "v10.stomp"}

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

// Config configures the stomp dialect of a node; one is shared by all its
// connections. Set it up once, with WithDefaults.
type Config struct {
	Node   *session.Node // required
	Limits Limits
	// HeartBeat is what the server offers in CONNECTED: it can send every
	// HeartBeat and wants to hear from the client every HeartBeat. Default 10s.
	HeartBeat time.Duration
	// ConnectTimeout closes a connection that sends no CONNECT in time. Default 30s.
	ConnectTimeout time.Duration
	// MaxPendingAcks bounds unacknowledged messages per subscription in
	// client ack modes, and the ACKs one transaction holds. Default 10000.
	MaxPendingAcks int
	// MaxTransactions bounds the transactions open at once on one
	// connection. Default 16.
	MaxTransactions int
	ServerName      string // "herald/<version>"
}

// WithDefaults returns c with its zero fields set to the defaults.
func (c Config) WithDefaults() Config {
	if c.HeartBeat <= 0 {
		c.HeartBeat = 10 * time.Second
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 30 * time.Second
	}
	if c.MaxPendingAcks <= 0 {
		c.MaxPendingAcks = 10000
	}
	if c.MaxTransactions <= 0 {
		c.MaxTransactions = 16
	}
	if c.ServerName == "" {
		c.ServerName = "herald"
	}
	return c
}

// conn is one STOMP connection: the dialect's session.Handler.
type conn struct {
	cfg       *Config
	principal herald.Principal
	conn      *wsconn.Conn
	session   *session.Session
	parser    *Parser
	version   string        // negotiated by CONNECT; "" before
	readWait  time.Duration // client heart-beat deadline; 0 = none
	txs       map[string][]ackRef
}

// Serve serves a STOMP session on an upgraded connection for p. It
// returns at once (see session.Serve); ended, if not nil, is called once
// the session is over.
func Serve(c *wsconn.Conn, p herald.Principal, cfg *Config, ended func()) {
	h := &conn{cfg: cfg, principal: p, conn: c, parser: NewParser(cfg.Limits)}
	h.session = session.New(cfg.Node, c)
	h.session.SetDialect(Name)
	c.SetReadDeadline(time.Now().Add(cfg.ConnectTimeout))
	h.session.Serve(h, ended)
}

// Handle implements session.Handler: it handles the frames of one
// inbound message.
func (c *conn) Handle(data []byte) bool {
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

// ReadFailed implements session.Handler.
func (c *conn) ReadFailed(err error) bool {
	switch {
	case errors.Is(err, wsconn.ErrMessageTooLarge), errors.Is(err, wsconn.ErrFrameTooLarge):
		return c.fail(nil, "frame too large", "A WebSocket message exceeded the server's frame size limit.")
	case errors.Is(err, os.ErrDeadlineExceeded) && c.version == "":
		return c.fail(nil, "connect timeout", "No CONNECT frame arrived in time.")
	}
	return c.fail(nil, "no heart-beat", "Nothing was received within the negotiated heart-beat interval.")
}

// Lost implements session.Handler.
func (c *conn) Lost(err error) {
	switch herald.ErrorCode(err) {
	case herald.ECONFLICT:
		c.fail(nil, "events lost", herald.ErrorMessage(err))
		return
	case herald.EUNAUTHORIZED:
		c.fail(nil, "unauthorized", "The connection's credential is no longer valid: "+herald.ErrorMessage(err)+".")
		return
	}
	c.fail(nil, "catch-up failed", "Reading the event log failed; reconnect and resume from your last message-id.")
}

// Ended implements session.Handler.
func (c *conn) Ended() {}

// handle processes one client frame; false means the connection is ending.
func (c *conn) handle(f *Frame) bool {
	if c.version == "" {
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
		return c.ack(f)
	case "BEGIN", "COMMIT", "ABORT":
		return c.transaction(f)
	case "DISCONNECT":
		var last []byte
		if r, ok := f.Get("receipt"); ok {
			last = AppendFrame(nil, c.version, "RECEIPT", []Header{{Name: "receipt-id", Value: r}}, nil)
		}
		c.conn.CloseAfterFlush(ws.StatusNormalClosure, "", last)
		return false
	case "CONNECT", "STOMP":
		return c.fail(f, "already connected", "CONNECT was already received on this connection.")
	case "SEND":
		return c.fail(f, "SEND not supported", "herald does not take events over STOMP; publish with POST /api/events.")
	}
	return c.fail(f, "unexpected frame", f.Command+" is not a client frame.")
}

func (c *conn) connect(f *Frame) bool {
	accept, present := f.Get("accept-version")
	v, ok := NegotiateVersion(accept, present)
	if !ok {
		c.conn.CloseAfterFlush(ws.StatusProtocolError, "", AppendFrame(nil, V12, "ERROR", []Header{
			{Name: "version", Value: "1.2,1.1,1.0"},
			{Name: "content-type", Value: "text/plain"},
			{Name: "message", Value: "unsupported protocol version"},
		}, []byte("Supported protocol versions are 1.0, 1.1 and 1.2.")))
		return false
	}
	hb, _ := f.Get("heart-beat")
	cx, cy, err := ParseHeartBeat(hb)
	if err != nil {
		return c.fail(f, "bad heart-beat header", err.Error())
	}
	c.version = v
	c.parser.SetVersion(v)
	ms := int(c.cfg.HeartBeat / time.Millisecond)
	headers := []Header{{Name: "version", Value: v}}
	var out time.Duration
	if v != V10 {
		headers = append(headers, Header{Name: "heart-beat", Value: strconv.Itoa(ms) + "," + strconv.Itoa(ms)})
		if cy > 0 {
			out = time.Duration(max(ms, cy)) * time.Millisecond
		}
		if cx > 0 {
			// Allow the client twice its interval, as stompjs does for us.
			c.readWait = 2*time.Duration(max(ms, cx))*time.Millisecond + time.Second
		}
	}
	headers = append(headers,
		Header{Name: "session", Value: session.NewID()},
		Header{Name: "server", Value: c.cfg.ServerName})
	if r, ok := f.Get("receipt"); ok {
		headers = append(headers, Header{Name: "receipt-id", Value: r})
	}
	// CONNECTED must be the first message the client sees, so it is queued
	// before the session starts and before any heart-beat can be.
	c.conn.Send(AppendFrame(nil, v, "CONNECTED", headers, nil))
	c.session.Start(c.principal)
	if c.readWait > 0 {
		c.conn.SetReadDeadline(time.Now().Add(c.readWait))
	} else {
		c.conn.SetReadDeadline(time.Time{})
	}
	c.conn.StartHeartbeat(out, []byte("\n"))
	return true
}

func (c *conn) receipt(f *Frame) bool {
	r, ok := f.Get("receipt")
	if !ok {
		return true
	}
	if !c.conn.Send(AppendFrame(nil, c.version, "RECEIPT", []Header{{Name: "receipt-id", Value: r}}, nil)) {
		// The client sends without reading: it is flooding us.
		c.conn.Close()
		return false
	}
	return true
}

// fail sends an ERROR frame and closes the connection after it. It returns
// false so that handlers can `return c.fail(...)`.
func (c *conn) fail(f *Frame, message, detail string) bool {
	headers := []Header{{Name: "message", Value: message}, {Name: "content-type", Value: "text/plain"}}
	if f != nil {
		if r, ok := f.Get("receipt"); ok {
			headers = append(headers, Header{Name: "receipt-id", Value: r})
		}
	}
	v := c.version
	if v == "" {
		v = V12
	}
	c.conn.CloseAfterFlush(ws.StatusPolicyViolation, message, AppendFrame(nil, v, "ERROR", headers, []byte(detail)))
	return false
}

// receiptFrame returns a stand-in frame carrying the receipt header of a
// frame that failed to parse, if the parser could read it, so the ERROR
// names it; nil otherwise.
func receiptFrame(err error) *Frame {
	var pe *ParseError
	if errors.As(err, &pe) && pe.Receipt != "" {
		return &Frame{Headers: []Header{{Name: "receipt", Value: pe.Receipt}}}
	}
	return nil
}

func header(f *Frame, name string) string {
	v, _ := f.Get(name)
	return v
}
