// Package monitor is herald monitor's pipeline: events from a
// client.Stream, enriched with device names, written to every sink (the
// printer, a webhook, Slack, SQLite, PostgreSQL), and the cursor stored
// only once every sink has accepted them, so that a monitor killed at any
// moment resumes without losing an event.
package monitor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/herald-gw/herald/client"
)

// Config is a monitor's settings; zero values get the defaults given.
type Config struct {
	URL     string          // the herald server, ws:// or http://
	Options []client.Option // dialect, credentials, filter
	After   *uint64         // start after this event id, whatever is stored

	Format string    // "text", "json", or "none"; default "text"
	Out    io.Writer // the printer's; default io.Discard
	Log    io.Writer // notices and the status line; default io.Discard
	Live   bool      // show the status line (Log is a terminal)

	Names    bool          // look device names up over the REST API
	NamesTTL time.Duration // how long a name is kept; default 5m

	Webhook    string // POST each event here
	Slack      string // post alerts to this Slack incoming webhook
	Retries    int    // attempts per webhook or Slack post; default 5
	Backoff    time.Duration
	DeadLetter string        // where events go after Retries failures; default herald-monitor-dead-letter.jsonl
	SlackEvery time.Duration // at most one Slack message per this; default 1s (Slack's published limit)

	SQLite   string // a database file
	Postgres string // a pgx DSN
	State    string // a file for the cursor; default herald-monitor.state when no SQL sink holds it and an HTTP sink needs one
	Name     string // the cursor's name in the stores; default "default"

	// Batch bounds the events written to the sinks at once; default 500.
	Batch int
}

