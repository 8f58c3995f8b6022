package client

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// channelsTransport speaks the channels dialect: a JWT in the first
// message, one subscription per channel with the device, severity and
// trigger filters the dialect has, resume with last_event_id.
//
// Its pushes carry part of each event (no entity, no change type), so a
// filter on those is refused, and severity or trigger filters, which the
// dialect applies to alerts, subscribe to the alerts channel only.
type channelsTransport struct {
	r        *rest
	o        *options
	channels []string
}

var channelsOfDialect = []string{"alerts", "telemetry", "devices", "system"}

func newChannels(r *rest, o *options) (transport, error) {
	f := o.filter
	if len(f.Entities) > 0 || len(f.Types) > 0 {
		return nil, &Error{Message: "the channels dialect's messages carry no entity or change type: filter by them with another dialect", Permanent: true}
	}
	channels := channelsOfDialect
	if len(f.Severities) > 0 || len(f.Triggers) > 0 {
		channels = []string{"alerts"}
	}
	if len(f.Channels) > 0 {
		channels = slices.DeleteFunc(slices.Clone(channels), func(c string) bool {
			return !slices.ContainsFunc(f.Channels, func(want string) bool { return strings.EqualFold(want, c) })
		})
	}
	if len(channels) == 0 {
		return nil, &Error{Message: "the channels dialect carries the alerts, telemetry, devices and system channels; the filter leaves none", Permanent: true}
	}
	return &channelsTransport{r: r, o: o, channels: channels}, nil
}

// clientFilter is what the Stream checks itself: the server applied the
// rest, to fields its pushes do not carry.
func (t *channelsTransport) clientFilter(f Filter) Filter { return Filter{Channels: f.Channels} }

type channelsConn struct {
	*wsConn
	pending []Event
}

