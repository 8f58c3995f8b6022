package channels

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/auth"
	"github.com/herald-gw/herald/internal/session"
	"github.com/herald-gw/herald/internal/wsconn"
)

// Name is the dialect's name, in metrics and logs.
const Name = "channels"

// Close codes of the channels dialect (4000–4999 are the application's).
// 4001–4003 tell a client not to come back as it was: with a new token,
// or without last_event_id. CloseCatchUpFailed tells it to come back as
// it was, with the last event_id it received: it is RFC 6455's "Try
// Again Later", so that a client that knows only the standard codes
// reconnects too.
const (
	CloseAuthFailed    ws.StatusCode = 4001 // bad, expired or missing token; no auth in time
	CloseTokenExpired  ws.StatusCode = 4002 // the token expired and was not refreshed
	CloseEventsLost    ws.StatusCode = 4003 // a resume point older than the log's retention
	CloseCatchUpFailed ws.StatusCode = 1013 // the log could not be read for a while; nothing was skipped
)

// Error codes of the messages sent before the session ends with Lost.
const (
	CodeEventsLost    = "events_lost"     // the events after the resume point are past the log's retention
	CodeCatchUpFailed = "catch_up_failed" // the log could not be read; resume with last_event_id
)

// TokenVerifier checks a JWT: who it is for, and until when.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (herald.Principal, time.Time, error)
}

// DeviceNumbers gives a registered device's numeric id, 0 if none. It is
// read on the delivery path, so it must answer from memory.
type DeviceNumbers interface {
	Number(org, deviceUUID string) int64
}

type noNumbers struct{}

func (noNumbers) Number(string, string) int64 { return 0 }

// Config is what the channels dialect needs from its node; one is shared
// by all its connections. Zero durations and limits take the defaults
// noted; set it up once, with WithDefaults.
type Config struct {
	Node    *session.Node // required
	Tokens  TokenVerifier // nil: no token can be verified, every auth is refused
	Devices DeviceNumbers // nil: no device has a number
	// Status is herald's own status for the system channel, as the
	// principal of the connection's latest token may see it.
	Status func(p herald.Principal) SystemStatus
	// Admit is asked once a token is accepted, for the per-user limits. It
	// returns a release function for when the connection ends, or an error
	// code and message to refuse it with.
	Admit func(p herald.Principal) (release func(), code, message string)

	AuthTimeout       time.Duration // to receive the auth message; default 10s
	PingInterval      time.Duration // WebSocket pings once authenticated; default 30s
	MessagesPerSecond int           // inbound messages per connection, a batch's each counted; default 100
	MaxMessageBytes   int           // inbound message but an auth (see MaxAuthMessageBytes); default 1024
	SystemInterval    time.Duration // system channel period for "real-time"; default 5s
}

// WithDefaults returns c with its zero fields set to the defaults.
func (c Config) WithDefaults() Config {
	if c.Devices == nil {
		c.Devices = noNumbers{}
	}
	if c.AuthTimeout <= 0 {
		c.AuthTimeout = 10 * time.Second
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 30 * time.Second
	}
	if c.MessagesPerSecond <= 0 {
		c.MessagesPerSecond = 100
	}
	if c.SystemInterval <= 0 {
		c.SystemInterval = 5 * time.Second
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 1024
	}
	return c
}

// MaxAuthMessageBytes bounds an auth message, the first or a refresh,
// when MaxMessageBytes is smaller: room for the largest token herald
// takes (auth.MaxTokenBytes) and the JSON around it. Identity providers
// issue tokens well over the 1 KB the protocol's other messages get.
const MaxAuthMessageBytes = auth.MaxTokenBytes + 1<<10

// ReadLimit is the largest message a connection must read (its
// wsconn.Options.MaxMessageBytes): an auth message's bound or
// MaxMessageBytes, whichever is larger. Over it, a first message closes
// the connection (1009); after auth, it is dropped with an error.
func (c Config) ReadLimit() int {
	return max(MaxAuthMessageBytes, c.MaxMessageBytes)
}

// conn is one channels connection: the dialect's session.Handler.
type conn struct {
	cfg     *Config
	conn    *wsconn.Conn
	session *session.Session
	auto    string // the channel of a /ws/{channel} endpoint, subscribed on auth

	// Reader goroutine only.
	principal herald.Principal
	authed    bool
	release   func()
	allowance float64 // rate limit: messages that may still come this second
	checked   time.Time

	expiry atomic.Int64 // the token's expiry, Unix ns; the timer reads it
	// viewer is the latest token's principal, first or refreshed, for the
	// system channel's timer: a refresh can add or drop the admin scope.
	viewer  atomic.Pointer[herald.Principal]
	mu      sync.Mutex
	expirer *time.Timer   // guarded by mu
	system  *subscription // guarded by mu: the system channel's, whose status timer runs
	ended   bool          // guarded by mu
}

