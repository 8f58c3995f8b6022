package ess

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/herald-gw/herald"
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

// Name is the dialect's name for its detached sessions.
const Name = "ess"

// Protocol is the sub-protocol a .NET client offers; selected when offered.
const Protocol = "EventsAndStateWebSocketApi"

// Verifier checks a bearer token (a JWT, or an API key): who it is for,
// and until when (zero: no expiry).
type Verifier func(ctx context.Context, token string) (herald.Principal, time.Time, error)

// Config is what the ess dialect needs from its node; one is shared by
// all its connections. Set it up once, with WithDefaults.
type Config struct {
	Node    *session.Node    // required
	State   herald.StateView // required for getState
	Verify  Verifier         // nil: every token is refused
	Devices DeviceKinds      // nil: no device is registered

	AuthTimeout         time.Duration // for the authenticate command when the upgrade had no token; default 10s
	PingInterval        time.Duration // WebSocket pings; default 30s
	MaxMessageBytes     int           // inbound command; default 256 KiB
	MaxSubscriptions    int           // per session; default 100
	MaxFilters          int           // per session, over its subscriptions; default 200
	MaxStateBytes       int           // a getState reply; default 4 MiB
	MaxEventsPerMessage int           // events in one {"events":[…]} push; default 100
	// CloseOnExpiry closes a connection when its token expires (the
	// session stays resumable). false, the default, is the vendor's
	// behaviour: a token is checked when it is presented only.
	CloseOnExpiry bool
	// MaxConcurrentStates bounds the getState snapshots the node runs at
	// once (each walks the org's state and renders it, tens of
	// milliseconds of a core for thousands of cameras), so clients asking
	// again and again leave cores to delivery; default half the cores, at
	// least 1. A getState waits up to StateWait (default 10s) for a turn,
	// then gets 503.
	MaxConcurrentStates int
	StateWait           time.Duration

	r      *renderer
	states *turns
}

// turns are the node's getState turns.
type turns struct {
	slots   chan struct{}
	waiting atomic.Int32 // getStates waiting for a turn (tests read it)
}

// WithDefaults returns c with its zero fields set to the defaults.
func (c Config) WithDefaults() Config {
	if c.Devices == nil {
		c.Devices = noDevices{}
	}
	if c.AuthTimeout <= 0 {
		c.AuthTimeout = 10 * time.Second
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 30 * time.Second
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 256 << 10
	}
	if c.MaxSubscriptions <= 0 {
		c.MaxSubscriptions = 100
	}
	if c.MaxFilters <= 0 {
		c.MaxFilters = 200
	}
	if c.MaxStateBytes <= 0 {
		c.MaxStateBytes = 4 << 20
	}
	if c.MaxEventsPerMessage <= 0 {
		c.MaxEventsPerMessage = 100
	}
	if c.MaxConcurrentStates <= 0 {
		c.MaxConcurrentStates = max(1, runtime.GOMAXPROCS(0)/2)
	}
	if c.StateWait <= 0 {
		c.StateWait = 10 * time.Second
	}
	c.r = newRenderer(c.Devices, c.MaxEventsPerMessage)
	c.states = &turns{slots: make(chan struct{}, c.MaxConcurrentStates)}
	return c
}

// Statuses of replies (protocols.md §1.3).
const (
	StatusOK           = 200
	StatusCreated      = 201
	StatusBadRequest   = 400
	StatusUnauthorized = 401
	StatusForbidden    = 403
	StatusNotFound     = 404
	StatusGone         = 410
	StatusTooLarge     = 413
	StatusUnavailable  = 503
)

// maxAuthFailures closes a connection after this many refused
// authenticate commands.
const maxAuthFailures = 3

// conn is one ess connection: the dialect's session.Handler.
type conn struct {
	cfg     *Config
	conn    *wsconn.Conn
	session *session.Session

	// Reader goroutine only.
	principal    herald.Principal
	authed       bool
	authFailures int
	sessionID    string // "" until startSession
	driverSub    *session.Sub
	pendingAfter *uint64 // startAfter's eventId, until the first addSubscription

	subs   atomic.Pointer[subscriptions] // read by the delivery path
	mu     sync.Mutex
	expiry *time.Timer // guarded by mu
	ended  bool        // guarded by mu
}