func (t *channelsTransport) connect(ctx context.Context, after *uint64) (connection, error) {
	token, err := t.r.bearer(ctx, true)
	if err != nil {
		return nil, err
	}
	ws, err := dialWS(ctx, t.r, t.r.wsURL("/ws"), nil)
	if err != nil {
		return nil, err
	}
	ping := []byte(`{"type":"ping"}`)
	c := &channelsConn{wsConn: keepAlive(ws, t.o.heartbeat, func(ctx context.Context) error {
		return ws.Write(ctx, websocket.MessageText, ping)
	})}
	if err := c.handshake(ctx, token, t.channels, after, &t.o.filter); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

type channelsMessage struct {
	Type    string          `json:"type"`
	Success bool            `json:"success"`
	Error   string          `json:"error"`
	Message string          `json:"message"`
	Channel string          `json:"channel"`
	EventID json.RawMessage `json:"event_id"`
}

func (c *channelsConn) handshake(ctx context.Context, token string, channels []string, after *uint64, f *Filter) error {
	auth, _ := json.Marshal(map[string]string{"type": "auth", "token": token})
	if err := c.write(ctx, auth); err != nil {
		return err
	}
	m, _, err := c.message(ctx)
	if err != nil {
		return err
	}
	if m.Type != "auth_response" || !m.Success {
		return &Error{Message: "channels auth refused: " + m.Error + " " + m.Message, Permanent: m.Error != "temporarily_unavailable"}
	}
	var subscribes []map[string]any
	for _, ch := range channels {
		sub := map[string]any{"type": "subscribe", "channel": ch}
		filters := map[string]any{}
		if len(f.Devices) > 0 {
			filters["device_id"] = f.Devices
		}
		if ch == "alerts" && len(f.Severities) > 0 {
			filters["severity"] = f.Severities
		}
		if ch == "alerts" && len(f.Triggers) > 0 {
			filters["alert_type"] = f.Triggers
		}
		if len(filters) > 0 {
			sub["filters"] = filters
		}
		if after != nil {
			sub["last_event_id"] = strconv.FormatUint(*after, 10)
		}
		subscribes = append(subscribes, sub)
	}
	batch, _ := json.Marshal(map[string]any{"type": "batch", "messages": subscribes})
	if err := c.write(ctx, batch); err != nil {
		return err
	}
	for subscribed := 0; subscribed < len(channels); {
		m, data, err := c.message(ctx)
		if err != nil {
			return err
		}
		switch m.Type {
		case "subscribed":
			subscribed++
		case "error":
			return &Error{Message: "channels subscribe refused: " + m.Error + ": " + m.Message, Permanent: true}
		default:
			if e, ok, err := channelsEvent(m, data); err != nil {
				return err
			} else if ok {
				c.pending = append(c.pending, e)
			}
		}
	}
	return nil
}

func (c *channelsConn) read(ctx context.Context) ([]Event, error) {
	if len(c.pending) > 0 {
		events := c.pending
		c.pending = nil
		return events, nil
	}
	for {
		m, data, err := c.message(ctx)
		if err != nil {
			return nil, err
		}
		if e, ok, err := channelsEvent(m, data); err != nil || ok {
			return []Event{e}, err
		}
	}
}

// message reads the next message; see channelsDecode for its errors.
func (c *channelsConn) message(ctx context.Context) (channelsMessage, []byte, error) {
	data, err := c.readText(ctx)
	if err != nil {
		return channelsMessage{}, nil, err
	}
	m, err := channelsDecode(data)
	return m, data, err
}

// channelsDecode decodes a message. An events_lost error is ErrEventsLost;
// catch_up_failed, which precedes the server's close, is an *Error that
// is not permanent, so the Stream reconnects and resumes from its cursor;
// auth_failed token_revoked (the credential was revoked) is permanent.
func channelsDecode(data []byte) (channelsMessage, error) {
	var m channelsMessage
	if json.Unmarshal(data, &m) != nil {
		return m, &ProtocolError{Message: "a message that is not JSON: " + clip(string(data))}
	}
	if m.Type == "auth_failed" && m.Error == "token_revoked" { // the credential was revoked: the server closes next
		return m, &Error{Message: "channels auth refused: " + m.Error + " " + m.Message, Permanent: true}
	}
	if m.Type == "error" {
		switch m.Error {
		case "events_lost":
			return m, ErrEventsLost
		case "catch_up_failed": // nothing was skipped: reconnect and resume from the cursor
			return m, &Error{Message: "channels catch_up_failed: " + m.Message}
		}
	}
	return m, nil
}

// channelsPush is what a push carries of its event.
type channelsPush struct {
	DeviceID  json.RawMessage `json:"device_id"`
	AlertID   json.RawMessage `json:"alert_id"`
	Severity  string          `json:"severity"`
	Title     string          `json:"title"`
	Message   string          `json:"message"`
	Timestamp string          `json:"timestamp"`
}

// channelsEvent makes an Event of a push; ok is false for other messages
// and for herald's own system status, which has no event id.
func channelsEvent(m channelsMessage, data []byte) (Event, bool, error) {
	switch m.Type {
	case "alert", "telemetry_update", "device_status_update", "system_status_update":
	default:
		return Event{}, false, nil
	}
	if len(m.EventID) == 0 {
		return Event{}, false, nil
	}
	id, err := strconv.ParseUint(jsonText(m.EventID), 10, 64)
	if err != nil {
		return Event{}, false, &ProtocolError{Message: "a push with a bad event_id: " + clip(string(data))}
	}
	var p channelsPush
	json.Unmarshal(data, &p)
	e := Event{ID: id, Channel: m.Channel, DeviceUUID: jsonText(p.DeviceID), EntityUUID: jsonText(p.AlertID),
		Severity: p.Severity, Description: p.Message, Body: append(json.RawMessage(nil), data...)}
	if e.Description == "" {
		e.Description = p.Title
	}
	if t, err := time.Parse(time.RFC3339Nano, p.Timestamp); err == nil {
		e.TimestampMs = t.UnixMilli()
	}
	return e, true, nil
}

// jsonText is a JSON string's text, or a number's digits.
func jsonText(raw json.RawMessage) string {
	if string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return strings.TrimSpace(string(raw))
}
