package channels

import (
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/filter"
	"github.com/herald-gw/herald/internal/session"
	"github.com/herald-gw/herald/internal/wsconn"
)

// rendering is the channels slot of every event's cache of encodings.
var rendering = herald.NewRendering()

// maxHeldMetrics bounds the metrics a conflated device holds back: more
// distinct ones within one period are sent at once.
const maxHeldMetrics = 1000

// channelFilters select each channel's events.
var channelFilters = func() map[string]filter.Filter {
	m := make(map[string]filter.Filter)
	for _, channel := range subscribable {
		m[channel], _ = filter.New(filter.Spec{Channels: []string{channel}})
	}
	return m
}()

// subscription is one channel's subscription (session.Sub.Value); its
// session id is the channel's name, so there is one per channel.
type subscription struct {
	c   *conn
	sub Subscription

	mu      sync.Mutex
	ticker  *time.Timer // guarded by mu: the system channel's status
	stopped bool        // guarded by mu
}

func (c *conn) subscribe(sub Subscription, after *uint64) bool {
	// One subscription per channel: a new subscribe replaces its filters.
	c.drop(sub.Channel)
	s := &subscription{c: c, sub: sub}
	x := &session.Sub{ID: sub.Channel, Filter: channelFilters[sub.Channel], Match: s.match, Value: s}
	if sub.Channel == herald.ChannelTelemetry && sub.Frequency > 0 {
		x.Conflate = &session.Conflation{Period: sub.Frequency, Key: telemetryDevice, Merge: s.merge, Render: renderHeld}
	}
	ok := true
	err := c.session.Subscribe(x, after, func() { ok = c.send(AppendSubscribed(nil, sub)) })
	switch herald.ErrorCode(err) {
	case "":
	case herald.EINVALID:
		return c.sendError("invalid_last_event_id", herald.ErrorMessage(err))
	default:
		return c.sendError("subscribe_failed", herald.ErrorMessage(err))
	}
	if ok && sub.Channel == herald.ChannelSystem && c.cfg.Status != nil {
		c.mu.Lock()
		c.system = s
		c.mu.Unlock()
		s.startStatus()
	}
	return ok
}

func (c *conn) unsubscribe(channel string) bool {
	if !c.drop(channel) {
		return c.sendError("not_subscribed", "There is no subscription to channel "+strconv.Quote(channel)+" on this connection.")
	}
	return c.send(AppendUnsubscribed(nil, channel))
}

// drop ends the channel's subscription, if there is one.
func (c *conn) drop(channel string) bool {
	x := c.session.Unsubscribe(channel)
	if x == nil {
		return false
	}
	x.Value.(*subscription).stop()
	return true
}

func (s *subscription) match(e *herald.Event) bool {
	return s.sub.Match(e, s.c.cfg.Devices.Number(e.Org, e.DeviceUUID))
}

// AppendEvents implements wsconn.Renderer: one push per event, rendered
// once and shared, or, for a telemetry subscription that names metrics,
// only those metrics.
func (c *conn) AppendEvents(parts [][]byte, scratch []byte, events []wsconn.Message) ([][]byte, []byte, int) {
	m := events[0]
	e := m.Event
	if s := m.Sub.(*subscription); len(s.sub.Metrics) > 0 && e.Channel == herald.ChannelTelemetry {
		start := len(scratch)
		scratch = AppendTelemetryUpdate(scratch, e.ID, c.deviceID(e.Org, e.DeviceUUID),
			s.sub.SelectMetrics(Telemetry(e)), e.TimestampMs)
		return append(parts, scratch[start:len(scratch):len(scratch)]), scratch, 1
	}
	return append(parts, e.Rendered(rendering, c.renderPush)), scratch, 1
}

// renderPush renders an event's shared push.
func (c *conn) renderPush(e *herald.Event) []byte {
	return AppendPush(nil, e, c.cfg.Devices.Number(e.Org, e.DeviceUUID))
}

// deviceID is a device's id as channels clients see it: its number if it
// has one, else its uuid.
func (c *conn) deviceID(org, uuid string) []byte {
	return AppendDeviceID(nil, uuid, c.cfg.Devices.Number(org, uuid))
}

// heldTelemetry is what a conflated telemetry subscription holds back for
// one device: the latest value of each metric that changed.
type heldTelemetry struct {
	deviceID json.RawMessage
	metrics  []Metric
	index    map[string]int // metric name → index in metrics
	lastID   uint64         // the newest event merged
	timeMs   int64          // its time
}

func telemetryDevice(e *herald.Event) string {
	if e.Channel != herald.ChannelTelemetry {
		return ""
	}
	return e.DeviceUUID
}

// merge folds e's metrics into what is held for its device: a newer value
// replaces an older one. Its cost is one map operation per metric of e.
func (s *subscription) merge(held any, e *herald.Event) (any, bool) {
	h, _ := held.(*heldTelemetry)
	if h == nil {
		h = &heldTelemetry{deviceID: s.c.deviceID(e.Org, e.DeviceUUID), index: make(map[string]int)}
	}
	metrics := s.sub.SelectMetrics(Telemetry(e))
	for _, m := range metrics {
		if i, ok := h.index[m.Name]; ok {
			h.metrics[i] = m
			continue
		}
		h.index[m.Name] = len(h.metrics)
		h.metrics = append(h.metrics, m)
	}
	h.lastID, h.timeMs = e.ID, e.TimestampMs
	return h, len(h.metrics) >= maxHeldMetrics
}

func renderHeld(held any) []byte {
	h := held.(*heldTelemetry)
	return AppendTelemetryUpdate(nil, h.lastID, h.deviceID, h.metrics, h.timeMs)
}

// startStatus pushes herald's status now and then every period.
func (s *subscription) startStatus() {
	period := s.sub.Frequency
	if period <= 0 {
		period = s.c.cfg.SystemInterval
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ticker = time.AfterFunc(0, func() { s.tick(period) })
}

func (s *subscription) tick(period time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return // never re-armed once stopped: the timer would pin the connection
	}
	s.c.conn.Send(AppendSystemStatus(nil, s.c.cfg.Status(*s.c.viewer.Load()), s.sub.Metrics))
	s.ticker.Reset(period)
}

func (s *subscription) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.ticker != nil {
		s.ticker.Stop()
	}
}