// Serve serves a channels session on an upgraded connection. It returns
// at once (see session.Serve); channel, if not empty, is subscribed as
// soon as the client has authenticated (the /ws/{channel} endpoints).
// ended, if not nil, is called once the session is over.
func Serve(c *wsconn.Conn, cfg *Config, channel string, ended func()) {
	h := &conn{cfg: cfg, conn: c, auto: channel}
	h.allowance, h.checked = float64(cfg.MessagesPerSecond), time.Now()
	h.session = session.New(cfg.Node, c)
	h.session.SetDialect(Name)
	c.SetReadDeadline(time.Now().Add(cfg.AuthTimeout))
	h.session.Serve(h, ended)
}

// Handle implements session.Handler: one client message. The connection
// reads up to cfg.ReadLimit(); MaxMessageBytes is applied here, to every
// message but an auth, as the reader applies the read limit: the message
// is dropped with an error, uncounted by the rate limit.
func (c *conn) Handle(data []byte) bool {
	msg, err := DecodeFor(data, c.auto)
	if !c.authed {
		return c.authenticate(msg, err)
	}
	if len(data) > c.cfg.MaxMessageBytes && (err != nil || msg.Type != TypeAuth) {
		return c.sendTooLarge()
	}
	n := 1
	if err == nil && msg.Type == TypeBatch {
		n = len(msg.Batch) // each message of a batch counts against the rate
	}
	if !c.admit(n) {
		return c.sendError("rate_limited", "More than "+strconv.Itoa(c.cfg.MessagesPerSecond)+
			" messages per second (a batch counts each of its messages); this one was dropped.")
	}
	if err != nil {
		var de *Error
		if errors.As(err, &de) {
			return c.sendError(de.Code, de.Message)
		}
		return c.sendError(CodeInvalidMessage, err.Error())
	}
	return c.handle(msg)
}

// ReadFailed implements session.Handler.
func (c *conn) ReadFailed(err error) bool {
	switch {
	case errors.Is(err, wsconn.ErrMessageTooLarge) && c.authed:
		return c.sendTooLarge()
	case errors.Is(err, wsconn.ErrMessageTooLarge), errors.Is(err, wsconn.ErrFrameTooLarge):
		c.conn.CloseAfterFlush(ws.StatusMessageTooBig, "message too large", nil)
	default: // the auth deadline
		c.conn.CloseAfterFlush(CloseAuthFailed, "no auth message within "+c.cfg.AuthTimeout.String(), nil)
	}
	return false
}

// Lost implements session.Handler. Only ECONFLICT, events past the log's
// retention, is a loss; any other error is a log that could not be read
// even after the catch-up's retries (the engine electing a leader), which
// skipped nothing: the client must resume, not start afresh, or it would
// lose the events it was about to get.
func (c *conn) Lost(err error) {
	if herald.ErrorCode(err) == herald.EUNAUTHORIZED {
		c.conn.CloseAfterFlush(CloseAuthFailed, "credential revoked", AppendAuthFailed(nil, auth.CodeTokenRevoked,
			"The connection's credential is no longer valid: "+herald.ErrorMessage(err)+"."))
		return
	}
	if herald.ErrorCode(err) == herald.ECONFLICT {
		msg := "Events were lost: " + herald.ErrorMessage(err) + ". Subscribe again without last_event_id."
		c.conn.CloseAfterFlush(CloseEventsLost, "events lost", AppendError(nil, CodeEventsLost, msg))
		return
	}
	msg := "Reading the event log failed (" + herald.ErrorMessage(err) + "); nothing was skipped: " +
		"reconnect and subscribe with last_event_id set to the last event_id you received."
	c.conn.CloseAfterFlush(CloseCatchUpFailed, "catch-up failed", AppendError(nil, CodeCatchUpFailed, msg))
}

// Ended implements session.Handler: no timer of the connection outlives it.
func (c *conn) Ended() {
	c.mu.Lock()
	c.ended = true
	if c.expirer != nil {
		c.expirer.Stop()
	}
	system := c.system
	c.mu.Unlock()
	if system != nil {
		system.stop()
	}
	if c.release != nil {
		c.release()
	}
}

func (c *conn) handle(msg Message) bool {
	switch msg.Type {
	case TypeAuth:
		return c.refresh(msg.Token)
	case TypeSubscribe:
		return c.subscribe(msg.Sub, msg.LastEventID)
	case TypeUnsubscribe:
		return c.unsubscribe(msg.Sub.Channel)
	case TypePing:
		return c.send(AppendPong(nil, msg.Timestamp, time.Now()))
	case TypeBatch:
		for _, m := range msg.Batch {
			if !c.handle(m) {
				return false
			}
		}
	}
	return true
}