// Serve serves an ess session on an upgraded connection; it returns at
// once (see session.Serve). p is the principal of the upgrade's bearer
// token, nil when there was none: the first command must then be
// authenticate. ended, if not nil, runs once the session is over.
func Serve(c *wsconn.Conn, cfg *Config, p *herald.Principal, exp time.Time, ended func()) {
	h := &conn{cfg: cfg, conn: c}
	h.subs.Store(&subscriptions{})
	h.session = session.New(cfg.Node, c)
	h.session.SetDialect(Name)
	if p != nil {
		h.admit(*p, exp)
	} else {
		c.SetReadDeadline(time.Now().Add(cfg.AuthTimeout))
	}
	h.session.Serve(h, ended)
}

// admit makes the connection p's.
func (c *conn) admit(p herald.Principal, exp time.Time) {
	c.principal, c.authed = p, true
	c.conn.SetReadDeadline(time.Time{})
	c.session.Start(p)
	c.conn.StartPing(c.cfg.PingInterval)
	c.setExpiry(exp)
}

// Handle implements session.Handler: one command.
func (c *conn) Handle(data []byte) bool {
	if len(data) > c.cfg.MaxMessageBytes {
		return c.closeMalformed("a command of " + strconv.Itoa(len(data)) + " bytes; at most " + strconv.Itoa(c.cfg.MaxMessageBytes))
	}
	cmd, err := Decode(data)
	if err != nil {
		return c.closeMalformed(err.Error())
	}
	if cmd.Unknown != "" {
		return c.replyError(cmd, StatusBadRequest, "Unknown command "+strconv.Quote(cmd.Unknown)+
			": use authenticate, startSession, addSubscription, removeSubscription or getState.")
	}
	if cmd.Name == CommandAuthenticate {
		return c.authenticate(cmd)
	}
	if !c.authed {
		return c.replyError(cmd, StatusUnauthorized, "Not authenticated: send an Authorization: Bearer header on the upgrade, or an authenticate command first.")
	}
	if cmd.Name == CommandStartSession {
		return c.startSession(cmd)
	}
	if c.sessionID == "" {
		return c.replyError(cmd, StatusBadRequest, "No session: send startSession first.")
	}
	switch cmd.Name {
	case CommandAddSubscription:
		return c.addSubscription(cmd)
	case CommandRemoveSubscription:
		return c.removeSubscription(cmd)
	case CommandGetState:
		if c.pendingAfter != nil {
			return c.replyError(cmd, StatusBadRequest, "This session starts after eventId with its first subscription: addSubscription first.")
		}
		return c.getState(cmd)
	}
	return true
}

// ReadFailed implements session.Handler.
func (c *conn) ReadFailed(err error) bool {
	switch {
	case errors.Is(err, wsconn.ErrMessageTooLarge), errors.Is(err, wsconn.ErrFrameTooLarge):
		c.conn.CloseAfterFlush(ws.StatusMessageTooBig, "command larger than "+strconv.Itoa(c.cfg.MaxMessageBytes)+" bytes", nil)
	default:
		c.conn.CloseAfterFlush(ws.StatusPolicyViolation, "not authenticated within "+c.cfg.AuthTimeout.String(), nil)
	}
	return false
}

// Lost implements session.Handler. Events past the log's retention
// (ECONFLICT) are a loss: the session is not kept, and the client's resume
// gets a new session (201), which tells it events may have been lost. A
// revoked credential (EUNAUTHORIZED) is not kept either. Any other error is
// a log that could not be read even after the catch-up's retries (the
// engine electing a leader), which skipped nothing: the session's cursor
// has not passed an event the client was not sent (a catch-up moves it
// only past events it queued, and the saved cursor stops at the last one
// written), so the session is kept and the client resumes it with its
// sessionId and eventId, losing nothing.
func (c *conn) Lost(err error) {
	switch herald.ErrorCode(err) {
	case herald.ECONFLICT:
		c.session.Forget() // its cursor is gone: a resume must make a new session
		c.conn.CloseAfterFlush(ws.StatusInternalServerError, closeReason("events lost: "+herald.ErrorMessage(err)), nil)
	case herald.EUNAUTHORIZED:
		c.session.Forget()
		c.conn.CloseAfterFlush(ws.StatusPolicyViolation, closeReason("unauthorized: "+herald.ErrorMessage(err)), nil)
	default:
		c.conn.CloseAfterFlush(CloseCatchUpFailed, closeReason("catch-up failed: reconnect and resume with sessionId and eventId ("+
			herald.ErrorMessage(err)+")"), nil)
	}
}

// AppendEvents implements wsconn.Renderer (see renderer.AppendEvents).
func (c *conn) AppendEvents(parts [][]byte, scratch []byte, events []wsconn.Message) ([][]byte, []byte, int) {
	return c.cfg.r.AppendEvents(parts, scratch, events)
}

