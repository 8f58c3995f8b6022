package channels

import (
	"strconv"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/jsonscan"
)

// Pushes: one event rendered as its channel's message (protocols.md §7.2).
// AppendPush's output is the same for every recipient with the same device
// number, so the server caches it in the event (the channels rendering slot).
//
// Fields the event does not carry are left out, except "metadata",
// "telemetry" and "metrics", which are always objects. Values read from
// Body go out as stored: strings keep their escapes, numbers their digits.

// AppendPush appends e as its channel's push message. Every push carries
// "event_id" (the log sequence as a string: the resume cursor) and, but
// for the "other" shape, "timestamp" (TimestampMs as ISO-8601 UTC with
// milliseconds). device_id is deviceNumber as a JSON number when it is
// positive, else DeviceUUID as a string, and absent when the event has
// neither.
//
//	alerts:    {"type":"alert","channel":"alerts","event_id","alert_id","device_id","severity","title","message","timestamp","metadata"}
//	telemetry: {"type":"telemetry_update","channel":"telemetry","event_id","device_id","telemetry":{metric:{value,unit,timestamp}},"timestamp"}
//	devices:   {"type":"device_status_update","channel":"devices","event_id","device_id","old_status","new_status","timestamp","reason","metadata"}
//	system:    {"type":"system_status_update","channel":"system","event_id","metrics":{…},"timestamp"}
//	other:     {"type":"event","channel":"events","event_id",…Body's members}
//
// alert_id is entityUuid (the event id if there is none), a JSON number
// when it is a plain decimal of at most 15 digits. title falls back to the
// policy alert triggers joined by ", ", message to textDescription. In
// the other shape Body's "type" (CREATE, UPDATE…) is renamed
// "change_type", and Body's "id", "channel", "event_id" and "change_type"
// are left out, so that no key repeats.
func AppendPush(dst []byte, e *herald.Event, deviceNumber int64) []byte {
	f := readBody(e.Body)
	switch e.Channel {
	case herald.ChannelAlerts:
		return appendAlert(dst, e, deviceNumber, &f)
	case herald.ChannelTelemetry:
		dst = appendHead(dst, "telemetry_update", herald.ChannelTelemetry, e.ID)
		dst = appendDeviceField(dst, e.DeviceUUID, deviceNumber)
		dst = append(dst, `,"telemetry":{`...)
		m := jsonscan.NewMembers(f.telemetry)
		first := true
		for key, value, ok := m.Next(); ok; key, value, ok = m.Next() {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = appendRawKey(dst, key)
			dst = appendMetricValue(dst, value, e.TimestampMs)
		}
		dst = append(dst, '}')
		return appendTail(dst, e.TimestampMs)
	case herald.ChannelDevices:
		dst = appendHead(dst, "device_status_update", herald.ChannelDevices, e.ID)
		dst = appendDeviceField(dst, e.DeviceUUID, deviceNumber)
		dst = appendRawField(dst, "old_status", f.oldStatus)
		dst = appendRawField(dst, "new_status", f.status)
		dst = append(dst, `,"timestamp":`...)
		dst = appendMillis(dst, e.TimestampMs)
		dst = appendRawField(dst, "reason", f.reason)
		dst = appendObjectField(dst, "metadata", f.metadata)
		return append(dst, '}')
	case herald.ChannelSystem:
		dst = appendHead(dst, "system_status_update", herald.ChannelSystem, e.ID)
		dst = appendObjectField(dst, "metrics", f.metrics)
		return appendTail(dst, e.TimestampMs)
	}
	return appendOther(dst, e)
}

func appendAlert(dst []byte, e *herald.Event, deviceNumber int64, f *bodyFields) []byte {
	dst = appendHead(dst, "alert", herald.ChannelAlerts, e.ID)
	dst = append(dst, `,"alert_id":`...)
	if e.EntityUUID != "" {
		dst = appendID(dst, e.EntityUUID)
	} else {
		dst = strconv.AppendUint(dst, e.ID, 10)
	}
	dst = appendDeviceField(dst, e.DeviceUUID, deviceNumber)
	if e.Severity != "" {
		dst = appendStringField(dst, "severity", e.Severity)
	}
	switch {
	case f.title != nil:
		dst = appendRawField(dst, "title", f.title)
	case len(e.Triggers) > 0:
		dst = append(dst, `,"title":"`...)
		for i, t := range e.Triggers {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			dst = jsonscan.AppendEscaped(dst, t)
		}
		dst = append(dst, '"')
	}
	if f.message != nil {
		dst = appendRawField(dst, "message", f.message)
	} else {
		dst = appendRawField(dst, "message", f.textDescription)
	}
	dst = append(dst, `,"timestamp":`...)
	dst = appendMillis(dst, e.TimestampMs)
	dst = appendObjectField(dst, "metadata", f.metadata)
	return append(dst, '}')
}

