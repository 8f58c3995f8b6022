package streams

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/jsonscan"
	"github.com/herald-gw/herald/internal/session"
	"github.com/herald-gw/herald/internal/wsconn"
)

// CloseCatchUpFailed ends a connection whose session could not read the
// event log for a while (the engine electing a leader for longer than the
// catch-up's retries): nothing was skipped, and the session is kept for
// the client to resume. It is RFC 6455's "Try Again Later", so that a
// client that knows only the standard codes reconnects too; 1011 with
// "events lost" is a real loss.
const CloseCatchUpFailed ws.StatusCode = 1013

// Name is the dialect's name in the session store.
const Name = "streams"

// The acknowledgement's message on success, as the seed shows it.
const processed = "Your request has been processed successfully."

// Config is what the dialect needs from its node, shared by its
// connections. Set it up once, with WithDefaults.
type Config struct {
	Node  *session.Node // required; its DetachWindow is the session TTL
	Index *Index        // required: streams by id, devices by name; kept current by the node
	Dir   Directory     // required: names for rendering

	PingInterval     time.Duration // WebSocket pings; default 30s
	MaxMessageBytes  int           // one inbound message; default 4 KiB
	MaxSubscriptions int           // per session; default 100

	r *renderer
}

// WithDefaults returns c with its zero fields set to the defaults.
func (c Config) WithDefaults() Config {
	if c.PingInterval <= 0 {
		c.PingInterval = 30 * time.Second
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 4 << 10
	}
	if c.MaxSubscriptions <= 0 {
		c.MaxSubscriptions = 100
	}
	c.r = newRenderer(c.Dir, c.Index)
	return c
}

// subscription is one stream or path the session is subscribed to. Key
// is its target, so the id and the path of one stream are one subscription.
type subscription struct {
	Target Target `json:"target"`
	Named  string `json:"named"` // the streamId or path as the client gave it
}

type conn struct {
	cfg     *Config
	conn    *wsconn.Conn
	session *session.Session
	org     string
	orgName string

	subs    atomic.Pointer[[]subscription] // read by the delivery path; replaced whole
	pending *uint64                        // ?after of a session without subscriptions, until its first subscribe
}

// Serve serves the detached session d, taken from the store, on an
// upgraded connection: its subscriptions are restored and delivery
// resumes after d.After, or after *after if the client named an event.
// It returns at once (see session.Serve).
func Serve(c *wsconn.Conn, cfg *Config, d herald.DetachedSession, orgName string, after *uint64, ended func()) {
	h := &conn{cfg: cfg, conn: c, org: d.Org, orgName: orgName}
	var subs []subscription
	if len(d.State) > 0 {
		json.Unmarshal(d.State, &subs) // a session this version cannot read starts without subscriptions
	}
	h.subs.Store(&subs)
	h.session = session.New(cfg.Node, c)
	h.session.SetDialect(Name)
	h.session.Start(herald.Principal{Org: d.Org, Credential: d.Credential, Scopes: []string{herald.ScopeSubscribe}})
	from := d.After
	if after != nil {
		from = *after
	}
	h.session.Keep(d.ID, Name, h.detachedState)
	h.session.Use(h) // Subscribe may queue the replay at once
	if len(subs) == 0 && after != nil {
		// Nothing to replay to yet: the first subscribe starts the replay
		// after *after, so that a new session loses nothing after it.
		h.pending = &from
	} else if err := h.session.Subscribe(&session.Sub{ID: Name, Match: h.match}, &from, nil); err != nil {
		h.replayFailed(err)
	}
	c.StartPing(cfg.PingInterval)
	h.session.Serve(h, ended)
}

// replayFailed ends a connection whose replay could not start. A cursor
// beyond the log's newest event (EINVALID) names no event of this log
// (one that was reset, say): the client's place in it is lost, and the
// connection ends as it always did, with events lost. Anything else is an
// outage for Lost: the log could not say where it ends, and the session
// is kept, with a cursor no later than the one it was asked to resume
// after (the node's head, which that cursor was beyond), so nothing is
// skipped.
func (c *conn) replayFailed(err error) {
	if herald.ErrorCode(err) == herald.EINVALID {
		err = herald.Errorf(herald.ECONFLICT, "%s", herald.ErrorMessage(err))
	}
	c.Lost(err)
}

func (c *conn) detachedState() json.RawMessage {
	b, _ := json.Marshal(*c.subs.Load())
	return b
}

// match is the driver subscription's filter: the union of the session's.
func (c *conn) match(e *herald.Event) bool {
	for _, s := range *c.subs.Load() {
		if s.Target.Covers(e.DeviceUUID, e.Channel) {
			return true
		}
	}
	return false
}

// Handle implements session.Handler: one request.
func (c *conn) Handle(data []byte) bool {
	m, err := Decode(data)
	if err != nil {
		var bad *BadMessage
		errors.As(err, &bad)
		return c.send(appendAck(nil, bad.MsgID, bad.Reason))
	}
	t, note, err := c.resolve(m)
	if err != nil {
		return c.send(appendAck(nil, m.MsgID, herald.ErrorMessage(err)))
	}
	old := *c.subs.Load()
	i := slices.IndexFunc(old, func(s subscription) bool { return s.Target == t })
	var next []subscription
	switch {
	case m.Type == TypeSubscribe && i >= 0:
		next = old
	case m.Type == TypeSubscribe:
		if len(old) >= c.cfg.MaxSubscriptions {
			return c.send(appendAck(nil, m.MsgID, "this session has "+strconv.Itoa(len(old))+" subscriptions, the most it may hold: unsubscribe from one first, or subscribe to a parent path"))
		}
		next = append(slices.Clip(old), subscription{Target: t, Named: m.StreamID + m.Path})
	case i < 0:
		return c.send(appendAck(nil, m.MsgID, "this session is not subscribed to "+quote(m.StreamID+m.Path)))
	default:
		next = slices.Delete(slices.Clone(old), i, i+1)
	}
	if c.pending != nil && m.Type == TypeSubscribe {
		return c.subscribeFirst(m.MsgID, old, next, note)
	}
	// The change and its ack at once: the ack comes before the first event
	// of a new subscription and after the last of an ended one.
	sent := true
	c.session.Change(func() {
		c.subs.Store(&next)
		sent = c.send(appendAck(nil, m.MsgID, "", note...))
	})
	return sent
}

