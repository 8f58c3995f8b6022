package session

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/auth"
	"github.com/herald-gw/herald/internal/dialect/channels"
	"github.com/herald-gw/herald/internal/filter"
	"github.com/herald-gw/herald/internal/hub"
	"github.com/herald-gw/herald/internal/wsconn"
)

// Close codes of the channels dialect (4000–4999 are the application's).
const (
	CloseAuthFailed   ws.StatusCode = 4001 // bad, expired or missing token; no auth in time
	CloseTokenExpired ws.StatusCode = 4002 // the token expired and was not refreshed
	CloseEventsLost   ws.StatusCode = 4003 // a resume point older than the log's retention
)

// TokenVerifier checks a JWT: who it is for, and until when.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (herald.Principal, time.Time, error)
}

// ChannelsConfig is what the channels dialect needs from its node; one is
// shared by all its connections. Zero durations and limits take the
// defaults noted.
type ChannelsConfig struct {
	Log    herald.EventLog
	Hub    *hub.Hub
	Logger *slog.Logger
	Gauges *Gauges
	Tokens TokenVerifier
	// DeviceNumber returns a registered device's numeric id, 0 if none; it
	// is called on the delivery path, so it must be a cache lookup.
	DeviceNumber func(org, deviceUUID string) int64
	// Status is herald's own status for the system channel.
	Status func() channels.SystemStatus
	// Admit is asked once a token is accepted, for the per-user limits. It
	// returns a release function for when the connection ends, or an error
	// code and message to refuse it with.
	Admit func(p herald.Principal) (release func(), code, message string)

	AuthTimeout       time.Duration // to receive the auth message; default 10s
	PingInterval      time.Duration // WebSocket pings once authenticated; default 30s
	MessagesPerSecond int           // inbound messages per connection; default 100
	SystemInterval    time.Duration // system channel period for "real-time"; default 5s
}

