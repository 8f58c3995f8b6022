package channels

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/filter"
)

// Message types, as Message.Type holds them after Decode (aliases
// resolved).
const (
	TypeAuth        = "auth"
	TypeSubscribe   = "subscribe"
	TypeUnsubscribe = "unsubscribe"
	TypePing        = "ping"
	TypeBatch       = "batch"
)

// MaxBatch is the most messages a batch may hold (the Valtronics doc's
// limit).
const MaxBatch = 50

// MaxFilterValues is the most values one filter list may hold, and
// MaxFilterValueBytes the longest value (decoded): they bound what a
// subscription keeps. Match's cost does not grow with them (Decode
// compiles long lists into sets).
const (
	MaxFilterValues     = 100
	MaxFilterValueBytes = filter.MaxValueBytes
)

// Frequency bounds. Zero means real-time: every event as it comes.
const (
	MinFrequency = 100 * time.Millisecond
	MaxFrequency = time.Hour
)

// Message is one decoded client message.
type Message struct {
	// Type is "auth", "subscribe", "unsubscribe", "ping" or "batch". The
	// Valtronics server's own "subscribe_device" and "unsubscribe_device"
	// arrive as "subscribe" and "unsubscribe" on channel "devices".
	Type string
	// Token is the JWT of an auth message, never empty.
	Token string
	// Sub is what a subscribe or unsubscribe names. Channel is always one of
	// the four channels.
	Sub Subscription
	// LastEventID, on a subscribe, asks to resume after that event id.
	LastEventID *uint64
	// Timestamp is a ping's "timestamp", any JSON value, compacted; nil if
	// absent or null.
	Timestamp json.RawMessage
	// Batch holds a batch's messages in order, none of them a batch.
	Batch []Message
}

// Subscription is a channel and the filters a client set on it. Empty
// lists match everything; string comparisons ignore case.
type Subscription struct {
	Channel     string        // telemetry, alerts, devices or system
	DeviceIDs   []string      // "device_id": uuids or decimal numbers (1 and "1" both give "1")
	Metrics     []string      // "metrics": telemetry metric names (system: metric names)
	Severity    []string      // "severity"
	AlertTypes  []string      // "alert_type": policy alert triggers or an "alert_type" field
	StatusTypes []string      // "status_types": device statuses
	Frequency   time.Duration // "frequency": 0 for real-time, else MinFrequency..MaxFrequency

	// sets holds the lists compiled for Match when one of them is long
	// (Decode builds it); nil, Match scans the lists.
	sets *filterSets
}

// Channels a client may subscribe to. herald's "events" channel (events
// of no well-known kind) is not one of them.
var subscribable = [...]string{herald.ChannelTelemetry, herald.ChannelAlerts, herald.ChannelDevices, herald.ChannelSystem}

// Error codes of refused client messages.
const (
	CodeInvalidJSON    = "invalid_json"    // not JSON
	CodeInvalidMessage = "invalid_message" // JSON, but not an object with a string "type"; or a batch in a batch
	CodeUnknownType    = "unknown_type"    // a "type" herald does not know
	CodeInvalidField   = "invalid_field"   // a field of the wrong JSON type or value
	CodeUnknownChannel = "unknown_channel" // a "channel" that is not one of the four
	CodeBatchTooLarge  = "batch_too_large" // more than MaxBatch messages
	CodeMissingToken   = "missing_token"   // an auth message without a token
)

// Error is a refused client message. Code is one of the Code constants;
// Message says what was wrong, naming the field and, inside a batch, the
// message's index ("messages[3]: …"). The connection stays open: the
// server answers with AppendError(dst, e.Code, e.Message).
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}
