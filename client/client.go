package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/herald-gw/herald/internal/filter"
)

// Dialect names one of herald's WebSocket protocols.
type Dialect string

// The dialects, and the paths herald serves them on.
const (
	STOMP    Dialect = "stomp"    // /websocket: Rhombus's STOMP 1.2; an API key
	Channels Dialect = "channels" // /ws: Valtronics's JSON channels; a JWT
	ESS      Dialect = "ess"      // /api/ws/events/v1: Milestone's Events and State; a JWT or an API key
	Streams  Dialect = "streams"  // /session/{id}/ws: Octave's streams; an API key or a user's JWT, and a company
)

var dialectPaths = []struct {
	dialect Dialect
	path    string
}{
	{STOMP, "/websocket"},
	{Channels, "/ws"},
	{ESS, "/api/ws/events/v1"},
	{Streams, "/session"},
}

// ParseDialect returns the dialect named s.
func ParseDialect(s string) (Dialect, error) {
	for _, d := range dialectPaths {
		if strings.EqualFold(s, string(d.dialect)) {
			return d.dialect, nil
		}
	}
	return "", &Error{Message: "unknown dialect " + s + ": expected stomp, channels, ess or streams", Permanent: true}
}

// Option configures Dial.
type Option func(*options)

type options struct {
	dialect                 Dialect
	apiKey, token           string
	user, password, company string
	filter                  Filter
	after                   *uint64
	minBackoff, maxBackoff  time.Duration
	heartbeat               time.Duration
	buffer                  int
	status                  func(Status)
	httpClient              *http.Client
}

// WithDialect chooses the dialect; by default the URL's path chooses it
// (/websocket, /ws, /api/ws/events/v1, /session), and a URL without a
// path speaks stomp.
func WithDialect(d Dialect) Option { return func(o *options) { o.dialect = d } }

// WithAPIKey authenticates with one of herald's API keys: the credential
// of stomp, and one that every other dialect takes too (channels through
// the token endpoint, where an API key is a password).
func WithAPIKey(key string) Option { return func(o *options) { o.apiKey = key } }

// WithToken authenticates with a JWT (channels, ess; streams with
// WithPassword's user name or WithCompany).
func WithToken(jwt string) Option { return func(o *options) { o.token = jwt } }

// WithPassword authenticates as a user of the org: the Stream asks the
// server's token endpoint (the password grant) for a JWT at each
// connection, so an expired token never stops it.
func WithPassword(user, password string) Option {
	return func(o *options) { o.user, o.password = user, password }
}

// WithUser names the user a WithToken token is for (streams'
// X-Auth-User).
func WithUser(user string) Option { return func(o *options) { o.user = user } }

// WithCompany names the org (its name or uuid) for the streams dialect's
// X-Auth-Company; with an API key the Stream can ask the server instead.
func WithCompany(company string) Option { return func(o *options) { o.company = company } }

// WithFilter returns only the events f matches.
func WithFilter(f Filter) Option { return func(o *options) { o.filter = f } }

// After starts the Stream after event id: the first event is the first
// one after it that the filter matches. After(0) starts at the beginning
// of the log. Without After the Stream starts at the org's newest event.
func After(id uint64) Option { return func(o *options) { o.after = &id } }

// WithBackoff sets the delays between reconnection attempts: the first
// is about min, each next one twice the last, up to max, each with
// random jitter. Defaults: 250ms and 30s.
func WithBackoff(minDelay, maxDelay time.Duration) Option {
	return func(o *options) { o.minBackoff, o.maxBackoff = minDelay, maxDelay }
}

// WithHeartbeat sets how often the Stream proves the connection alive
// (WebSocket pings, and the dialect's heart-beats); a connection silent
// for twice as long is dropped and made again. Default 10s.
func WithHeartbeat(d time.Duration) Option { return func(o *options) { o.heartbeat = d } }

// OnStatus calls fn when the Stream connects, loses its connection, fails
// to connect (the last time too, when the failure is permanent and the
// Stream ends) or learns that events were lost. fn runs on the Stream's
// goroutine: it must return quickly.
func OnStatus(fn func(Status)) Option { return func(o *options) { o.status = fn } }

// WithHTTPClient sets the client for the REST calls and the WebSocket
// handshakes (TLS settings, proxies). Default: one with a 10s timeout.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

// Status reports a change of a Stream's connection.
type Status struct {
	Connected bool   // a connection is up and subscribed
	Attempt   int    // consecutive failed attempts; 0 when connected
	Err       error  // why the connection ended or could not be made; ErrEventsLost when the server no longer had the events after the cursor
	After     uint64 // the cursor: the last event handed out (or the start)
}

