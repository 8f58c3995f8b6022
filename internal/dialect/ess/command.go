package ess

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Command names (protocols.md §1.2), as Decode returns them.
const (
	CommandAuthenticate       = "authenticate"
	CommandStartSession       = "startSession"
	CommandAddSubscription    = "addSubscription"
	CommandRemoveSubscription = "removeSubscription"
	CommandGetState           = "getState"
)

// aliases are the other names accepted for a command.
var aliases = map[string]string{
	"deleteSubscription": CommandRemoveSubscription,
	"unsubscribe":        CommandRemoveSubscription,
	"subscribe":          CommandAddSubscription,
}

// Bounds of one command. Past them a command is malformed.
const (
	MaxFiltersPerCommand = 100  // filters of one addSubscription
	MaxListEntries       = 5000 // entries of one filter's list
	MaxEntryBytes        = 256  // one entry (a GUID, a resource type, an entity name)
)

// Command is one client command. Fields that do not apply to it are
// ignored when decoded: the vendor's Go client sends sessionId, eventId
// and filters:null on every command.
type Command struct {
	Name      string // canonical name (aliases are mapped); "" with Unknown set
	Unknown   string // a command name herald does not know, answered with an error
	CommandID int64  // echoed in the reply; the JavaScript sample starts at 0

	Token          string // authenticate
	SessionID      string // startSession
	EventID        string // startSession
	SubscriptionID string // removeSubscription
	Filters        []FilterSpec
	// HasFilters is false when addSubscription came without filters (or
	// filters:null), which is a subscription that matches nothing.
	HasFilters bool
}

// FilterSpec is one filter as the client sent it. A list that is absent
// or null is ["*"]; an empty list matches nothing.
type FilterSpec struct {
	Exclude       bool
	ResourceTypes []string
	SourceIDs     []string
	EventTypes    []string
}

// MalformedError is a command herald cannot read: the connection is
// closed with 1008 and Reason.
type MalformedError struct{ Reason string }

func (e *MalformedError) Error() string { return e.Reason }

func malformed(format string, args ...any) error {
	return &MalformedError{Reason: fmt.Sprintf(format, args...)}
}

// Decode parses one client message. It returns a *MalformedError for a
// message that is not a command (not a JSON object, no command name, a
// commandId that is not an integer, fields of the wrong type, over the
// bounds); a well-formed command with a name herald does not know comes
// back with Unknown set, to be answered with an error.
func Decode(data []byte) (Command, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		if !json.Valid(data) {
			return Command{}, malformed("the message is not JSON")
		}
		return Command{}, malformed("a command must be a JSON object")
	}
	var c Command
	name, ok, err := stringField(obj, "command")
	switch {
	case err != nil:
		return Command{}, err
	case !ok || name == "":
		return Command{}, malformed(`the message has no "command"`)
	}
	idRaw, ok := obj["commandId"]
	if !ok || isNull(idRaw) {
		return Command{}, malformed(`command %q has no "commandId"`, clip(name))
	}
	if c.CommandID, err = strconv.ParseInt(string(bytes.TrimSpace(idRaw)), 10, 64); err != nil {
		return Command{}, malformed(`"commandId" must be an integer`)
	}
	if alias, ok := aliases[name]; ok {
		name = alias
	}
	switch name {
	case CommandAuthenticate:
		if c.Token, _, err = stringField(obj, "token"); err != nil {
			return Command{}, err
		}
	case CommandStartSession:
		if c.SessionID, _, err = stringField(obj, "sessionId"); err != nil {
			return Command{}, err
		}
		if c.EventID, err = idField(obj, "eventId"); err != nil {
			return Command{}, err
		}
	case CommandAddSubscription:
		if c.Filters, c.HasFilters, err = filtersField(obj); err != nil {
			return Command{}, err
		}
	case CommandRemoveSubscription:
		if c.SubscriptionID, _, err = stringField(obj, "subscriptionId"); err != nil {
			return Command{}, err
		}
	case CommandGetState:
	default:
		c.Unknown = clip(name)
		return c, nil
	}
	c.Name = name
	return c, nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// stringField reads a string member; null counts as absent.
func stringField(obj map[string]json.RawMessage, key string) (string, bool, error) {
	raw, ok := obj[key]
	if !ok || isNull(raw) {
		return "", false, nil
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false, malformed("%q must be a string", key)
	}
	return s, true, nil
}

// idField reads an id that some clients send as a number.
func idField(obj map[string]json.RawMessage, key string) (string, error) {
	raw, ok := obj[key]
	if !ok || isNull(raw) {
		return "", nil
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] >= '0' && raw[0] <= '9' {
		if _, err := strconv.ParseUint(string(raw), 10, 64); err == nil {
			return string(raw), nil
		}
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", malformed("%q must be a string", key)
	}
	return s, nil
}

func filtersField(obj map[string]json.RawMessage) ([]FilterSpec, bool, error) {
	raw, ok := obj["filters"]
	if !ok || isNull(raw) {
		return nil, false, nil
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil {
		return nil, false, malformed(`"filters" must be an array of filter objects`)
	}
	if len(list) > MaxFiltersPerCommand {
		return nil, false, malformed("a subscription may have at most %d filters, not %d", MaxFiltersPerCommand, len(list))
	}
	filters := make([]FilterSpec, 0, len(list))
	for i, fraw := range list {
		var f map[string]json.RawMessage
		if json.Unmarshal(fraw, &f) != nil || f == nil {
			return nil, false, malformed("filters[%d] must be an object", i)
		}
		var spec FilterSpec
		modifier, _, err := stringField(f, "modifier")
		if err != nil {
			return nil, false, malformed("filters[%d].modifier must be a string", i)
		}
		switch strings.ToLower(modifier) {
		case "include", "":
		case "exclude":
			spec.Exclude = true
		default:
			return nil, false, malformed(`filters[%d].modifier must be "include" or "exclude", not %q`, i, clip(modifier))
		}
		for _, l := range []struct {
			key string
			to  *[]string
		}{{"resourceTypes", &spec.ResourceTypes}, {"sourceIds", &spec.SourceIDs}, {"eventTypes", &spec.EventTypes}} {
			if *l.to, err = listField(f, l.key, i); err != nil {
				return nil, false, err
			}
		}
		filters = append(filters, spec)
	}
	return filters, true, nil
}

func listField(f map[string]json.RawMessage, key string, i int) ([]string, error) {
	raw, ok := f[key]
	if !ok || isNull(raw) {
		return []string{"*"}, nil
	}
	var list []string
	if json.Unmarshal(raw, &list) != nil {
		return nil, malformed("filters[%d].%s must be an array of strings", i, key)
	}
	if len(list) > MaxListEntries {
		return nil, malformed("filters[%d].%s has %d entries; at most %d", i, key, len(list), MaxListEntries)
	}
	for _, s := range list {
		if len(s) > MaxEntryBytes {
			return nil, malformed("filters[%d].%s has an entry of %d bytes; at most %d", i, key, len(s), MaxEntryBytes)
		}
	}
	if list == nil {
		list = []string{}
	}
	return list, nil
}

// clip shortens a client's string for an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