func (c Config) withDefaults() Config {
	if c.Format == "" {
		c.Format = "text"
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.NamesTTL <= 0 {
		c.NamesTTL = 5 * time.Minute
	}
	if c.Retries <= 0 {
		c.Retries = 5
	}
	if c.Backoff <= 0 {
		c.Backoff = 500 * time.Millisecond
	}
	if c.DeadLetter == "" {
		c.DeadLetter = "herald-monitor-dead-letter.jsonl"
	}
	if c.SlackEvery <= 0 {
		c.SlackEvery = time.Second
	}
	if c.Name == "" {
		c.Name = "default"
	}
	if c.Batch <= 0 {
		c.Batch = 500
	}
	if c.State == "" && c.SQLite == "" && c.Postgres == "" && (c.Webhook != "" || c.Slack != "") {
		c.State = "herald-monitor.state"
	}
	return c
}

// sink takes batches of events. write returns only once the batch is
// accepted (stored, delivered or dead-lettered), retrying meanwhile, or
// when ctx ends.
type sink interface {
	name() string
	write(ctx context.Context, batch []enriched) error
	close() error
}

// cursorStore is a sink that also stores the cursor, with the events.
type cursorStore interface {
	cursor(ctx context.Context) (id uint64, ok bool, err error)
}

// enriched is an event with its device's name.
type enriched struct {
	client.Event
	DeviceName string
	DeviceKind string
}

// Run runs the monitor until ctx ends, then finishes the batch in hand
// (for at most flushTimeout), closes the sinks and returns nil; it returns
// an error when it cannot start or its Stream fails for good.
func Run(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	m, err := open(ctx, cfg)
	if err != nil {
		return err
	}
	defer m.close()
	return m.run(ctx)
}

// flushTimeout bounds the last batch's writes after ctx ends.
const flushTimeout = 15 * time.Second

type monitor struct {
	cfg     Config
	stream  *client.Stream
	sinks   []sink
	state   *stateFile
	names   *names
	status  *status
	started time.Time
}

func open(ctx context.Context, cfg Config) (m *monitor, err error) {
	m = &monitor{cfg: cfg, status: newStatus(), started: time.Now()}
	defer func() {
		if err != nil {
			m.close()
		}
	}()
	var printer sink
	switch cfg.Format {
	case "text", "json":
		printer = &printSink{w: cfg.Out, json: cfg.Format == "json"}
		m.sinks = append(m.sinks, printer)
	case "none":
	default:
		return m, fmt.Errorf("unknown format %q: expected text, json or none", cfg.Format)
	}
	for _, u := range []struct{ flag, url string }{{"webhook", cfg.Webhook}, {"slack", cfg.Slack}} {
		if err := checkURL(u.url); u.url != "" && err != nil {
			return m, fmt.Errorf("%s URL %q: %v", u.flag, u.url, err)
		}
	}
	if cfg.Webhook != "" {
		p := newPoster("webhook", cfg.Webhook, cfg, webhookBody, nil)
		p.onFailure = m.failureReporter(len(m.sinks), p.kind)
		m.sinks = append(m.sinks, p)
	}
	if cfg.Slack != "" {
		p := newPoster("slack", cfg.Slack, cfg, slackBody, isSlackAlert)
		p.onFailure = m.failureReporter(len(m.sinks), p.kind)
		m.sinks = append(m.sinks, p)
	}
	for _, db := range []struct{ flavor, dsn string }{{"sqlite", cfg.SQLite}, {"postgres", cfg.Postgres}} {
		if db.dsn == "" {
			continue
		}
		s, err := openSQL(ctx, db.flavor, db.dsn, cfg.Name)
		if err != nil {
			return m, err
		}
		s.onError = m.failureReporter(len(m.sinks), s.flavor)
		m.sinks = append(m.sinks, s)
	}
	if cfg.State != "" {
		m.state = &stateFile{path: cfg.State}
	}
	after, err := m.start(ctx)
	if err != nil {
		return m, err
	}
	opts := append([]client.Option{client.OnStatus(m.onStatus)}, cfg.Options...)
	if after != nil {
		opts = append(opts, client.After(*after))
	}
	m.stream, err = client.Dial(ctx, cfg.URL, opts...)
	if err != nil {
		return m, err
	}
	switch {
	case after == nil:
		m.notice("starting with the next new event")
	case m.cfg.After != nil:
		m.notice("starting after event %d (--after)", *after)
	default:
		m.notice("resuming after event %d, the stores' cursor", *after)
	}
	if cfg.Names {
		m.names = newNames(m.stream.Device, cfg.NamesTTL)
	}
	return m, nil
}

// start is where the monitor starts: after the given event, or the
// lowest cursor of the stores that hold one, so that no store misses an
// event; nil (the org's newest event) when none does.
func (m *monitor) start(ctx context.Context) (*uint64, error) {
	if m.cfg.After != nil {
		return m.cfg.After, nil
	}
	var lowest *uint64
	consider := func(id uint64) {
		if lowest == nil || id < *lowest {
			lowest = &id
		}
	}
	for _, s := range m.sinks {
		if c, ok := s.(cursorStore); ok {
			id, found, err := c.cursor(ctx)
			if err != nil {
				return nil, fmt.Errorf("%s: reading the cursor: %w", s.name(), err)
			}
			if found {
				consider(id)
			}
		}
	}
	if m.state != nil {
		id, found, err := m.state.load()
		if err != nil {
			return nil, err
		}
		if found {
			consider(id)
		}
	}
	return lowest, nil
}

func (m *monitor) close() {
	if m.stream != nil {
		m.stream.Close()
	}
	for _, s := range m.sinks {
		if err := s.close(); err != nil {
			m.notice("%s: %v", s.name(), err)
		}
	}
	m.status.clear(m.cfg)
}

func (m *monitor) run(ctx context.Context) error {
	stopStatus := m.status.show(m.cfg)
	defer stopStatus()
	batch := make([]client.Event, 0, m.cfg.Batch)
	for {
		batch = batch[:0]
		e, err := m.stream.Next(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			return err
		}
		batch = append(batch, e)
		for len(batch) < m.cfg.Batch && m.stream.Buffered() > 0 {
			e, err := m.stream.Next(ctx)
			if err != nil {
				break
			}
			batch = append(batch, e)
		}
		// A signal now still lets the batch in hand reach every sink,
		// for flushTimeout.
		wctx, cancel := context.WithCancel(context.Background())
		stop := context.AfterFunc(ctx, func() { time.AfterFunc(flushTimeout, cancel) })
		err = m.deliver(wctx, batch)
		stop()
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				m.notice("stopped before every sink took events %d to %d; they will be sent again at the next start", batch[0].ID, batch[len(batch)-1].ID)
				return nil
			}
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// deliver writes a batch to every sink, then stores the cursor.
func (m *monitor) deliver(ctx context.Context, batch []client.Event) error {
	m.status.received(len(batch))
	rich := make([]enriched, len(batch))
	for i, e := range batch {
		rich[i].Event = e
	}
	if m.names != nil {
		m.names.resolve(ctx, rich)
	}
	for i, s := range m.sinks {
		if err := s.write(ctx, rich); err != nil {
			return fmt.Errorf("%s: %w", s.name(), err)
		}
		m.status.accepted(i, s.name(), len(batch))
	}
	last := batch[len(batch)-1].ID
	if m.state != nil {
		if err := m.state.store(last); err != nil {
			return err
		}
	}
	m.stream.Ack(last)
	m.status.cursor(last)
	return nil
}

func (m *monitor) onStatus(st client.Status) {
	var refused *client.Error
	switch {
	case errors.As(st.Err, &refused) && refused.Permanent:
		m.status.disconnected() // the Stream ends: the monitor reports why as it exits
	case st.Connected:
		m.status.connected()
	case errors.Is(st.Err, client.ErrEventsLost):
		m.notice("the server no longer keeps the events after %d: some were lost; going on from the newest", st.After)
	case st.Attempt == 1 && !m.status.everConnected():
		m.notice("cannot reach the server (%v); retrying", st.Err)
	case st.Attempt == 1:
		m.status.disconnected()
		m.notice("connection lost (%v); reconnecting", st.Err)
	case st.Attempt%10 == 0:
		m.notice("still reconnecting after %d attempts: %v", st.Attempt, st.Err)
	}
}

// checkURL accepts an absolute http or https URL.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return err
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("want an http:// or https:// URL")
	case u.Host == "":
		return errors.New("no host")
	}
	return nil
}

// failureReporter counts a sink's failures and says what failed.
func (m *monitor) failureReporter(i int, name string) func(error) {
	return func(err error) {
		m.status.failed(i, name)
		m.notice("%s: %v", name, err)
	}
}

func (m *monitor) notice(format string, args ...any) {
	m.status.notice(m.cfg, fmt.Sprintf(format, args...))
}
