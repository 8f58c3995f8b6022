package client

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/filter"
)

// Event is one event of herald's log, in the canonical model.
type Event struct {
	ID          uint64 // the event id: the log sequence, the cursor
	Org         string
	Channel     string // alerts, telemetry, devices, system or events
	Entity      string // POLICY_ALERT, DEVICE_STATUS, TELEMETRY, …
	EntityUUID  string
	Type        string // CREATE, UPDATE, DELETE
	DeviceUUID  string
	TimestampMs int64
	Severity    string
	Triggers    []string // policyAlertTriggers
	Description string   // textDescription
	DurationSec float64

	// Body is the canonical JSON object as the server stores it, with
	// "id" first. In the channels dialect, whose messages carry only some
	// of the event, it is the message the server pushed.
	Body json.RawMessage
}

// Time is when the event happened at its source.
func (e *Event) Time() time.Time { return time.UnixMilli(e.TimestampMs) }

// IsAlert reports whether e is an alert: on the alerts channel, or a
// POLICY_ALERT.
func (e *Event) IsAlert() bool {
	return e.Channel == herald.ChannelAlerts || e.Entity == "POLICY_ALERT"
}

// canonical is the JSON of a canonical event, for decoding.
type canonical struct {
	ID          string   `json:"id"`
	Org         string   `json:"org"`
	Channel     string   `json:"channel"`
	Entity      string   `json:"entity"`
	EntityUUID  string   `json:"entityUuid"`
	Type        string   `json:"type"`
	DeviceUUID  string   `json:"deviceUuid"`
	TimestampMs int64    `json:"timestampMs"`
	Severity    string   `json:"severity"`
	Triggers    []string `json:"policyAlertTriggers"`
	Description string   `json:"textDescription"`
	DurationSec float64  `json:"durationSec"`
}

// decodeCanonical decodes a canonical event; fields of an unexpected type
// are left empty (the server validated them when they were published).
func decodeCanonical(body []byte) (Event, error) {
	var c canonical
	if err := json.Unmarshal(body, &c); err != nil {
		var typeErr *json.UnmarshalTypeError
		if !errors.As(err, &typeErr) {
			return Event{}, &ProtocolError{Message: "an event that is not a JSON object: " + clip(string(body))}
		}
	}
	id, err := strconv.ParseUint(c.ID, 10, 64)
	if err != nil {
		return Event{}, &ProtocolError{Message: "an event without an id: " + clip(string(body))}
	}
	e := Event{ID: id, Org: c.Org, Channel: c.Channel, Entity: c.Entity, EntityUUID: c.EntityUUID, Type: c.Type,
		DeviceUUID: c.DeviceUUID, TimestampMs: c.TimestampMs, Severity: c.Severity, Triggers: c.Triggers,
		Description: c.Description, DurationSec: c.DurationSec, Body: append(json.RawMessage(nil), body...)}
	if e.Channel == "" {
		e.Channel = herald.ChannelForEntity(e.Entity)
	}
	return e, nil
}

// Filter selects events. Each non-empty list must hold a value of the
// event (compared ignoring case); empty lists match everything. Triggers
// matches an event with any of the listed triggers. The zero Filter
// matches every event.
type Filter struct {
	Entities   []string // entity names: POLICY_ALERT, DEVICE_STATUS, …
	Types      []string // change types: CREATE, UPDATE, DELETE
	Devices    []string // device uuids
	Triggers   []string // policyAlertTriggers
	Severities []string
	Channels   []string // alerts, telemetry, devices, system, events
}

func (f Filter) spec() filter.Spec {
	return filter.Spec{Entities: f.Entities, Types: f.Types, Devices: f.Devices, Triggers: f.Triggers,
		Severities: f.Severities, Channels: f.Channels}
}

// compile checks f against the server's bounds and compiles it.
func (f Filter) compile() (filter.Filter, error) {
	for _, c := range f.Channels {
		if !herald.ValidChannel(c) {
			return filter.Filter{}, &Error{Message: "unknown channel " + strconv.Quote(c) +
				": expected alerts, telemetry, devices, system or events", Permanent: true}
		}
	}
	flt, err := filter.New(f.spec())
	if err != nil {
		return flt, &Error{Message: "filter " + herald.ErrorMessage(err), Permanent: true}
	}
	return flt, nil
}

// match runs the compiled filter on e.
func match(flt *filter.Filter, e *Event) bool {
	he := herald.Event{Channel: e.Channel, Entity: e.Entity, Type: e.Type, DeviceUUID: e.DeviceUUID,
		Severity: e.Severity, Triggers: e.Triggers}
	return flt.Match(&he)
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
