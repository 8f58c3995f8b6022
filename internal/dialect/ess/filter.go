package ess

import (
	"bytes"
	"strings"
)

// set is a compiled filter list: nil matches anything ("*"), an empty
// one nothing. Entries are lower case.
type set map[string]struct{}

func (s set) has(v []byte) bool {
	if s == nil {
		return true
	}
	_, ok := s[string(v)] // no allocation: the compiler converts in place
	return ok
}

func compileList(list []string, eventTypes bool) set {
	s := make(set, len(list))
	for _, v := range list {
		if v == "*" {
			return nil
		}
		if eventTypes && !isGUID(v) {
			// An entity name: as given, and as herald's upper-case names.
			s[TypeGUID(v)] = struct{}{}
			s[TypeGUID(strings.ToUpper(v))] = struct{}{}
			continue
		}
		s[strings.ToLower(v)] = struct{}{}
	}
	return s
}

// filter is one compiled filter of a subscription.
type filter struct {
	exclude                       bool
	resourceTypes, sources, types set
}

func (f *filter) match(k eventKey) bool {
	return f.resourceTypes.has(k.resourceType) && f.sources.has(k.source) && f.types.has(k.typeID)
}

// subscription is one addSubscription: its filters as sent (kept with a
// detached session) and compiled.
type subscription struct {
	ID      string       `json:"id"`
	Specs   []FilterSpec `json:"filters"`
	filters []filter
}

func newSubscription(id string, specs []FilterSpec) *subscription {
	s := &subscription{ID: id, Specs: specs, filters: make([]filter, len(specs))}
	for i, spec := range specs {
		s.filters[i] = filter{
			exclude:       spec.Exclude,
			resourceTypes: compileList(spec.ResourceTypes, false),
			sources:       compileList(spec.SourceIDs, false),
			types:         compileList(spec.EventTypes, true),
		}
	}
	return s
}

// match is the rule of protocols.md §1.2: at least one include filter
// matches and no exclude filter does. A subscription without filters
// matches nothing.
func (s *subscription) match(k eventKey) bool {
	included := false
	for i := range s.filters {
		f := &s.filters[i]
		if f.exclude {
			if f.match(k) {
				return false
			}
		} else if !included && f.match(k) {
			included = true
		}
	}
	return included
}

// subscriptions are a session's, immutable once made: a change makes a
// new value, so that the delivery path reads them without a lock.
type subscriptions struct {
	list    []*subscription
	filters int // over every subscription
}

// match reports whether any subscription wants the event: a session is
// the union of its subscriptions.
func (ss *subscriptions) match(k eventKey) bool {
	for _, s := range ss.list {
		if s.match(k) {
			return true
		}
	}
	return false
}

func (ss *subscriptions) with(s *subscription) *subscriptions {
	list := append(append(make([]*subscription, 0, len(ss.list)+1), ss.list...), s)
	return &subscriptions{list: list, filters: ss.filters + len(s.filters)}
}

// without returns ss without the subscription id, and whether it had it.
func (ss *subscriptions) without(id string) (*subscriptions, bool) {
	for i, s := range ss.list {
		if strings.EqualFold(s.ID, id) {
			list := append(append(make([]*subscription, 0, len(ss.list)-1), ss.list[:i]...), ss.list[i+1:]...)
			return &subscriptions{list: list, filters: ss.filters - len(s.filters)}, true
		}
	}
	return ss, false
}

// eventKey is what filters look at, lower case: the event's resource
// type, source id and event type GUID.
type eventKey struct {
	resourceType, source, typeID []byte
}

// parseKey splits a key rendered by appendKey.
func parseKey(b []byte) eventKey {
	rt, rest, _ := bytes.Cut(b, []byte{0})
	src, typ, _ := bytes.Cut(rest, []byte{0})
	return eventKey{resourceType: rt, source: src, typeID: typ}
}

// isGUID reports whether s is a GUID in 8-4-4-4-12 hex form, any case.
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