// Errors of a Stream.
var (
	// ErrClosed is what Next returns once the Stream is closed.
	ErrClosed = errors.New("client: stream closed")
	// ErrEventsLost is reported through OnStatus when the server no
	// longer keeps the events after the Stream's cursor (they passed
	// its retention): the Stream goes on from the newest event.
	ErrEventsLost = errors.New("client: the server no longer keeps the events after the cursor; resuming from the newest")
)

// Error is a failure the server reported, or a request it refused.
type Error struct {
	Status    int    // the HTTP status or WebSocket close code, when there is one
	Message   string // what the server said
	Permanent bool   // retrying cannot help: a refused credential, a bad filter, a bad URL
}

func (e *Error) Error() string { return "herald: " + e.Message }

// ProtocolError is a message from the server that the client could not
// understand; the Stream reconnects.
type ProtocolError struct{ Message string }

func (e *ProtocolError) Error() string { return "herald: protocol: " + e.Message }

func permanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent
}

// transport is a dialect's way of connecting.
type transport interface {
	// connect opens a connection that delivers the events after *after
	// (nil: from now) that the filter may match.
	connect(ctx context.Context, after *uint64) (connection, error)
}

// connection is one WebSocket connection of a dialect.
type connection interface {
	// read blocks for the next events; an error ends the connection.
	read(ctx context.Context) ([]Event, error)
	close()
}

// Stream is a subscription that outlives connections. Its methods may be
// called from any goroutine.
type Stream struct {
	opts   options
	rest   *rest
	t      transport
	filter filter.Filter
	out    chan Event
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	pos    *uint64 // the last event taken from a connection (handed out or filtered away)
	acked  uint64
	handed uint64
	err    error // why the Stream ended; set before done closes
}

// Dial connects to the herald server at rawURL (ws://, wss://, http:// or
// https://) and subscribes. It returns an error only when the options or
// the server rule out any connection (a bad URL, a refused credential, a
// filter the server refuses); when the server cannot be reached yet, the
// Stream keeps trying in the background and OnStatus reports it.
func Dial(ctx context.Context, rawURL string, opts ...Option) (*Stream, error) {
	o := options{minBackoff: 250 * time.Millisecond, maxBackoff: 30 * time.Second, heartbeat: 10 * time.Second, buffer: 256}
	for _, opt := range opts {
		opt(&o)
	}
	r, err := newREST(rawURL, &o)
	if err != nil {
		return nil, err
	}
	if _, err := o.filter.compile(); err != nil {
		return nil, err
	}
	s := &Stream{opts: o, rest: r, out: make(chan Event, o.buffer), done: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	switch o.dialect {
	case STOMP:
		s.t, err = newSTOMP(r, &s.opts)
	case Channels:
		s.t, err = newChannels(r, &s.opts)
	case ESS:
		s.t, err = newESS(r, &s.opts)
	case Streams:
		s.t, err = newStreams(r, &s.opts)
	}
	if err != nil {
		s.cancel()
		return nil, err
	}
	// The filter the Stream checks itself: all of it, but for what the
	// dialect's server applied to fields its messages do not carry.
	checked := o.filter
	if t, ok := s.t.(interface{ clientFilter(Filter) Filter }); ok {
		checked = t.clientFilter(checked)
	}
	s.filter, _ = checked.compile()
	s.pos = o.after
	c, err := s.connect(ctx)
	if err != nil && (permanent(err) || ctx.Err() != nil) {
		s.cancel()
		return nil, err
	}
	go s.run(c, err)
	return s, nil
}

// Next returns the next event, blocking until there is one, ctx is done
// or the Stream ends. It returns the Stream's permanent error, or
// ErrClosed after Close.
func (s *Stream) Next(ctx context.Context) (Event, error) {
	select {
	case e := <-s.out:
		s.setHanded(e.ID)
		return e, nil
	default:
	}
	select {
	case e := <-s.out:
		s.setHanded(e.ID)
		return e, nil
	case <-s.done:
		select {
		case e := <-s.out:
			s.setHanded(e.ID)
			return e, nil
		default:
		}
		return Event{}, s.err
	case <-ctx.Done():
		return Event{}, ctx.Err()
	}
}

// Buffered is how many events Next can return without waiting.
func (s *Stream) Buffered() int { return len(s.out) }

func (s *Stream) setHanded(id uint64) {
	s.mu.Lock()
	s.handed = id
	s.mu.Unlock()
}

// Ack records that the consumer has processed every event up to id.
func (s *Stream) Ack(id uint64) {
	s.mu.Lock()
	s.acked = max(s.acked, id)
	s.mu.Unlock()
}

// Acked is the highest id passed to Ack: what a consumer stores to
// resume with After.
func (s *Stream) Acked() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked
}

// Dialect is the dialect the Stream speaks.
func (s *Stream) Dialect() Dialect { return s.opts.dialect }

