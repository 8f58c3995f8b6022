// Package streams is the Sierra Wireless Octave dialect (seed 004,
// protocols.md §2 and §7.4): a session made by an HTTP POST, a WebSocket
// per session, subscriptions by stream id or path acknowledged by msgId,
// and events pushed as {"type":"message","resource":…,"value":…}.
package streams

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Message types (protocols.md §2.3).
const (
	TypeSubscribe   = "subscribe"
	TypeUnsubscribe = "unsubscribe"
)

// Bounds of one message's fields; past them a message is refused.
const (
	MaxMsgIDBytes    = 256
	MaxPathBytes     = 1024
	MaxStreamIDBytes = 64
)

// Message is one client request.
type Message struct {
	MsgID    string
	Object   string // "event"
	Type     string // subscribe or unsubscribe
	StreamID string // one of StreamID and Path
	Path     string
}

// BadMessage is a request herald cannot act on: it is answered with
// ok:false and Reason, echoing MsgID if the message had a readable one;
// the socket stays open.
type BadMessage struct {
	MsgID  string
	Reason string
}

func (e *BadMessage) Error() string { return e.Reason }

// Decode parses one client message.
func Decode(data []byte) (Message, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		if !json.Valid(data) {
			return Message{}, &BadMessage{Reason: "the message is not JSON"}
		}
		return Message{}, &BadMessage{Reason: "a request must be a JSON object"}
	}
	var m Message
	bad := func(format string, args ...any) error {
		return &BadMessage{MsgID: m.MsgID, Reason: fmt.Sprintf(format, args...)}
	}
	var err error
	var ok bool
	if m.MsgID, ok, err = field(obj, "msgId", MaxMsgIDBytes); err != nil {
		m.MsgID = ""
		return m, bad("%v", err)
	}
	if !ok || m.MsgID == "" {
		return m, bad(`the request has no "msgId": give every request one, it comes back in the acknowledgement`)
	}
	if m.Object, _, err = field(obj, "object", 64); err != nil {
		return m, bad("%v", err)
	}
	if m.Object != "event" {
		return m, bad(`"object" must be "event", not %q`, m.Object)
	}
	if m.Type, _, err = field(obj, "type", 64); err != nil {
		return m, bad("%v", err)
	}
	if m.Type != TypeSubscribe && m.Type != TypeUnsubscribe {
		return m, bad(`"type" must be "subscribe" or "unsubscribe", not %q`, m.Type)
	}
	if m.StreamID, _, err = field(obj, "streamId", MaxStreamIDBytes); err != nil {
		return m, bad("%v", err)
	}
	if m.Path, _, err = field(obj, "path", MaxPathBytes); err != nil {
		return m, bad("%v", err)
	}
	switch {
	case m.StreamID == "" && m.Path == "":
		return m, bad(`a %s needs a "streamId" or a "path"`, m.Type)
	case m.StreamID != "" && m.Path != "":
		return m, bad(`give a "streamId" or a "path", not both`)
	}
	return m, nil
}

// field reads a string member of at most limit bytes (bytes that are not
// UTF-8 read as U+FFFD); ok is false when it is absent or null.
func field(obj map[string]json.RawMessage, key string, limit int) (string, bool, error) {
	raw, present := obj[key]
	if !present || string(bytes.TrimSpace(raw)) == "null" {
		return "", false, nil
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false, fmt.Errorf("%q must be a string", key)
	}
	if len(s) > limit {
		return "", false, fmt.Errorf("%q is longer than %d bytes", key, limit)
	}
	return s, true, nil
}