// Ended implements session.Handler.
func (c *conn) Ended() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended = true
	if c.expiry != nil {
		c.expiry.Stop()
	}
}

func (c *conn) closeMalformed(reason string) bool {
	c.conn.CloseAfterFlush(ws.StatusPolicyViolation, closeReason("malformed command: "+reason), nil)
	return false
}

// closeReason fits a reason into a close frame (123 bytes, UTF-8).
func closeReason(s string) string {
	const max = 123
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// send queues a reply; a client whose queue is full of replies is not
// reading them, and is disconnected.
func (c *conn) send(b []byte) bool {
	if !c.conn.Send(b) {
		c.conn.Close()
		return false
	}
	return true
}

func (c *conn) replyError(cmd Command, status int, text string) bool {
	return c.send(AppendError(nil, cmd.CommandID, status, text))
}

func (c *conn) authenticate(cmd Command) bool {
	token := strings.TrimSpace(cmd.Token)
	if len(token) > 7 && strings.EqualFold(token[:7], "bearer ") {
		token = strings.TrimSpace(token[7:])
	}
	var p herald.Principal
	var exp time.Time
	var err error = herald.Errorf(herald.EUNAUTHORIZED, "this server verifies no tokens")
	if token == "" {
		err = herald.Errorf(herald.EUNAUTHORIZED, `authenticate needs a "token"`)
	} else if c.cfg.Verify != nil {
		p, exp, err = c.cfg.Verify(context.Background(), token)
	}
	if err == nil && !p.Can(herald.ScopeSubscribe) {
		err = herald.Errorf(herald.EFORBIDDEN, "the token lacks the subscribe scope")
	}
	if err == nil && c.authed && p.Org != c.principal.Org {
		err = herald.Errorf(herald.EFORBIDDEN, "the token is for another org than this connection's")
	}
	if err != nil {
		c.authFailures++
		status := StatusUnauthorized
		if herald.ErrorCode(err) == herald.EFORBIDDEN {
			status = StatusForbidden
		}
		if !c.replyError(cmd, status, "Authentication failed: "+herald.ErrorMessage(err)) {
			return false
		}
		if c.authFailures >= maxAuthFailures {
			c.conn.CloseAfterFlush(ws.StatusPolicyViolation, "authentication failed "+strconv.Itoa(maxAuthFailures)+" times", nil)
			return false
		}
		return true
	}
	if !c.authed {
		if !c.send(AppendReply(nil, cmd.CommandID, StatusOK, "", "")) {
			return false
		}
		c.admit(p, exp)
		return true
	}
	c.principal = p
	c.session.Reauthenticate(p)
	c.setExpiry(exp)
	return c.send(AppendReply(nil, cmd.CommandID, StatusOK, "", ""))
}

// setExpiry (re)arms the close at the token's expiry, if configured.
func (c *conn) setExpiry(exp time.Time) {
	if !c.cfg.CloseOnExpiry || exp.IsZero() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return
	}
	if c.expiry != nil {
		c.expiry.Stop()
	}
	c.expiry = time.AfterFunc(time.Until(exp), func() {
		c.conn.CloseAfterFlush(ws.StatusPolicyViolation, "token expired: reconnect with a new token to resume the session", nil)
	})
}

// startSession creates a session or resumes a detached one.
func (c *conn) startSession(cmd Command) bool {
	if c.sessionID != "" {
		return c.replyError(cmd, StatusBadRequest, "This connection already has session "+c.sessionID+".")
	}
	if cmd.SessionID != "" {
		if ok, goOn := c.resume(cmd); ok || !goOn {
			return goOn
		}
	}
	id := newSessionID()
	c.driverSub = &session.Sub{ID: "ess", Match: c.match}
	if cmd.SessionID == "" && cmd.EventID != "" {
		return c.startAfter(cmd, id)
	}
	if err := c.session.Subscribe(c.driverSub, nil, nil); err != nil {
		return c.replyError(cmd, statusOf(err), "The session could not start: "+herald.ErrorMessage(err))
	}
	c.sessionID = id
	c.session.Keep(id, Name, c.detachedState)
	return c.send(AppendReply(nil, cmd.CommandID, StatusCreated, "sessionId", id))
}

