package channels

import (
	"encoding/json"
	"time"

	"github.com/herald-gw/herald/internal/jsonscan"
)

// Server replies. Each appends one complete JSON text to dst and returns
// it; "type" is always the first key. Times are RFC 3339 in UTC.

// AppendAuthOK appends a successful auth_response:
// {"type":"auth_response","success":true,"user":…,"org":…,"expires_at":"2024-01-01T13:00:00Z"}.
// expires_at is left out for a zero expires (a token without expiry).
func AppendAuthOK(dst []byte, user, org string, expires time.Time) []byte {
	dst = append(dst, `{"type":"auth_response","success":true`...)
	dst = appendStringField(dst, "user", user)
	dst = appendStringField(dst, "org", org)
	if !expires.IsZero() {
		dst = append(dst, `,"expires_at":`...)
		dst = appendTime(dst, expires, time.RFC3339)
	}
	return append(dst, '}')
}

// AppendAuthFailed appends a refused auth_response:
// {"type":"auth_response","success":false,"error":"invalid_token","message":"token expired"}.
// The doc's JS client checks error == "invalid_token" to refresh its token.
func AppendAuthFailed(dst []byte, code, message string) []byte {
	dst = append(dst, `{"type":"auth_response","success":false`...)
	dst = appendStringField(dst, "error", code)
	dst = appendStringField(dst, "message", message)
	return append(dst, '}')
}

// AppendSubscribed acknowledges a subscribe:
// {"type":"subscribed","channel":"alerts","device_id":1,"filters":{"severity":["critical"]}}.
// device_id is there only if the subscription names devices: one id as a
// scalar, several as a list, each a number when it is a plain decimal
// (appendID). filters holds only the filters that are set, in the order
// metrics, severity, alert_type, status_types, frequency; it is {} when
// none is.
func AppendSubscribed(dst []byte, sub Subscription) []byte {
	dst = append(dst, `{"type":"subscribed"`...)
	dst = appendStringField(dst, "channel", sub.Channel)
	switch len(sub.DeviceIDs) {
	case 0:
	case 1:
		dst = append(dst, `,"device_id":`...)
		dst = appendID(dst, sub.DeviceIDs[0])
	default:
		dst = append(dst, `,"device_id":[`...)
		for i, id := range sub.DeviceIDs {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendID(dst, id)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"filters":{`...)
	first := true
	for _, f := range []struct {
		key  string
		list []string
	}{
		{"metrics", sub.Metrics},
		{"severity", sub.Severity},
		{"alert_type", sub.AlertTypes},
		{"status_types", sub.StatusTypes},
	} {
		if len(f.list) == 0 {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendKey(dst, f.key)
		dst = appendStringList(dst, f.list)
	}
	if sub.Frequency > 0 {
		if !first {
			dst = append(dst, ',')
		}
		dst = appendKey(dst, "frequency")
		dst = jsonscan.AppendString(dst, formatFrequency(sub.Frequency))
	}
	return append(dst, '}', '}')
}

// AppendUnsubscribed acknowledges an unsubscribe:
// {"type":"unsubscribed","channel":"alerts"}.
func AppendUnsubscribed(dst []byte, channel string) []byte {
	dst = append(dst, `{"type":"unsubscribed"`...)
	dst = appendStringField(dst, "channel", channel)
	return append(dst, '}')
}

// AppendPong answers a ping:
// {"type":"pong","timestamp":"2024-01-01T12:00:00Z","server_time":"2024-01-01T12:00:00.123456789Z"}.
// timestamp echoes the client's value as Decode returned it (valid JSON
// of any type) and is left out when the ping had none.
func AppendPong(dst []byte, client json.RawMessage, server time.Time) []byte {
	dst = append(dst, `{"type":"pong"`...)
	if len(client) > 0 {
		dst = append(dst, `,"timestamp":`...)
		dst = append(dst, client...)
	}
	dst = append(dst, `,"server_time":`...)
	dst = appendTime(dst, server, time.RFC3339Nano)
	return append(dst, '}')
}

// AppendError appends {"type":"error","error":code,"message":…}: a
// refused message (the Code constants) or a limit the server enforces.
// The connection stays open unless the server says otherwise.
func AppendError(dst []byte, code, message string) []byte {
	dst = append(dst, `{"type":"error"`...)
	dst = appendStringField(dst, "error", code)
	dst = appendStringField(dst, "message", message)
	return append(dst, '}')
}

// AppendTokenExpired says the connection's token has expired; the server
// closes the connection after it:
// {"type":"token_expired","error":"token_expired","expired_at":"2024-01-01T13:00:00Z","message":"token expired at 2024-01-01T13:00:00Z"}.
// "error" lets clients that only look at error codes see it too.
func AppendTokenExpired(dst []byte, at time.Time) []byte {
	dst = append(dst, `{"type":"token_expired","error":"token_expired","expired_at":`...)
	dst = appendTime(dst, at, time.RFC3339)
	dst = append(dst, `,"message":"token expired at `...)
	dst = at.UTC().AppendFormat(dst, time.RFC3339)
	return append(dst, '"', '}')
}
