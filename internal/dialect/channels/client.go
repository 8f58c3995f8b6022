package channels

import (
	"strconv"

	"github.com/herald-gw/herald/internal/jsonscan"
)

// AppendMessage appends m as a client sends it: the other side of Decode,
// for herald's own client (herald monitor) and for tests. Filters go under
// "filters", as the doc's Python client puts them; device ids that are
// plain decimals go as numbers. Decode of the result gives m back.
func AppendMessage(dst []byte, m Message) []byte {
	dst = append(dst, `{"type":`...)
	dst = jsonscan.AppendString(dst, m.Type)
	switch m.Type {
	case TypeAuth:
		dst = appendStringField(dst, "token", m.Token)
	case TypeSubscribe, TypeUnsubscribe:
		dst = appendStringField(dst, "channel", m.Sub.Channel)
		dst = appendFilters(dst, m.Sub)
		if m.LastEventID != nil {
			dst = append(dst, `,"last_event_id":"`...)
			dst = strconv.AppendUint(dst, *m.LastEventID, 10)
			dst = append(dst, '"')
		}
	case TypePing:
		if len(m.Timestamp) > 0 {
			dst = append(dst, `,"timestamp":`...)
			dst = append(dst, m.Timestamp...)
		}
	case TypeBatch:
		dst = append(dst, `,"messages":[`...)
		for i, item := range m.Batch {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendMessage(dst, item)
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

// appendFilters appends `,"filters":{…}` with the filters of sub that are
// set, or nothing when none is.
func appendFilters(dst []byte, sub Subscription) []byte {
	n := len(dst)
	dst = append(dst, `,"filters":{`...)
	empty := len(dst)
	sep := func() {
		if len(dst) > empty {
			dst = append(dst, ',')
		}
	}
	if len(sub.DeviceIDs) > 0 {
		dst = appendKey(dst, "device_id")
		dst = append(dst, '[')
		for i, id := range sub.DeviceIDs {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendID(dst, id)
		}
		dst = append(dst, ']')
	}
	for _, f := range []struct {
		key  string
		list []string
	}{
		{"metrics", sub.Metrics},
		{"severity", sub.Severity},
		{"alert_type", sub.AlertTypes},
		{"status_types", sub.StatusTypes},
	} {
		if len(f.list) > 0 {
			sep()
			dst = appendKey(dst, f.key)
			dst = appendStringList(dst, f.list)
		}
	}
	if sub.Frequency > 0 {
		sep()
		dst = appendKey(dst, "frequency")
		dst = jsonscan.AppendString(dst, formatFrequency(sub.Frequency))
	}
	if len(dst) == empty {
		return dst[:n]
	}
	return append(dst, '}')
}