// startAfter is herald's extension of startSession: an empty sessionId
// with an eventId makes a new session whose first addSubscription
// receives every event it matches after eventId, then live ones; its
// client (herald's SDK, after a restart) loses nothing however long it
// was away, within the log's retention. Vendor clients never send it:
// theirs send eventId "" with an empty sessionId.
func (c *conn) startAfter(cmd Command, id string) bool {
	after, err := strconv.ParseUint(cmd.EventID, 10, 64)
	if err != nil {
		return c.replyError(cmd, StatusBadRequest, "eventId "+strconv.Quote(clip(cmd.EventID))+" is not an event id herald sent.")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if last, err := c.cfg.Node.Log.LastID(ctx); err == nil && after > last {
		return c.replyError(cmd, StatusBadRequest, "eventId "+cmd.EventID+" is beyond the newest event ("+
			strconv.FormatUint(last, 10)+"): start after an id this server sent.")
	}
	if _, err := c.cfg.Node.Log.Replay(ctx, c.principal.Org, after, after+1, func(*herald.Event) error { return nil }); err != nil {
		if herald.ErrorCode(err) == herald.ECONFLICT {
			return c.replyError(cmd, StatusGone, "The events after eventId "+cmd.EventID+" are no longer kept: start without eventId.")
		}
		return c.replyError(cmd, StatusUnavailable, "The session could not start: "+herald.ErrorMessage(err))
	}
	c.pendingAfter = &after
	c.sessionID = id
	return c.send(AppendReply(nil, cmd.CommandID, StatusCreated, "sessionId", id))
}

// resume takes over the detached session cmd names. ok is false when it
// cannot be resumed (unknown, expired, another org's, or the events after
// its cursor are gone): the caller then creates a new one. When the
// engine cannot answer now, it answers 503 and the session stays kept.
func (c *conn) resume(cmd Command) (ok, goOn bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := c.session.Attach(ctx, cmd.SessionID, Name)
	if err != nil {
		if herald.ErrorCode(err) == herald.ENOTFOUND {
			return false, true
		}
		return true, c.replyError(cmd, StatusUnavailable, "The session cannot be looked up now; try again with the same sessionId.")
	}
	after := d.After
	if cmd.EventID != "" {
		id, err := strconv.ParseUint(cmd.EventID, 10, 64)
		if err != nil {
			return false, true // not an id herald sent
		}
		after = id
	}
	var subs []*subscription
	if len(d.State) > 0 && json.Unmarshal(d.State, &subs) != nil {
		return false, true
	}
	// A cursor past retention would only end in Lost: answer 201 now. A
	// log that cannot be read now lost nothing: the session waits for the
	// client's next try.
	if _, err := c.cfg.Node.Log.Replay(ctx, c.principal.Org, after, after+1, func(*herald.Event) error { return nil }); err != nil {
		if herald.ErrorCode(err) == herald.ECONFLICT {
			return false, true
		}
		if err := c.cfg.Node.Store.SaveSession(ctx, d); err != nil {
			c.cfg.Node.Logger.Warn("ess: a session could not be kept for another try", "err", err)
		}
		return true, c.replyError(cmd, StatusUnavailable, "The event log cannot be read now; try again with the same sessionId.")
	}
	restored := &subscriptions{}
	for _, s := range subs {
		restored = restored.with(newSubscription(s.ID, s.Specs))
	}
	// The reply goes first, then the replay (protocols.md §1.5): Subscribe
	// queues it before any event can be.
	c.subs.Store(restored)
	c.driverSub = &session.Sub{ID: "ess", Match: c.match}
	sent := true
	err = c.session.Subscribe(c.driverSub, &after, func() {
		sent = c.send(AppendReply(nil, cmd.CommandID, StatusOK, "sessionId", d.ID))
	})
	if err != nil {
		// A cursor beyond the log's end, say: not an id herald sent.
		c.subs.Store(&subscriptions{})
		return false, true
	}
	if !sent {
		return true, false
	}
	c.sessionID = d.ID
	c.session.Keep(d.ID, Name, c.detachedState)
	return true, true
}

// detachedState is the session's subscriptions, kept while it is detached.
func (c *conn) detachedState() json.RawMessage {
	b, _ := json.Marshal(c.subs.Load().list)
	return b
}

// match is the driver subscription's filter: the union of the session's.
func (c *conn) match(e *herald.Event) bool {
	subs := c.subs.Load()
	return len(subs.list) > 0 && subs.match(c.cfg.r.keyOf(e))
}

func (c *conn) addSubscription(cmd Command) bool {
	subs := c.subs.Load()
	if len(subs.list) >= c.cfg.MaxSubscriptions {
		return c.replyError(cmd, StatusBadRequest, "A session may hold "+strconv.Itoa(c.cfg.MaxSubscriptions)+" subscriptions.")
	}
	if subs.filters+len(cmd.Filters) > c.cfg.MaxFilters {
		return c.replyError(cmd, StatusBadRequest, "A session may hold "+strconv.Itoa(c.cfg.MaxFilters)+" filters over its subscriptions.")
	}
	sub := newSubscription(newSessionID(), cmd.Filters)
	if c.pendingAfter != nil {
		return c.addFirstSubscription(cmd, subs, sub)
	}
	// The reply and the subscription at once: every event after the reply
	// is matched with it, none before.
	sent := true
	c.session.Change(func() {
		if sent = c.send(AppendReply(nil, cmd.CommandID, StatusOK, "subscriptionId", sub.ID)); sent {
			c.subs.Store(subs.with(sub))
		}
	})
	return sent
}

// addFirstSubscription adds the first subscription of a session made by
// startAfter, and with it the session's place in the stream: the reply,
// then every event it matches after the session's eventId.
func (c *conn) addFirstSubscription(cmd Command, subs *subscriptions, sub *subscription) bool {
	// Nothing reads the subscriptions before the driver's subscription exists.
	c.subs.Store(subs.with(sub))
	sent := true
	err := c.session.Subscribe(c.driverSub, c.pendingAfter, func() {
		sent = c.send(AppendReply(nil, cmd.CommandID, StatusOK, "subscriptionId", sub.ID))
	})
	if err != nil {
		c.subs.Store(subs)
		return c.replyError(cmd, statusOf(err), "The subscription could not start: "+herald.ErrorMessage(err))
	}
	c.pendingAfter = nil
	c.session.Keep(c.sessionID, Name, c.detachedState)
	return sent
}

func (c *conn) removeSubscription(cmd Command) bool {
	subs, ok := c.subs.Load().without(cmd.SubscriptionID)
	if !ok {
		return c.replyError(cmd, StatusNotFound, "No subscription "+strconv.Quote(clip(cmd.SubscriptionID))+" in this session.")
	}
	sent := true
	c.session.Change(func() {
		c.subs.Store(subs)
		sent = c.send(AppendReply(nil, cmd.CommandID, StatusOK, "subscriptionId", cmd.SubscriptionID))
	})
	return sent
}

// getState answers with the state of the session's subscriptions, taken
// at a log position consistent with the events pushed (session.Snapshot).
func (c *conn) getState(cmd Command) bool {
	if c.cfg.State == nil {
		return c.replyError(cmd, StatusUnavailable, "This server keeps no state.")
	}
	// A turn first: the session's delivery goes on while it waits.
	c.cfg.states.waiting.Add(1)
	wait := time.NewTimer(c.cfg.StateWait)
	select {
	case c.cfg.states.slots <- struct{}{}:
		c.cfg.states.waiting.Add(-1)
		wait.Stop()
	case <-wait.C:
		c.cfg.states.waiting.Add(-1)
		return c.replyError(cmd, StatusUnavailable, "The server is busy answering other getState commands; try again.")
	}
	defer func() { <-c.cfg.states.slots }()
	subs := c.subs.Load()
	key := func(e *herald.Event) (string, bool) {
		group := StateGroupOf(e.Entity)
		if group == nil || len(subs.list) == 0 {
			return "", false
		}
		k := c.cfg.r.keyOf(e)
		if !subs.match(k) {
			return "", false
		}
		return string(k.resourceType) + "/" + string(k.source) + "\x00" + group.ID, true
	}
	reply := func(states []*herald.Event) []byte {
		b := c.cfg.r.appendStates(nil, cmd.CommandID, states)
		if len(b) > c.cfg.MaxStateBytes {
			return AppendError(nil, cmd.CommandID, StatusTooLarge, "The state of this session's subscriptions is "+
				strconv.Itoa(len(b))+" bytes, more than "+strconv.Itoa(c.cfg.MaxStateBytes)+
				" (limits.ess.max_state_bytes): subscribe to fewer sources.")
		}
		return b
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.session.Snapshot(ctx, c.cfg.State, StatefulEntities, key, reply); err != nil {
		return c.replyError(cmd, StatusUnavailable, "The state could not be read: "+herald.ErrorMessage(err))
	}
	return true
}

func statusOf(err error) int {
	switch herald.ErrorCode(err) {
	case herald.EINVALID, herald.ECONFLICT:
		return StatusBadRequest
	case herald.ETOOLARGE:
		return StatusTooLarge
	}
	return StatusUnavailable
}

// newSessionID returns a new unguessable id in GUID form, as the
// vendor's are.
func newSessionID() string {
	h := session.NewID() // 32 hex digits
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
