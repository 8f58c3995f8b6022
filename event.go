// Package herald holds the domain of the herald event gateway: events,
// orgs, devices, principals, and the interfaces the engine implements.
// Mechanisms live in internal/; concrete dependencies meet only in
// internal/server and cmd/.
package herald

import (
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf8"
)

// Channels of the canonical event model.
const (
	ChannelAlerts    = "alerts"
	ChannelTelemetry = "telemetry"
	ChannelDevices   = "devices"
	ChannelSystem    = "system"
	ChannelEvents    = "events"
)

// ChannelForEntity returns the default channel of an entity name.
func ChannelForEntity(entity string) string {
	switch strings.ToUpper(entity) {
	case "POLICY_ALERT", "ALERT":
		return ChannelAlerts
	case "TELEMETRY":
		return ChannelTelemetry
	case "DEVICE_STATUS", "CAMERA_STATE", "DOOR_STATE":
		return ChannelDevices
	case "SYSTEM_STATUS":
		return ChannelSystem
	}
	return ChannelEvents
}

// ValidChannel reports whether c is one of the canonical channels.
func ValidChannel(c string) bool {
	switch c {
	case ChannelAlerts, ChannelTelemetry, ChannelDevices, ChannelSystem, ChannelEvents:
		return true
	}
	return false
}

// Record is a normalized event on its way into the log: Data is the
// canonical flat JSON object without "id" (the log assigns it); the other
// fields are copies of Data's that the engine needs for its subject layout.
type Record struct {
	Org        string
	Channel    string
	Entity     string
	DeviceUUID string
	EntityUUID string
	Key        string // producer's idempotency key; "" for none
	Data       []byte
}

// maxRenderings bounds the wire encodings an Event caches.
const maxRenderings = 8

var renderings atomic.Int32

// NewRendering reserves a slot in every Event's cache of wire encodings,
// for one dialect's shared encoding of an event. Dialects call it once,
// when their package is initialized; it panics past maxRenderings.
func NewRendering() int { return reserveSlot(&renderings, maxRenderings, "renderings") }

// reserveSlot takes the next of limit slots counted by n.
func reserveSlot(n *atomic.Int32, limit int, what string) int {
	i := int(n.Add(1)) - 1
	if i >= limit {
		panic("herald: more than " + strconv.Itoa(limit) + " " + what + " registered")
	}
	return i
}

// maxKeyedRenderings bounds the per-recipient-kind encodings an Event caches.
const maxKeyedRenderings = 4

var keyedRenderings atomic.Int32

// NewKeyedRendering reserves a slot for RenderedFor, as NewRendering does
// for Rendered; it panics past maxKeyedRenderings.
func NewKeyedRendering() int {
	return reserveSlot(&keyedRenderings, maxKeyedRenderings, "keyed renderings")
}

// keyedRendering is an encoding of an event for recipients of one key.
type keyedRendering struct {
	key string
	b   []byte
}

// Event is one stored event, decoded once per node and then shared,
// read-only, by every session it is delivered to.
type Event struct {
	ID          uint64 // log sequence: the resume cursor in every dialect
	Org         string
	Channel     string
	Entity      string
	EntityUUID  string
	Type        string
	DeviceUUID  string
	TimestampMs int64
	Severity    string
	Triggers    []string // policyAlertTriggers
	// Body is the canonical flat JSON object with "id" first. Never modify it.
	Body []byte

	rendered [maxRenderings]atomic.Pointer[[]byte]
	keyed    [maxKeyedRenderings]atomic.Pointer[keyedRendering]
}

// Rendered returns the cached encoding of e in slot (from NewRendering), computing it
// with render on first use. Concurrent first uses may both render; one
// result wins and both are equal, so callers never lock.
func (e *Event) Rendered(slot int, render func(*Event) []byte) []byte {
	if p := e.rendered[slot].Load(); p != nil {
		return *p
	}
	b := render(e)
	e.rendered[slot].CompareAndSwap(nil, &b)
	return *e.rendered[slot].Load()
}

// RenderedFor returns e's encoding for recipients of key in slot (from
// NewKeyedRendering): a whole message, per-recipient bytes included, that
// recipients with the same key share. The slot keeps the key first asked
// for; for another key it returns false and the caller renders its own.
// Most recipients of an event share one key (a STOMP client's first
// subscription is "sub-0"), so one encoding serves them all.
func (e *Event) RenderedFor(slot int, key string, render func(e *Event, key string) []byte) ([]byte, bool) {
	p := e.keyed[slot].Load()
	if p == nil {
		e.keyed[slot].CompareAndSwap(nil, &keyedRendering{key: key, b: render(e, key)})
		p = e.keyed[slot].Load()
	}
	if p.key != key {
		return nil, false
	}
	return p.b, true
}

// IDString returns the event id as it goes on the wire.
func (e *Event) IDString() string { return strconv.FormatUint(e.ID, 10) }

// DecodeEvent decodes a stored record (canonical JSON without "id") into an
// Event with the given id, reading its indexed fields (event_decode.go):
// names match exactly, and fields of an unexpected type are left empty
// rather than failing: ingest validated them, and old data must stay
// readable, however deep older versions let it nest.
//
// Bytes that are not UTF-8 (stored before ingest refused them) become
// U+FFFD, one per byte as encoding/json decodes them, in Body and in every
// field: Body goes out in WebSocket text frames, which must be UTF-8.
func DecodeEvent(id uint64, data []byte) (*Event, error) {
	if !utf8.Valid(data) {
		data = replaceInvalidUTF8(data)
	}
	if i := firstNonSpace(data); i == len(data) || data[i] != '{' {
		return nil, Errorf(EINVALID, "stored event %d is not a JSON object", id)
	}
	e := &Event{ID: id, Body: withID(id, data)}
	if !decodeFields(e) {
		return nil, Errorf(EINVALID, "stored event %d is not a JSON object", id)
	}
	return e, nil
}

// replaceInvalidUTF8 returns a copy of data with each byte that is not
// part of a UTF-8 character replaced by U+FFFD. In valid JSON such bytes
// can only be inside strings, so the result is still valid JSON.
func replaceInvalidUTF8(data []byte) []byte {
	out := make([]byte, 0, len(data)+len(data)/4)
	for len(data) > 0 {
		r, size := utf8.DecodeRune(data)
		if r == utf8.RuneError && size == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, data[:size]...)
		}
		data = data[size:]
	}
	return out
}

// withID returns data, a JSON object, with "id":"<id>" as its first member.
func withID(id uint64, data []byte) []byte {
	i := 0
	for i < len(data) && data[i] != '{' {
		i++
	}
	rest := data[min(i+1, len(data)):]
	body := make([]byte, 0, len(rest)+32)
	body = append(body, `{"id":"`...)
	body = strconv.AppendUint(body, id, 10)
	body = append(body, '"')
	if j := firstNonSpace(rest); j < len(rest) && rest[j] != '}' {
		body = append(body, ',')
	}
	return append(body, rest...)
}

func firstNonSpace(b []byte) int {
	for i, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return i
		}
	}
	return len(b)
}
