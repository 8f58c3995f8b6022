package session

import (
	"sync"
	"time"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/dialect/channels"
)

// conflator holds a telemetry subscription's events back to at most one
// message per device and period, carrying the latest value of every
// metric that changed in it. The first event after a quiet period goes
// out at once; later ones wait for the period's end and are merged, a
// newer value replacing an older one, so nothing stale is sent after
// something newer.
type conflator struct {
	s      *chanSub
	period time.Duration

	mu      sync.Mutex
	devices map[string]*pendingDevice // guarded by mu
	timer   *time.Timer               // guarded by mu; armed while a device has something held back
	stopped bool                      // guarded by mu
}

// pendingDevice is one device's state in a conflator.
type pendingDevice struct {
	deviceID []byte            // as rendered in the message
	metrics  []channels.Metric // the latest value of each metric held back
	lastID   uint64            // the newest event merged
	timeMs   int64             // its time
	lastSent time.Time
}

func newConflator(s *chanSub) *conflator {
	return &conflator{s: s, period: s.sub.Frequency, devices: make(map[string]*pendingDevice)}
}

// take is the subscription's Take: it runs with the session's lock held.
func (f *conflator) take(e *herald.Event) {
	metrics := channels.Telemetry(e)
	if len(f.s.sub.Metrics) > 0 {
		metrics = selectMetrics(metrics, f.s.sub.Metrics)
	}
	if len(metrics) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return
	}
	d := f.devices[e.DeviceUUID]
	if d == nil {
		d = &pendingDevice{deviceID: f.s.c.deviceID(e.Org, e.DeviceUUID)}
		f.devices[e.DeviceUUID] = d
	}
	for _, m := range metrics {
		d.merge(m)
	}
	d.lastID, d.timeMs = e.ID, e.TimestampMs
	now := time.Now()
	if now.Sub(d.lastSent) >= f.period {
		f.sendLocked(d, now)
		return
	}
	f.armLocked(d.lastSent.Add(f.period).Sub(now))
}

func (d *pendingDevice) merge(m channels.Metric) {
	for i := range d.metrics {
		if d.metrics[i].Name == m.Name {
			d.metrics[i] = m
			return
		}
	}
	d.metrics = append(d.metrics, m)
}

// sendLocked sends what d holds; if the connection has no room, it stays
// held for the next period.
func (f *conflator) sendLocked(d *pendingDevice, now time.Time) {
	msg := channels.AppendTelemetryUpdate(nil, d.lastID, d.deviceID, d.metrics, d.timeMs)
	if f.s.c.conn.Send(msg) {
		d.metrics, d.lastSent = d.metrics[:0], now
		return
	}
	f.armLocked(f.period)
}

func (f *conflator) armLocked(after time.Duration) {
	if f.timer == nil {
		f.timer = time.AfterFunc(after, f.flush)
		return
	}
	f.timer.Reset(after)
}

// flush sends every device whose period is over, forgets devices quiet for
// a whole period, and re-arms for the next one due.
func (f *conflator) flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return
	}
	now := time.Now()
	next := time.Duration(-1)
	for uuid, d := range f.devices {
		due := d.lastSent.Add(f.period).Sub(now)
		switch {
		case len(d.metrics) == 0 && due <= 0:
			delete(f.devices, uuid)
		case len(d.metrics) == 0:
		case due <= 0:
			f.sendLocked(d, now)
		case next < 0 || due < next:
			next = due
		}
	}
	if next >= 0 {
		f.timer.Reset(next)
	}
}

func (f *conflator) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = true
	if f.timer != nil {
		f.timer.Stop()
	}
}
