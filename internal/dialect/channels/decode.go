package channels

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

// Decode parses one client message. Filter keys are accepted both at the
// top level (the doc's JS client spreads them there) and under "filters"
// (its Python client nests them); when both give a key, "filters" wins. A
// JSON null counts as absent. Unknown keys are ignored. A refused message
// returns an *Error.
//
// Client messages are small and rare next to pushes, so Decode uses
// encoding/json; only the push path is hand-written.
func Decode(data []byte) (Message, error) {
	return DecodeFor(data, "")
}

// DecodeFor is Decode on a connection opened on /ws/{channel}: a subscribe
// or unsubscribe that names no channel gets endpointChannel. On /ws
// (endpointChannel "") such a message is refused.
func DecodeFor(data []byte, endpointChannel string) (Message, error) {
	m, err := decodeRaw(data, endpointChannel, false)
	if err != nil {
		return Message{}, err
	}
	return m, nil
}

type object map[string]json.RawMessage

func decodeRaw(data []byte, endpointChannel string, inBatch bool) (Message, *Error) {
	var obj object
	if err := json.Unmarshal(data, &obj); err != nil {
		if !json.Valid(data) {
			return Message{}, errorf(CodeInvalidJSON, "message is not valid JSON: %s", jsonProblem(err))
		}
		return Message{}, errorf(CodeInvalidMessage, "message must be a JSON object")
	}
	if obj == nil {
		return Message{}, errorf(CodeInvalidMessage, "message must be a JSON object")
	}
	return decodeObject(obj, endpointChannel, inBatch)
}

// jsonProblem is encoding/json's complaint without its "json: " prefix.
func jsonProblem(err error) string {
	return strings.TrimPrefix(err.Error(), "json: ")
}

func decodeObject(obj object, endpointChannel string, inBatch bool) (Message, *Error) {
	rawType, ok := obj.get("type")
	if !ok {
		return Message{}, errorf(CodeInvalidMessage, `message has no "type"`)
	}
	var typ string
	if json.Unmarshal(rawType, &typ) != nil {
		return Message{}, errorf(CodeInvalidMessage, `"type" must be a string`)
	}
	m := Message{Type: typ}
	var err *Error
	switch typ {
	case TypeAuth:
		if raw, ok := obj.get("token"); !ok || string(raw) == "null" || string(raw) == `""` {
			err = errorf(CodeMissingToken, `auth needs a token: {"type":"auth","token":"<JWT>"}`)
		} else {
			m.Token, err = nonEmptyString(obj, "token")
		}
	case TypeSubscribe, TypeUnsubscribe:
		m.Sub, m.LastEventID, err = decodeSubscription(obj, "", endpointChannel)
	case "subscribe_device", "unsubscribe_device":
		m.Type = strings.TrimSuffix(typ, "_device")
		m.Sub, m.LastEventID, err = decodeSubscription(obj, "devices", endpointChannel)
	case TypePing:
		if raw, ok := obj.get("timestamp"); ok {
			var b bytes.Buffer
			_ = json.Compact(&b, raw) // raw is valid: it came out of json.Unmarshal
			m.Timestamp = b.Bytes()
		}
	case TypeBatch:
		if inBatch {
			return Message{}, errorf(CodeInvalidMessage, "a batch cannot contain another batch")
		}
		m.Batch, err = decodeBatch(obj, endpointChannel)
	default:
		return Message{}, errorf(CodeUnknownType, "unknown message type %q: expected auth, subscribe, unsubscribe, ping or batch", typ)
	}
	if err != nil {
		return Message{}, err
	}
	if m.Type != TypeSubscribe {
		m.LastEventID = nil
	}
	return m, nil
}

// get returns the member key unless it is absent or null.
func (o object) get(key string) (json.RawMessage, bool) {
	raw, ok := o[key]
	if !ok || string(raw) == "null" {
		return nil, false
	}
	return raw, true
}

func nonEmptyString(obj object, key string) (string, *Error) {
	var s string
	raw, ok := obj.get(key)
	if !ok || json.Unmarshal(raw, &s) != nil || s == "" {
		return "", errorf(CodeInvalidField, "%s must be a non-empty string", key)
	}
	return s, nil
}