// subscribeFirst makes the first subscription of a session connected
// with ?after and none: the ack, then every event it covers after the
// named event, then live ones.
func (c *conn) subscribeFirst(msgID string, old, next []subscription, note []string) bool {
	c.subs.Store(&next) // nothing reads it before the driver's subscription exists
	sent := true
	err := c.session.Subscribe(&session.Sub{ID: Name, Match: c.match}, c.pending, func() {
		sent = c.send(appendAck(nil, msgID, "", note...))
	})
	if err != nil {
		c.subs.Store(&old)
		return c.send(appendAck(nil, msgID, herald.ErrorMessage(err)))
	}
	c.pending = nil
	return sent
}

// resolve finds the target of a request; note is what the ack adds to
// its success message.
func (c *conn) resolve(m Message) (Target, []string, error) {
	if m.StreamID != "" {
		t, ok := c.cfg.Index.Find(c.org, m.StreamID)
		if !ok {
			return t, nil, &herald.Error{Code: herald.ENOTFOUND, Message: "no stream has the id " + quote(m.StreamID) + " (GET /api/streams lists them)"}
		}
		return t, nil, nil
	}
	t, registered, err := ParsePath(m.Path, c.orgName, c.org, c.cfg.Index)
	if err != nil {
		var bad *BadMessage
		if errors.As(err, &bad) {
			return t, nil, &herald.Error{Code: herald.ENOTFOUND, Message: bad.Reason + " (GET /api/streams lists them)"}
		}
		return t, nil, err
	}
	if !registered {
		return t, []string{"No registered device is named " + quote(t.Device) + ": the path stands for the device with that uuid."}, nil
	}
	return t, nil, nil
}

func (c *conn) send(msg []byte) bool {
	if !c.conn.Send(msg) {
		c.conn.Close()
		return false
	}
	return true
}

// appendAck renders the acknowledgement of a request: ok with the
// success message and notes when errText is "", else ok:false.
func appendAck(dst []byte, msgID, errText string, notes ...string) []byte {
	dst = append(dst, `{"head":{"msgId":`...)
	if msgID == "" {
		dst = append(dst, "null"...)
	} else {
		dst = jsonscan.AppendString(dst, msgID)
	}
	if errText != "" {
		dst = append(dst, `,"ok":false,"errors":[`...)
		dst = jsonscan.AppendString(dst, errText)
		return append(dst, `],"messages":[]},"body":{}}`...)
	}
	dst = append(dst, `,"ok":true,"errors":[],"messages":["`+processed+`"`...)
	for _, n := range notes {
		dst = append(dst, ',')
		dst = jsonscan.AppendString(dst, n)
	}
	return append(dst, `]},"body":{}}`...)
}

// ReadFailed implements session.Handler.
func (c *conn) ReadFailed(err error) bool {
	if errors.Is(err, wsconn.ErrMessageTooLarge) {
		return c.send(appendAck(nil, "", "the message is larger than "+strconv.Itoa(c.cfg.MaxMessageBytes)+" bytes"))
	}
	c.conn.CloseAfterFlush(ws.StatusMessageTooBig, "message larger than "+strconv.Itoa(c.cfg.MaxMessageBytes)+" bytes", nil)
	return false
}

// Lost implements session.Handler. Events past the log's retention
// (ECONFLICT) are a loss: the session is not kept, its id is refused from
// now on, and the client must make a new one. A revoked credential
// (EUNAUTHORIZED) is not kept either. Any other error is a log that could
// not be read even after the catch-up's retries (the engine electing a
// leader), which skipped nothing: the session's cursor has not passed an
// event the client was not sent (a catch-up moves it only past events it
// queued, and the saved cursor stops at the last one written), so the
// session is kept and the client connects to it again, losing nothing.
func (c *conn) Lost(err error) {
	switch herald.ErrorCode(err) {
	case herald.ECONFLICT:
		c.session.Forget()
		c.conn.CloseAfterFlush(ws.StatusInternalServerError, closeReason("events lost: "+herald.ErrorMessage(err)), nil)
	case herald.EUNAUTHORIZED:
		c.session.Forget()
		c.conn.CloseAfterFlush(ws.StatusPolicyViolation, "unauthorized: "+herald.ErrorMessage(err), nil)
	default:
		c.conn.CloseAfterFlush(CloseCatchUpFailed, closeReason("catch-up failed: reconnect to the session to resume ("+
			herald.ErrorMessage(err)+")"), nil)
	}
}

// closeReason fits a reason into a close frame: 123 bytes of UTF-8.
func closeReason(s string) string {
	if len(s) <= 123 {
		return s
	}
	cut := 123
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// Ended implements session.Handler.
func (c *conn) Ended() {}

// AppendEvents implements wsconn.Renderer.
func (c *conn) AppendEvents(parts [][]byte, scratch []byte, events []wsconn.Message) ([][]byte, []byte, int) {
	return c.cfg.r.AppendEvents(parts, scratch, events)
}