// authenticate handles the first message: it must be a valid auth.
func (c *conn) authenticate(msg Message, decodeErr error) bool {
	refuse := func(code, message string) bool {
		c.conn.CloseAfterFlush(CloseAuthFailed, code, AppendAuthFailed(nil, code, message))
		return false
	}
	var de *Error
	switch {
	case errors.As(decodeErr, &de) && de.Code == CodeMissingToken:
		return refuse(de.Code, de.Message)
	case decodeErr != nil:
		return refuse("auth_required", "The first message must be {\"type\":\"auth\",\"token\":\"<JWT>\"}: "+errorMessage(decodeErr))
	case msg.Type != TypeAuth:
		return refuse("auth_required", "The first message must be {\"type\":\"auth\",\"token\":\"<JWT>\"}, not "+strconv.Quote(msg.Type)+".")
	}
	p, exp, code, message := c.verify(msg.Token)
	if code != "" {
		return refuse(code, message)
	}
	if c.cfg.Admit != nil {
		release, code, message := c.cfg.Admit(p)
		if code != "" {
			return refuse(code, message)
		}
		c.release = release
	}
	c.principal, c.authed = p, true
	c.viewer.Store(&p)
	c.conn.SetReadDeadline(time.Time{})
	if !c.send(AppendAuthOK(nil, p.User, p.Org, exp)) {
		return false
	}
	c.session.Start(p)
	c.setExpiry(exp)
	c.conn.StartPing(c.cfg.PingInterval)
	if c.auto != "" {
		return c.subscribe(Subscription{Channel: c.auto}, nil)
	}
	return true
}

// refresh takes a new token for the same user and org (in-band refresh).
// A refused one changes nothing.
func (c *conn) refresh(token string) bool {
	p, exp, code, message := c.verify(token)
	if code != "" {
		return c.send(AppendAuthFailed(nil, code, message+" The current token stays in force until it expires."))
	}
	if !c.send(AppendAuthOK(nil, p.User, p.Org, exp)) {
		return false
	}
	c.viewer.Store(&p)
	c.session.Reauthenticate(p)
	c.setExpiry(exp)
	return true
}

// verify is what every auth message's token must pass, the first one's
// and each refresh's: the verifier, the subscribe scope and, once the
// connection is authenticated, its user and org. It returns an error code
// and message, or an empty code and the token's principal and expiry.
func (c *conn) verify(token string) (p herald.Principal, exp time.Time, code, message string) {
	if c.cfg.Tokens == nil {
		return p, exp, "auth_unavailable", "This server has no token verification configured (auth.jwt_secret, auth.jwt_public_key or auth.jwks_url)."
	}
	p, exp, err := c.cfg.Tokens.Verify(context.Background(), token)
	switch {
	case err != nil:
		code, message = tokenError(err)
		return p, exp, code, message
	case !p.Can(herald.ScopeSubscribe):
		return p, exp, auth.CodeInsufficientScope, "The token lacks the subscribe scope."
	case c.authed && (p.Org != c.principal.Org || p.User != c.principal.User):
		return p, exp, auth.CodeInvalidToken, "A refreshed token must be for the same user and org as the connection's."
	}
	return p, exp, "", ""
}

// setExpiry (re)arms the expiry timer: at expiry, the client is told and
// the connection closed.
func (c *conn) setExpiry(exp time.Time) {
	c.expiry.Store(exp.UnixNano())
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return
	}
	if c.expirer != nil {
		c.expirer.Stop()
	}
	c.expirer = time.AfterFunc(time.Until(exp), c.expire)
}

func (c *conn) expire() {
	exp := time.Unix(0, c.expiry.Load())
	if time.Now().Before(exp) {
		return // refreshed meanwhile; the new timer is armed
	}
	c.conn.CloseAfterFlush(CloseTokenExpired, "token expired", AppendTokenExpired(nil, exp))
}

// admit applies the per-connection message rate to n messages (a token
// bucket of MessagesPerSecond, refilled continuously): all of them or
// none.
func (c *conn) admit(n int) bool {
	now := time.Now()
	limit := float64(c.cfg.MessagesPerSecond)
	c.allowance = min(limit, c.allowance+now.Sub(c.checked).Seconds()*limit)
	c.checked = now
	if c.allowance < float64(n) {
		return false
	}
	c.allowance -= float64(n)
	return true
}

// send queues a whole message; a client whose queue is full of replies is
// not reading them, and is disconnected.
func (c *conn) send(b []byte) bool {
	if !c.conn.Send(b) {
		c.conn.Close()
		return false
	}
	return true
}

func (c *conn) sendError(code, message string) bool {
	return c.send(AppendError(nil, code, message))
}

func (c *conn) sendTooLarge() bool {
	return c.sendError("message_too_large", "A message exceeded the server's size limit (limits.channels.max_message_bytes) and was dropped.")
}

// CodeTemporarilyUnavailable refuses an auth that could not be checked
// now (the engine did not answer): the same token may succeed on retry.
const CodeTemporarilyUnavailable = "temporarily_unavailable"

func tokenError(err error) (code, message string) {
	var te *auth.TokenError
	if errors.As(err, &te) {
		return te.Code, te.Message
	}
	if herald.ErrorCode(err) == herald.EUNAVAILABLE {
		return CodeTemporarilyUnavailable, "The token could not be checked now (the server's engine is unavailable); connect again: " + herald.ErrorMessage(err)
	}
	return "invalid_token", "The token could not be verified: " + herald.ErrorMessage(err)
}

func errorMessage(err error) string {
	var de *Error
	if errors.As(err, &de) {
		return de.Message
	}
	return err.Error()
}