func decodeBatch(obj object, endpointChannel string) ([]Message, *Error) {
	var items []json.RawMessage
	raw, ok := obj.get("messages")
	if !ok || json.Unmarshal(raw, &items) != nil {
		return nil, errorf(CodeInvalidField, "messages must be a list of messages")
	}
	if len(items) > MaxBatch {
		return nil, errorf(CodeBatchTooLarge, "batch holds %d messages, at most %d", len(items), MaxBatch)
	}
	batch := make([]Message, len(items))
	for i, item := range items {
		m, err := decodeRaw(item, endpointChannel, true)
		if err != nil {
			err.Message = "messages[" + strconv.Itoa(i) + "]: " + err.Message
			return nil, err
		}
		batch[i] = m
	}
	return batch, nil
}

// decodeSubscription reads channel, the filters and last_event_id. forced,
// if set, is the channel an alias implies.
func decodeSubscription(obj object, forced, endpointChannel string) (Subscription, *uint64, *Error) {
	var sub Subscription
	var err *Error
	if sub.Channel, err = decodeChannel(obj, forced, endpointChannel); err != nil {
		return sub, nil, err
	}
	filters := obj
	if raw, ok := obj.get("filters"); ok {
		var nested object
		if json.Unmarshal(raw, &nested) != nil {
			return sub, nil, errorf(CodeInvalidField, "filters must be an object")
		}
		filters = make(object, len(obj)+len(nested))
		for k, v := range obj {
			filters[k] = v
		}
		for k, v := range nested {
			if string(v) != "null" {
				filters[k] = v
			}
		}
	}
	if sub.DeviceIDs, err = decodeDeviceIDs(filters); err != nil {
		return sub, nil, err
	}
	for _, f := range []struct {
		key  string
		dest *[]string
	}{
		{"metrics", &sub.Metrics},
		{"severity", &sub.Severity},
		{"alert_type", &sub.AlertTypes},
		{"status_types", &sub.StatusTypes},
	} {
		if *f.dest, err = decodeStrings(filters, f.key); err != nil {
			return sub, nil, err
		}
	}
	if sub.Frequency, err = decodeFrequency(filters); err != nil {
		return sub, nil, err
	}
	last, err := decodeLastEventID(filters)
	sub.compile()
	return sub, last, err
}

func decodeChannel(obj object, forced, endpointChannel string) (string, *Error) {
	if forced != "" {
		return forced, nil
	}
	raw, ok := obj.get("channel")
	if !ok {
		if endpointChannel != "" {
			return endpointChannel, nil
		}
		return "", errorf(CodeInvalidField, "channel is required: telemetry, alerts, devices or system")
	}
	var c string
	if json.Unmarshal(raw, &c) != nil {
		return "", errorf(CodeInvalidField, "channel must be a string: telemetry, alerts, devices or system")
	}
	for _, s := range subscribable {
		if strings.EqualFold(c, s) {
			return s, nil
		}
	}
	return "", errorf(CodeUnknownChannel, "unknown channel %q: expected telemetry, alerts, devices or system", c)
}

