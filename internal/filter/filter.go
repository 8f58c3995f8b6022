// Package filter holds the compiled event filters shared by every dialect
// and the CLI. A Filter is built once per subscription, by New from a
// Spec, and evaluated per event without allocating, in time linear in the
// event's fields whatever the lengths of the filter's lists: the hub
// matches every subscription of a node on one goroutine, so a filter that
// cost more with its length would let one tenant delay every other.
package filter

import (
	"strconv"
	"strings"

	"github.com/herald-gw/herald"
)

// Bounds of a Spec, checked by New. They keep a subscription's memory
// proportional to what a client may send in one subscribe; matching cost
// does not depend on them.
const (
	MaxValues     = 256 // values per list
	MaxValueBytes = 256 // bytes per value
)

// Names of a Spec's lists, as New's errors give them in Field; a dialect
// maps them to its own header or key names.
const (
	FieldEntities   = "entities"
	FieldTypes      = "types"
	FieldDevices    = "devices"
	FieldTriggers   = "triggers"
	FieldChannels   = "channels"
	FieldSeverities = "severities"
)

// Spec is what a subscription asks for. Each non-empty list must contain
// a value of the event (compared case-insensitively); empty lists match
// everything. Triggers matches when any of the event's triggers is listed.
type Spec struct {
	Entities   []string
	Types      []string
	Devices    []string
	Triggers   []string
	Channels   []string
	Severities []string
}

// Filter is a compiled Spec. The zero Filter matches every event.
//
// It is one pointer, nil when the Spec is empty: most subscriptions have
// no filter, and every idle connection holds one.
type Filter struct {
	sets *sets
}

type sets struct {
	entities, types, devices, triggers, channels, severities Set
}

// New compiles spec. A list of more than MaxValues values, or with a
// value of more than MaxValueBytes bytes, is refused with a *herald.Error
// of code herald.ETOOLARGE whose Field is the list's Field name and whose
// Message, written to follow the dialect's own name for the list, states
// the limit: "holds 1635 values; at most 256 are allowed", or
// `has a value of 300 bytes ("MOTION_HUMAN_MOT"…); values are at most 256 bytes`.
func New(spec Spec) (Filter, error) {
	f := &sets{}
	empty := true
	for _, l := range [...]struct {
		field  string
		values []string
		set    *Set
	}{
		{FieldEntities, spec.Entities, &f.entities},
		{FieldTypes, spec.Types, &f.types},
		{FieldDevices, spec.Devices, &f.devices},
		{FieldTriggers, spec.Triggers, &f.triggers},
		{FieldChannels, spec.Channels, &f.channels},
		{FieldSeverities, spec.Severities, &f.severities},
	} {
		if err := checkList(l.field, l.values); err != nil {
			return Filter{}, err
		}
		*l.set = NewSet(l.values)
		empty = empty && len(l.values) == 0
	}
	if empty {
		return Filter{}, nil
	}
	return Filter{sets: f}, nil
}

func checkList(field string, values []string) error {
	if len(values) > MaxValues {
		return &herald.Error{Code: herald.ETOOLARGE, Field: field, Index: -1,
			Message: "holds " + strconv.Itoa(len(values)) + " values; at most " + strconv.Itoa(MaxValues) + " are allowed"}
	}
	for _, v := range values {
		if len(v) > MaxValueBytes {
			return &herald.Error{Code: herald.ETOOLARGE, Field: field, Index: -1,
				Message: "has a value of " + strconv.Itoa(len(v)) + " bytes (" + herald.QuoteStart(v) + "); values are at most " +
					strconv.Itoa(MaxValueBytes) + " bytes"}
		}
	}
	return nil
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

// Match reports whether e passes f. It costs O(size of e's fields), not
// O(list lengths), and allocates nothing.
func (filter *Filter) Match(e *herald.Event) bool {
	f := filter.sets
	if f == nil {
		return true
	}
	if !holds(&f.entities, e.Entity) || !holds(&f.types, e.Type) ||
		!holds(&f.devices, e.DeviceUUID) || !holds(&f.channels, e.Channel) ||
		!holds(&f.severities, e.Severity) {
		return false
	}
	if f.triggers.Len() == 0 {
		return true
	}
	for _, t := range e.Triggers {
		if f.triggers.Contains(t) {
			return true
		}
	}
	return false
}

// holds is Contains with an empty set holding everything.
func holds(s *Set, v string) bool {
	return s.Len() == 0 || s.Contains(v)
}

// OneOf reports whether v is in list, ignoring case; an empty list holds
// everything. It allocates nothing but costs O(len(list)): per event,
// use a Set.
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