// Close ends the Stream and its connection.
func (s *Stream) Close() error {
	s.cancel()
	<-s.done
	return nil
}

// run reads connections until the Stream is closed or fails, making them
// again with backoff.
func (s *Stream) run(c connection, err error) {
	defer close(s.done)
	attempt := 0
	for {
		if c == nil {
			if err == nil {
				c, err = s.connect(s.ctx)
			}
			if err != nil {
				if s.ended(err) {
					return
				}
				attempt++
				s.report(Status{Attempt: attempt, Err: err, After: s.after()})
				if !s.wait(backoff(attempt, s.opts.minBackoff, s.opts.maxBackoff)) {
					s.finish(ErrClosed)
					return
				}
				c, err = nil, nil
				continue
			}
		}
		attempt = 0
		s.report(Status{Connected: true, After: s.after()})
		err = s.pump(c)
		c.close()
		c = nil
		if s.ended(err) {
			return
		}
		s.report(Status{Attempt: 1, Err: err, After: s.after()})
		// A dropped connection is tried again at once, once; a failing
		// server then gets the backoff.
		err = nil
		attempt = 1
		if !s.wait(backoff(1, s.opts.minBackoff/4, s.opts.maxBackoff)) {
			s.finish(ErrClosed)
			return
		}
	}
}

// ended handles an error that ends the Stream or loses events; it
// reports whether the Stream is over.
func (s *Stream) ended(err error) bool {
	switch {
	case s.ctx.Err() != nil:
		s.finish(ErrClosed)
		return true
	case permanent(err):
		s.report(Status{Attempt: 1, Err: err, After: s.after()})
		s.finish(err)
		return true
	case errors.Is(err, ErrEventsLost):
		s.mu.Lock()
		s.pos = nil // connect goes on from the newest event
		s.mu.Unlock()
	}
	return false
}

// connect makes a connection that resumes after the cursor. A Stream
// without one asks the server for the org's newest event first, so that
// it has a cursor before its first event and a drop loses nothing.
func (s *Stream) connect(ctx context.Context) (connection, error) {
	if s.position() == nil {
		last, err := s.rest.newest(ctx)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.pos = &last
		s.mu.Unlock()
	}
	return s.t.connect(ctx, s.position())
}

func (s *Stream) finish(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
	s.cancel()
}

// pump moves a connection's events to the consumer, dropping those it
// has handed out already and those the filter does not match.
func (s *Stream) pump(c connection) error {
	for {
		events, err := c.read(s.ctx)
		if err != nil {
			return err
		}
		for _, e := range events {
			s.mu.Lock()
			seen := s.pos != nil && e.ID <= *s.pos
			s.mu.Unlock()
			if seen {
				continue
			}
			if match(&s.filter, &e) {
				select {
				case s.out <- e:
				case <-s.ctx.Done():
					return s.ctx.Err()
				}
			}
			id := e.ID
			s.mu.Lock()
			s.pos = &id
			s.mu.Unlock()
		}
	}
}

func (s *Stream) position() *uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pos == nil {
		return nil
	}
	p := *s.pos
	return &p
}

func (s *Stream) after() uint64 {
	if p := s.position(); p != nil {
		return *p
	}
	return 0
}

func (s *Stream) report(st Status) {
	if s.opts.status != nil {
		s.opts.status(st)
	}
}

func (s *Stream) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// backoff is the delay before attempt n (1, 2, …): min·2^(n-1), at most
// max, with the upper half random.
func backoff(n int, minDelay, maxDelay time.Duration) time.Duration {
	d := max(minDelay, time.Millisecond)
	for i := 1; i < n && d < maxDelay; i++ {
		d *= 2
	}
	d = min(d, maxDelay)
	return d/2 + rand.N(d/2+1)
}

// baseURL splits a server URL into the HTTP base (scheme, host and any
// path prefix) and the dialect its path names.
func baseURL(rawURL string) (*url.URL, Dialect, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return nil, "", &Error{Message: "bad server URL " + rawURL + ": want ws://host:port, wss://…, http://… or https://…", Permanent: true}
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	case "http", "https":
	default:
		return nil, "", &Error{Message: "bad server URL " + rawURL + ": the scheme must be ws, wss, http or https", Permanent: true}
	}
	var found Dialect
	path := strings.TrimSuffix(u.Path, "/")
	lower := strings.ToLower(path)
	for _, d := range dialectPaths {
		if strings.HasSuffix(lower, d.path) {
			found, path = d.dialect, path[:len(path)-len(d.path)]
			break
		}
	}
	if i := strings.Index(lower, "/session/"); found == "" && i >= 0 {
		found, path = Streams, path[:i]
	}
	u.Path, u.RawQuery, u.Fragment = path, "", ""
	return u, found, nil
}

func asError(err error, target **Error) bool { return errors.As(err, target) }