// WithDefaults returns c with its zero fields set to the defaults.
func (c ChannelsConfig) WithDefaults() ChannelsConfig {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Gauges == nil {
		c.Gauges = new(Gauges)
	}
	if c.DeviceNumber == nil {
		c.DeviceNumber = func(string, string) int64 { return 0 }
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
	return c
}

// chanConn is one channels connection.
type chanConn struct {
	cfg  *ChannelsConfig
	conn *wsconn.Conn

	// Reader goroutine only.
	principal herald.Principal
	authed    bool
	session   *Session
	release   func()
	byChannel map[string]*chanSub
	nextTag   uint32
	allowance float64 // rate limit: messages that may still come this second
	checked   time.Time

	expiry  atomic.Int64 // the token's expiry, Unix ns; the timer reads it
	expirer *time.Timer  // guarded by mu
	mu      sync.Mutex
	ended   bool // guarded by mu

	subs atomic.Pointer[[]*chanSub] // by tag, copy on write; read by the renderer
}

// chanSub is one subscription: one per channel and connection.
type chanSub struct {
	c       *chanConn
	tag     uint32
	sub     channels.Subscription
	conflat *conflator  // telemetry with a frequency; nil otherwise
	ticker  *time.Timer // system channel status
	gone    atomic.Bool
}

// ServeChannels serves a channels session on an upgraded connection. It
// returns at once; channel, if not empty, is subscribed as soon as the
// client has authenticated (the /ws/{channel} endpoints). ended, if not
// nil, is called once the session is over.
func ServeChannels(conn *wsconn.Conn, cfg *ChannelsConfig, channel string, ended func()) {
	c := &chanConn{cfg: cfg, conn: conn, byChannel: make(map[string]*chanSub)}
	c.allowance, c.checked = float64(cfg.MessagesPerSecond), time.Now()
	conn.SetRenderer(c)
	cfg.Gauges.Connections.Add(1)
	finish := func() {
		c.mu.Lock()
		c.ended = true
		if c.expirer != nil {
			c.expirer.Stop()
		}
		c.mu.Unlock()
		for _, s := range c.byChannel {
			s.stop()
		}
		if c.session != nil {
			c.session.Close()
		}
		conn.Close()
		cfg.Gauges.Connections.Add(-1)
		cfg.Gauges.Subscriptions.Add(-int64(len(c.byChannel)))
		if c.release != nil {
			c.release()
		}
		if ended != nil {
			ended()
		}
	}
	conn.SetReadDeadline(time.Now().Add(cfg.AuthTimeout))
	conn.Serve(func(data []byte, err error) bool {
		switch {
		case err == nil:
		case errors.Is(err, wsconn.ErrMessageTooLarge) && c.authed:
			c.sendError("message_too_large", "A message exceeded the server's size limit (limits.channels.max_message_bytes) and was dropped.")
			return true
		case errors.Is(err, os.ErrDeadlineExceeded) && !c.authed:
			conn.CloseAfterFlush(CloseAuthFailed, "no auth message within "+cfg.AuthTimeout.String(), nil)
			<-conn.Done()
			finish()
			return false
		case errors.Is(err, wsconn.ErrPeerClosed), errors.Is(err, wsconn.ErrMessageTooLarge), errors.Is(err, wsconn.ErrFrameTooLarge):
			if !errors.Is(err, wsconn.ErrPeerClosed) {
				conn.CloseAfterFlush(ws.StatusMessageTooBig, "message too large", nil)
			}
			<-conn.Done()
			finish()
			return false
		default:
			finish() // the peer is gone
			return false
		}
		if !c.process(data, channel) {
			<-conn.Done()
			finish()
			return false
		}
		return true
	})
}

// process handles one inbound message; false means the connection is ending.
func (c *chanConn) process(data []byte, autoChannel string) bool {
	msg, err := channels.DecodeFor(data, autoChannel)
	if !c.authed {
		return c.authenticate(msg, err, autoChannel)
	}
	if !c.admitMessage() {
		c.sendError("rate_limited", "More than "+strconv.Itoa(c.cfg.MessagesPerSecond)+" messages per second; this one was dropped.")
		return true
	}
	if err != nil {
		c.sendDecodeError(err)
		return true
	}
	return c.handle(msg)
}

func (c *chanConn) handle(msg channels.Message) bool {
	switch msg.Type {
	case "auth":
		c.refresh(msg.Token)
	case "subscribe":
		c.subscribe(msg.Sub, msg.LastEventID)
	case "unsubscribe":
		c.unsubscribe(msg.Sub.Channel)
	case "ping":
		c.conn.Send(channels.AppendPong(nil, msg.Timestamp, time.Now()))
	case "batch":
		for _, m := range msg.Batch {
			if !c.handle(m) {
				return false
			}
		}
	}
	return true
}

// authenticate handles the first message: it must be a valid auth.
func (c *chanConn) authenticate(msg channels.Message, decodeErr error, autoChannel string) bool {
	refuse := func(code, message string) bool {
		c.conn.CloseAfterFlush(CloseAuthFailed, code, channels.AppendAuthFailed(nil, code, message))
		return false
	}
	var de *channels.Error
	switch {
	case errors.As(decodeErr, &de) && de.Code == channels.CodeMissingToken:
		return refuse(de.Code, de.Message)
	case decodeErr != nil:
		return refuse("auth_required", "The first message must be {\"type\":\"auth\",\"token\":\"<JWT>\"}: "+errorMessage(decodeErr))
	case msg.Type != "auth":
		return refuse("auth_required", "The first message must be {\"type\":\"auth\",\"token\":\"<JWT>\"}, not "+strconv.Quote(msg.Type)+".")
	case c.cfg.Tokens == nil:
		return refuse("auth_unavailable", "This server has no token verification configured (auth.jwt_secret, auth.jwt_public_key or auth.jwks_url).")
	}
	p, exp, err := c.cfg.Tokens.Verify(context.Background(), msg.Token)
	if err != nil {
		code, message := tokenError(err)
		return refuse(code, message)
	}
	if !p.Can(herald.ScopeSubscribe) {
		return refuse("insufficient_scope", "The token lacks the subscribe scope.")
	}
	if c.cfg.Admit != nil {
		release, code, message := c.cfg.Admit(p)
		if code != "" {
			return refuse(code, message)
		}
		c.release = release
	}
	c.principal, c.authed = p, true
	c.conn.SetReadDeadline(time.Time{})
	c.session = New(Config{
		Org: p.Org, Log: c.cfg.Log, Hub: c.cfg.Hub, Conn: c.conn, Logger: c.cfg.Logger, Gauges: c.cfg.Gauges,
		OnLost: func(err error) {
			msg := "The session cannot continue without a gap: " + err.Error()
			if herald.ErrorCode(err) == herald.ECONFLICT {
				msg = "Events were lost: " + herald.ErrorMessage(err) + ". Subscribe again without last_event_id."
			}
			c.conn.CloseAfterFlush(CloseEventsLost, "events lost", channels.AppendError(nil, "events_lost", msg))
		},
	})
	c.conn.Send(channels.AppendAuthOK(nil, p.User, p.Org, exp))
	c.setExpiry(exp)
	c.conn.StartPing(c.cfg.PingInterval)
	if autoChannel != "" {
		c.subscribe(channels.Subscription{Channel: autoChannel}, nil)
	}
	return true
}

// refresh takes a new token for the same user and org (in-band refresh).
func (c *chanConn) refresh(token string) {
	p, exp, err := c.cfg.Tokens.Verify(context.Background(), token)
	if err != nil {
		code, message := tokenError(err)
		c.conn.Send(channels.AppendAuthFailed(nil, code, message+" The current token stays in force until it expires."))
		return
	}
	if p.Org != c.principal.Org || p.User != c.principal.User {
		c.conn.Send(channels.AppendAuthFailed(nil, "invalid_token",
			"A refreshed token must be for the same user and org as the connection's."))
		return
	}
	c.conn.Send(channels.AppendAuthOK(nil, p.User, p.Org, exp))
	c.setExpiry(exp)
}

// setExpiry (re)arms the expiry timer: at expiry, the client is told and
// the connection closed.
func (c *chanConn) setExpiry(exp time.Time) {
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

func (c *chanConn) expire() {
	exp := time.Unix(0, c.expiry.Load())
	if time.Now().Before(exp) {
		return // refreshed meanwhile; the new timer is armed
	}
	c.conn.CloseAfterFlush(CloseTokenExpired, "token expired", channels.AppendTokenExpired(nil, exp))
}

// admitMessage applies the per-connection message rate (a token bucket
// of MessagesPerSecond, refilled continuously).
func (c *chanConn) admitMessage() bool {
	now := time.Now()
	limit := float64(c.cfg.MessagesPerSecond)
	c.allowance = min(limit, c.allowance+now.Sub(c.checked).Seconds()*limit)
	c.checked = now
	if c.allowance < 1 {
		return false
	}
	c.allowance--
	return true
}

func (c *chanConn) subscribe(sub channels.Subscription, after *uint64) {
	if old := c.byChannel[sub.Channel]; old != nil {
		// One subscription per channel: a new subscribe replaces its filters.
		c.drop(old)
	}
	s := &chanSub{c: c, tag: c.nextTag, sub: sub}
	c.nextTag++
	if sub.Channel == herald.ChannelTelemetry && sub.Frequency > 0 {
		s.conflat = newConflator(s)
	}
	old := c.loadSubs()
	subs := append(old[:len(old):len(old)], s)
	c.subs.Store(&subs)
	c.byChannel[sub.Channel] = s
	x := &Sub{ID: sub.Channel, Tag: s.tag, Filter: filter.Filter{Channels: []string{sub.Channel}}, Match: s.match}
	if s.conflat != nil {
		x.Take = s.conflat.take
	}
	c.session.Subscribe(x, after, func() {
		c.cfg.Gauges.Subscriptions.Add(1)
		c.conn.Send(channels.AppendSubscribed(nil, sub))
	})
	if sub.Channel == herald.ChannelSystem && c.cfg.Status != nil {
		s.startStatus()
	}
}

func (c *chanConn) unsubscribe(channel string) {
	s := c.byChannel[channel]
	if s == nil {
		c.sendError("not_subscribed", "There is no subscription to channel "+strconv.Quote(channel)+" on this connection.")
		return
	}
	c.drop(s)
	c.conn.Send(channels.AppendUnsubscribed(nil, channel))
}

func (c *chanConn) drop(s *chanSub) {
	s.gone.Store(true)
	s.stop()
	c.session.Unsubscribe(s.sub.Channel)
	delete(c.byChannel, s.sub.Channel)
	c.cfg.Gauges.Subscriptions.Add(-1)
}

func (c *chanConn) sendError(code, message string) {
	c.conn.Send(channels.AppendError(nil, code, message))
}

func (c *chanConn) sendDecodeError(err error) {
	var de *channels.Error
	if errors.As(err, &de) {
		c.sendError(de.Code, de.Message)
		return
	}
	c.sendError("invalid_message", err.Error())
}

func (c *chanConn) loadSubs() []*chanSub {
	if p := c.subs.Load(); p != nil {
		return *p
	}
	return nil
}

// AppendEvent implements wsconn.Renderer: the event's push, rendered once
// and shared, or, for a telemetry subscription that names metrics, only
// those metrics.
func (c *chanConn) AppendEvent(parts [][]byte, scratch []byte, m wsconn.Message) ([][]byte, []byte) {
	e := m.Event
	if subs := c.loadSubs(); int(m.Tag) < len(subs) {
		if s := subs[m.Tag]; len(s.sub.Metrics) > 0 && e.Channel == herald.ChannelTelemetry {
			start := len(scratch)
			scratch = channels.AppendTelemetryUpdate(scratch, e.ID, c.deviceID(e.Org, e.DeviceUUID),
				selectMetrics(channels.Telemetry(e), s.sub.Metrics), e.TimestampMs)
			return append(parts, scratch[start:len(scratch):len(scratch)]), scratch
		}
	}
	return append(parts, e.Rendered(herald.RenderChannels, c.cfg.renderPush)), scratch
}

// renderPush renders an event's shared push.
func (cfg *ChannelsConfig) renderPush(e *herald.Event) []byte {
	return channels.AppendPush(nil, e, cfg.DeviceNumber(e.Org, e.DeviceUUID))
}

// deviceID is a device's id as channels clients see it: its number if it
// has one, else its uuid.
func (c *chanConn) deviceID(org, uuid string) []byte {
	return channels.AppendDeviceID(nil, uuid, c.cfg.DeviceNumber(org, uuid))
}

func (s *chanSub) match(e *herald.Event) bool {
	return s.sub.Match(e, s.c.cfg.DeviceNumber(e.Org, e.DeviceUUID))
}

func (s *chanSub) stop() {
	if s.conflat != nil {
		s.conflat.stop()
	}
	if s.ticker != nil {
		s.ticker.Stop()
	}
}

// startStatus pushes herald's status now and then every period.
func (s *chanSub) startStatus() {
	period := s.sub.Frequency
	if period <= 0 {
		period = s.c.cfg.SystemInterval
	}
	tick := func() {
		if s.gone.Load() {
			return
		}
		s.c.conn.Send(channels.AppendSystemStatus(nil, s.c.cfg.Status(), s.sub.Metrics))
		s.ticker.Reset(period)
	}
	s.ticker = time.AfterFunc(time.Hour, tick)
	s.ticker.Reset(0) // after the field is set: tick reads it
}

// selectMetrics keeps the metrics named in want.
func selectMetrics(all []channels.Metric, want []string) []channels.Metric {
	out := all[:0]
	for _, m := range all {
		for _, w := range want {
			if m.Name == w {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

func tokenError(err error) (code, message string) {
	var te *auth.TokenError
	if errors.As(err, &te) {
		return te.Code, te.Message
	}
	return "invalid_token", "The token could not be verified: " + herald.ErrorMessage(err)
}

func errorMessage(err error) string {
	var de *channels.Error
	if errors.As(err, &de) {
		return de.Message
	}
	return err.Error()
}
