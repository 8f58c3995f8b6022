package stomp

import (
	"errors"
	"strconv"
	"strings"
	"sync"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/filter"
	"github.com/herald-gw/herald/internal/session"
	"github.com/herald-gw/herald/internal/wsconn"
)

// rendering is the STOMP slot of every event's cache of encodings.
var rendering = herald.NewRendering()

// filterHeaders names the extension header of each filter list.
var filterHeaders = map[string]string{
	filter.FieldEntities: HeaderEntity,
	filter.FieldTypes:    HeaderType,
	filter.FieldDevices:  HeaderDevice,
	filter.FieldTriggers: HeaderTrigger,
}

// subscription is what the renderer and ACK handling need of a
// subscription (session.Sub.Value). id and mode never change; pending is
// guarded by mu.
type subscription struct {
	c    *conn
	id   string
	mode string // auto | client | client-individual

	mu      sync.Mutex
	pending []uint64 // delivered, unacknowledged event ids, ascending
	over    bool     // more than MaxPendingAcks: the connection is being closed
	// shared: auto acknowledgement and an id no version escapes, so its
	// MESSAGE frames are the same for every recipient with that id.
	shared bool
}

func newSubscription(c *conn, id, mode string) *subscription {
	return &subscription{c: c, id: id, mode: mode, shared: mode == "auto" && !strings.ContainsAny(id, "\\\n\r:")}
}

func (c *conn) subscribe(f *Frame) bool {
	id, ok := f.Get("id")
	if !ok || id == "" {
		return c.fail(f, "missing id header", "SUBSCRIBE requires an id header.")
	}
	dest, _ := f.Get("destination")
	org, ok := strings.CutPrefix(dest, TopicPrefix)
	if !ok || org == "" || strings.ContainsAny(org, "/*>") {
		return c.fail(f, "unknown destination", "Destinations have the form /topic/change/{orgUuid}.")
	}
	if !strings.EqualFold(org, c.principal.Org) {
		return c.fail(f, "access denied", "This API key may not subscribe to "+dest+".")
	}
	mode, _ := f.Get("ack")
	switch mode {
	case "":
		mode = "auto"
	case "auto", "client", "client-individual":
	default:
		return c.fail(f, "bad ack header", "ack must be auto, client or client-individual.")
	}
	var after *uint64
	if s, ok := f.Get(HeaderAfter); ok {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return c.fail(f, "bad "+HeaderAfter+" header", HeaderAfter+" must be an event id (a decimal number).")
		}
		after = &n
	}
	flt, err := filter.New(filter.Spec{
		Entities: filter.ParseList(header(f, HeaderEntity)),
		Types:    filter.ParseList(header(f, HeaderType)),
		Devices:  filter.ParseList(header(f, HeaderDevice)),
		Triggers: filter.ParseList(header(f, HeaderTrigger)),
	})
	if err != nil {
		var fe *herald.Error
		errors.As(err, &fe)
		name := filterHeaders[fe.Field]
		return c.fail(f, "bad "+name+" header", name+" "+fe.Message+".")
	}
	// The id is kept for the subscription's life: a copy, not a slice of
	// the whole frame head.
	id = strings.Clone(id)
	sub := newSubscription(c, id, mode)
	// The RECEIPT is queued once the subscription is active and before any
	// of its messages.
	ok = true
	err = c.session.Subscribe(&session.Sub{ID: id, Filter: flt, Value: sub}, after, func() { ok = c.receipt(f) })
	switch herald.ErrorCode(err) {
	case "":
		return ok
	case herald.ECONFLICT:
		return c.fail(f, "duplicate subscription id", "Subscription "+id+" already exists on this connection.")
	case herald.ETOOLARGE:
		return c.fail(f, "too many subscriptions",
			"A connection may hold "+strconv.Itoa(c.cfg.Node.MaxSubscriptions)+" subscriptions (limits.max_subscriptions).")
	case herald.EINVALID:
		return c.fail(f, "bad "+HeaderAfter+" header", herald.ErrorMessage(err))
	}
	return c.fail(f, "subscribe failed", herald.ErrorMessage(err))
}

func (c *conn) unsubscribe(f *Frame) bool {
	id, _ := f.Get("id")
	if id == "" || c.session.Unsubscribe(id) == nil {
		return c.fail(f, "unknown subscription", "There is no subscription "+id+" on this connection.")
	}
	return c.receipt(f)
}

// AppendEvents implements wsconn.Renderer: one MESSAGE per event. The
// shared head and body come from the event's cache; only the
// subscription (and ack) headers are written per recipient.
func (c *conn) AppendEvents(parts [][]byte, scratch []byte, events []wsconn.Message) ([][]byte, []byte, int) {
	m := events[0]
	e := m.Event
	frame := e.Rendered(rendering, renderMessage)
	split := len(frame) - len(e.Body) - 1
	sub := m.Sub.(*subscription)
	ack := ""
	if sub.mode != "auto" {
		ack = sub.track(e.ID)
	}
	start := len(scratch)
	scratch = AppendRecipientHeaders(scratch, c.version, sub.id, ack)
	return append(parts, frame[:split], scratch[start:], frame[split:]), scratch, 1
}

// framed is the STOMP slot of every event's cache of whole frames.
var framed = herald.NewKeyedRendering()

// AppendFramed implements wsconn.Framer: the whole WebSocket frame of a
// MESSAGE to a shared subscription (see subscription.shared), encoded once
// for every recipient whose subscription has the same id.
func (c *conn) AppendFramed(parts [][]byte, events []wsconn.Message) ([][]byte, int) {
	n := 0
	for _, m := range events {
		sub := m.Sub.(*subscription)
		if !sub.shared {
			break
		}
		frame, ok := m.Event.RenderedFor(framed, sub.id, renderFramed)
		if !ok {
			break
		}
		parts = append(parts, frame)
		n++
	}
	return parts, n
}

// renderFramed encodes e's MESSAGE to subscription id (which needs no
// escaping) as one WebSocket text frame.
func renderFramed(e *herald.Event, id string) []byte {
	// The payload goes after room for the longest frame header, which is
	// then written just before it: one allocation.
	const room = 10
	b := MessageHead(make([]byte, room, room+176+len(id)+len(e.Body)), TopicPrefix+e.Org, e.IDString(), len(e.Body))
	b = AppendRecipientHeaders(b, V12, id, "")
	b = MessageTail(b, e.Body)
	var header [room]byte
	h := wsconn.AppendTextHeader(header[:0], len(b)-room)
	copy(b[room-len(h):], h)
	return b[room-len(h):]
}

// renderMessage encodes the shared part of an event's MESSAGE frame:
// head then body and NUL; the per-recipient headers go in between.
func renderMessage(e *herald.Event) []byte {
	b := MessageHead(make([]byte, 0, 160+len(e.Body)), TopicPrefix+e.Org, e.IDString(), len(e.Body))
	return MessageTail(b, e.Body)
}