// decodeDeviceIDs reads "device_id": a number, a string, or a list of
// them. Numbers must be integers and are kept in decimal form, so that 1
// and "1" are the same device.
func decodeDeviceIDs(obj object) ([]string, *Error) {
	raw, ok := obj.get("device_id")
	if !ok {
		return nil, nil
	}
	bad := errorf(CodeInvalidField, "device_id must be a number, a string or a list of them")
	items := []json.RawMessage{raw}
	if raw[0] == '[' {
		items = nil
		if json.Unmarshal(raw, &items) != nil {
			return nil, bad
		}
		if len(items) > MaxFilterValues {
			return nil, errorf(CodeInvalidField, "device_id holds %d values, at most %d", len(items), MaxFilterValues)
		}
	}
	ids := make([]string, 0, len(items))
	for i, item := range items {
		switch {
		case len(item) == 0:
			return nil, bad
		case item[0] == '"':
			var s string
			if json.Unmarshal(item, &s) != nil {
				return nil, bad
			}
			if s == "" {
				return nil, errorf(CodeInvalidField, "device_id must not be an empty string")
			}
			if err := checkLength("device_id", raw, i, s); err != nil {
				return nil, err
			}
			ids = append(ids, s)
		case item[0] == '-' || '0' <= item[0] && item[0] <= '9':
			id, ok := integerText(string(item))
			if !ok {
				return nil, errorf(CodeInvalidField, "device_id numbers must be integers, got %s", item)
			}
			ids = append(ids, id)
		default:
			return nil, bad
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	return ids, nil
}

// integerText returns the decimal form of a JSON number that is an
// integer within int64 ("1", "1.0" and "1e0" all give "1").
func integerText(num string) (string, bool) {
	if n, err := strconv.ParseInt(num, 10, 64); err == nil {
		return strconv.FormatInt(n, 10), true
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
		return "", false
	}
	return strconv.FormatInt(int64(f), 10), true
}

// decodeStrings reads a filter that is a string or a list of strings.
func decodeStrings(obj object, key string) ([]string, *Error) {
	raw, ok := obj.get(key)
	if !ok {
		return nil, nil
	}
	var list []string
	if raw[0] == '"' {
		list = []string{""}
		_ = json.Unmarshal(raw, &list[0])
	} else if json.Unmarshal(raw, &list) != nil {
		return nil, errorf(CodeInvalidField, "%s must be a non-empty string or a list of them", key)
	}
	if len(list) > MaxFilterValues {
		return nil, errorf(CodeInvalidField, "%s holds %d values, at most %d", key, len(list), MaxFilterValues)
	}
	for i, s := range list {
		if s == "" {
			return nil, errorf(CodeInvalidField, "%s must be a non-empty string or a list of them", key)
		}
		if err := checkLength(key, raw, i, s); err != nil {
			return nil, err
		}
	}
	if len(list) == 0 {
		return nil, nil
	}
	return list, nil
}

// checkLength refuses a filter value longer than MaxFilterValueBytes,
// naming it key or, when raw is a list, key[i].
func checkLength(key string, raw json.RawMessage, i int, s string) *Error {
	if len(s) <= MaxFilterValueBytes {
		return nil
	}
	if raw[0] == '[' {
		key += "[" + strconv.Itoa(i) + "]"
	}
	return errorf(CodeInvalidField, "%s is %d bytes long, at most %d", key, len(s), MaxFilterValueBytes)
}

// decodeFrequency reads "frequency": "real-time" (or "realtime"), a
// duration such as "30s", "1m", "500ms" or "1m30s", or a number of seconds
// (30, 0.5, "30"). Zero is real-time.
func decodeFrequency(obj object) (time.Duration, *Error) {
	raw, ok := obj.get("frequency")
	if !ok {
		return 0, nil
	}
	bad := errorf(CodeInvalidField, `frequency must be "real-time" or a duration from %s to %s such as "30s"`,
		formatFrequency(MinFrequency), formatFrequency(MaxFrequency))
	var d time.Duration
	if raw[0] == '"' {
		var s string
		_ = json.Unmarshal(raw, &s)
		var good bool
		if d, good = parseFrequency(s); !good {
			return 0, bad
		}
	} else {
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || !(f >= 0 && f <= MaxFrequency.Seconds()) {
			return 0, bad
		}
		d = time.Duration(math.Round(f * float64(time.Second)))
	}
	if d != 0 && (d < MinFrequency || d > MaxFrequency) {
		return 0, bad
	}
	return d, nil
}

// parseFrequency reads the string forms of a frequency; the range is
// checked by the caller.
func parseFrequency(s string) (time.Duration, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	switch s {
	case "real-time", "realtime", "real_time":
		return 0, true
	}
	if d, err := time.ParseDuration(s); err == nil {
		return d, d >= 0
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f >= 0 && f <= MaxFrequency.Seconds()) {
		return 0, false
	}
	return time.Duration(math.Round(f * float64(time.Second))), true
}

// decodeLastEventID reads "last_event_id": a non-negative integer, as a
// JSON number or a decimal string (event ids are decimal strings on the
// wire).
func decodeLastEventID(obj object) (*uint64, *Error) {
	raw, ok := obj.get("last_event_id")
	if !ok {
		return nil, nil
	}
	text := string(raw)
	if raw[0] == '"' {
		var s string
		_ = json.Unmarshal(raw, &s)
		text = s
	}
	if text == "" || text[0] < '0' || text[0] > '9' {
		return nil, errorf(CodeInvalidField, "last_event_id must be a non-negative integer or a decimal string")
	}
	id, err := strconv.ParseUint(text, 10, 64)
	if err != nil {
		return nil, errorf(CodeInvalidField, "last_event_id must be a non-negative integer or a decimal string")
	}
	return &id, nil
}
