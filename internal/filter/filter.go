// Package filter holds the compiled event filters shared by every dialect
// and the CLI. A Filter is built once per subscription and evaluated per
// event without allocating.
package filter

import (
	"strings"

	"github.com/herald-gw/herald"
)

// Filter selects events. Each non-empty list must contain a value of the
// event (compared case-insensitively); empty lists match everything.
// Triggers matches when any of the event's triggers is listed.
type Filter struct {
	Entities []string
	Types    []string
	Devices  []string
	Triggers []string
	Channels []string
}

// ParseList splits a comma-separated header or flag value into trimmed,
// non-empty items.
func ParseList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// Empty reports whether f matches every event.
func (f *Filter) Empty() bool {
	return len(f.Entities) == 0 && len(f.Types) == 0 && len(f.Devices) == 0 &&
		len(f.Triggers) == 0 && len(f.Channels) == 0
}

// Match reports whether e passes f.
func (f *Filter) Match(e *herald.Event) bool {
	if !OneOf(f.Entities, e.Entity) || !OneOf(f.Types, e.Type) ||
		!OneOf(f.Devices, e.DeviceUUID) || !OneOf(f.Channels, e.Channel) {
		return false
	}
	if len(f.Triggers) == 0 {
		return true
	}
	for _, t := range e.Triggers {
		if OneOf(f.Triggers, t) {
			return true
		}
	}
	return false
}

// OneOf reports whether v is in list, ignoring case; an empty list holds
// everything. It allocates nothing.
func OneOf(list []string, v string) bool {
	if len(list) == 0 {
		return true
	}
	for _, item := range list {
		if strings.EqualFold(item, v) {
			return true
		}
	}
	return false
}