// appendOther renders an event of no well-known channel: Body's members
// after type, channel and event_id.
func appendOther(dst []byte, e *herald.Event) []byte {
	dst = appendHead(dst, "event", herald.ChannelEvents, e.ID)
	m := jsonscan.NewMembers(e.Body)
	for key, value, ok := m.Next(); ok; key, value, ok = m.Next() {
		switch {
		case jsonscan.Equal(key, "type"):
			dst = append(dst, `,"change_type":`...)
		case jsonscan.Equal(key, "id"), jsonscan.Equal(key, "channel"), jsonscan.Equal(key, "event_id"), jsonscan.Equal(key, "change_type"):
			continue
		default:
			dst = append(dst, ',')
			dst = appendRawKey(dst, key)
		}
		dst = append(dst, value...)
	}
	return append(dst, '}')
}

// appendHead opens a push: {"type":…,"channel":…,"event_id":"<id>".
func appendHead(dst []byte, typ, channel string, id uint64) []byte {
	dst = append(dst, `{"type":"`...)
	dst = append(dst, typ...)
	dst = append(dst, `","channel":"`...)
	dst = append(dst, channel...)
	dst = append(dst, `","event_id":"`...)
	dst = strconv.AppendUint(dst, id, 10)
	return append(dst, '"')
}

// appendTail closes a push with its timestamp.
func appendTail(dst []byte, ms int64) []byte {
	dst = append(dst, `,"timestamp":`...)
	dst = appendMillis(dst, ms)
	return append(dst, '}')
}

// AppendDeviceID appends the JSON value of a device_id: deviceNumber as a
// number when it is positive, else deviceUUID as a string; nothing when
// both are empty.
func AppendDeviceID(dst []byte, deviceUUID string, deviceNumber int64) []byte {
	if deviceNumber > 0 {
		return strconv.AppendInt(dst, deviceNumber, 10)
	}
	if deviceUUID == "" {
		return dst
	}
	return jsonscan.AppendString(dst, deviceUUID)
}

func appendDeviceField(dst []byte, deviceUUID string, deviceNumber int64) []byte {
	if deviceNumber <= 0 && deviceUUID == "" {
		return dst
	}
	dst = append(dst, `,"device_id":`...)
	return AppendDeviceID(dst, deviceUUID, deviceNumber)
}

// appendRawKey appends `"key":` for the raw content of a JSON string,
// which is already escaped.
func appendRawKey(dst []byte, key []byte) []byte {
	dst = append(dst, '"')
	dst = append(dst, key...)
	return append(dst, '"', ':')
}

// appendRawField appends `,"key":value` unless value is nil.
func appendRawField(dst []byte, key string, value []byte) []byte {
	if value == nil {
		return dst
	}
	dst = append(dst, ',')
	dst = appendKey(dst, key)
	return append(dst, value...)
}

// appendObjectField appends `,"key":value`, value being {} unless it is
// a JSON object.
func appendObjectField(dst []byte, key string, value []byte) []byte {
	dst = append(dst, ',')
	dst = appendKey(dst, key)
	if len(value) == 0 || value[0] != '{' {
		return append(dst, '{', '}')
	}
	return append(dst, value...)
}

// appendMetricValue appends a metric's stored value with a "timestamp":
// an object that has one goes out as stored; an object without one gets
// the event's; anything else (a bare 23.5) becomes {"value":…,"timestamp":…}.
func appendMetricValue(dst []byte, value []byte, eventMs int64) []byte {
	if len(value) == 0 || value[0] != '{' {
		dst = append(dst, `{"value":`...)
		dst = append(dst, value...)
		return appendTail(dst, eventMs)
	}
	if ts, ok := jsonscan.Lookup(value, "timestamp"); ok && string(ts) != "null" {
		return append(dst, value...)
	}
	dst = append(dst, '{')
	m := jsonscan.NewMembers(value)
	for key, v, ok := m.Next(); ok; key, v, ok = m.Next() {
		if jsonscan.Equal(key, "timestamp") {
			continue // null
		}
		dst = appendRawKey(dst, key)
		dst = append(dst, v...)
		dst = append(dst, ',')
	}
	dst = append(dst, `"timestamp":`...)
	dst = appendMillis(dst, eventMs)
	return append(dst, '}')
}

// bodyFields are the raw values of the Body members pushes read; nil when
// absent or null.
type bodyFields struct {
	title, message, textDescription, metadata []byte
	status, oldStatus, reason                 []byte
	telemetry, metrics                        []byte
}

func readBody(body []byte) bodyFields {
	var f bodyFields
	fields := [...]struct {
		name string
		dest *[]byte
	}{
		{"title", &f.title}, {"message", &f.message}, {"textDescription", &f.textDescription},
		{"metadata", &f.metadata}, {"status", &f.status}, {"oldStatus", &f.oldStatus},
		{"reason", &f.reason}, {"telemetry", &f.telemetry}, {"metrics", &f.metrics},
	}
	m := jsonscan.NewMembers(body)
	for key, value, ok := m.Next(); ok; key, value, ok = m.Next() {
		if string(value) == "null" {
			continue
		}
		for _, field := range fields {
			if *field.dest == nil && jsonscan.Equal(key, field.name) {
				*field.dest = value
				break
			}
		}
	}
	return f
}
