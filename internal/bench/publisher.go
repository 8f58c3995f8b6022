package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// eventHead is every bench event up to its stamp field: the smallest
// valid event. Its entity is not a well-known one, so herald files it under
// the "events" channel.
const eventHead = `{"entity":"BENCH","type":"CREATE",`

// alertHead opens the events of a channels run: that dialect pushes only
// its four channels, and of an alert it pushes "metadata" as it is, where
// the stamp and pad go.
const alertHead = `{"entity":"BENCH","type":"CREATE","channel":"alerts","metadata":{`

// eventShape is how the publisher builds events of a run.
type eventShape struct {
	run    string
	pad    string // the pad field's value, sized so the delivered body is about --size bytes
	alerts bool   // on the alerts channel, stamp and pad in "metadata"
}

// newEventShape sizes events so that the body of the MESSAGE a herald
// client receives for them (the event plus the fields herald adds, see
// docs/stomp.md) is about size bytes. It returns the shape and the body
// size it aims at, larger than size when size is below the smallest body.
func newEventShape(run, org string, size int, alerts bool) (eventShape, int) {
	s := eventShape{run: run, alerts: alerts}
	// Unix nanoseconds have 19 digits until 2286, so every stamp is as long.
	base := deliveredBodyBytes(org, len(s.appendEvent(nil, time.Now().UnixNano())))
	pad := 0
	if size > base {
		pad = max(size-base-len(`,"pad":""`), 0)
	}
	s.pad = strings.Repeat("x", pad)
	return s, deliveredBodyBytes(org, len(s.appendEvent(nil, time.Now().UnixNano())))
}

// deliveredBodyBytes is the size of the body herald delivers for a
// published event of n bytes: "id", "org", "channel" and "timestampMs"
// added, the event id taken as 7 digits.
func deliveredBodyBytes(org string, n int) int {
	return n + len(`"id":"1234567",`) + len(`"channel":"events",`) + len(`"org":"`+org+`",`) + len(`"timestampMs":1795437209759,`)
}

// appendEvent appends one event stamped with the publish time ns.
func (s eventShape) appendEvent(dst []byte, ns int64) []byte {
	if s.alerts {
		dst = append(dst, alertHead...)
	} else {
		dst = append(dst, eventHead...)
	}
	dst = appendStampField(dst, s.run, ns)
	if s.pad != "" {
		dst = append(dst, `,"pad":"`...)
		dst = append(dst, s.pad...)
		dst = append(dst, '"')
	}
	if s.alerts {
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// appendBatch appends n events as one request body: the object alone for
// one event, NDJSON for more.
func (s eventShape) appendBatch(dst []byte, n int, ns int64) []byte {
	for i := range n {
		if i > 0 {
			dst = append(dst, '\n')
		}
		dst = s.appendEvent(dst, ns)
	}
	return dst
}

// publisher posts batches to POST /api/events and counts what was
// acknowledged.
type publisher struct {
	client  *http.Client
	url     string // http://host:port/api/events
	key     string
	shape   eventShape
	timeout time.Duration

	acked    atomic.Int64 // events in requests answered 200
	requests atomic.Int64
	failed   atomic.Int64 // requests that failed (their events may or may not be stored)
	errMu    sync.Mutex
	firstErr error // guarded by errMu
}

func newPublisher(base, key string, shape eventShape, workers int) *publisher {
	tr := &http.Transport{
		MaxIdleConns:        workers,
		MaxIdleConnsPerHost: workers,
		MaxConnsPerHost:     workers,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	return &publisher{
		client: &http.Client{Transport: tr}, url: strings.TrimSuffix(base, "/") + "/api/events",
		key: key, shape: shape, timeout: 30 * time.Second,
	}
}

// publish stamps n events with the current time and posts them; buf is
// the caller's scratch buffer, returned for reuse.
func (p *publisher) publish(ctx context.Context, buf []byte, n int) []byte {
	now := time.Now().UnixNano()
	buf = p.shape.appendBatch(buf[:0], n, now)
	p.requests.Add(1)
	if err := p.post(ctx, buf); err != nil {
		p.failed.Add(1)
		p.errMu.Lock()
		if p.firstErr == nil && ctx.Err() == nil {
			p.firstErr = err
		}
		p.errMu.Unlock()
		return buf
	}
	p.acked.Add(int64(n))
	return buf
}

func (p *publisher) post(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("x-auth-apikey", p.key)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s: %s", p.url, resp.Status, bytes.TrimSpace(answer))
	}
	return nil
}

// err returns the first publish failure.
func (p *publisher) err() error {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	return p.firstErr
}

func (p *publisher) close() { p.client.CloseIdleConnections() }
