package session

// smallRegistry is how many subscriptions a registry holds before it
// indexes them by id: below it a scan is as fast as a map and costs no
// memory, which matters for the many connections that hold one or two.
const smallRegistry = 8

// registry holds a session's subscriptions: add, remove and lookup by id
// in O(1), iteration in a dense slice, memory given back on removal.
// It is guarded by the session's mu.
type registry struct {
	list []*Sub          // every subscription; Sub.slot is its index
	byID map[string]*Sub // made above smallRegistry entries, dropped below half of it
}

func (r *registry) len() int { return len(r.list) }

func (r *registry) lookup(id string) *Sub {
	if r.byID != nil {
		return r.byID[id]
	}
	for _, s := range r.list {
		if s.ID == id {
			return s
		}
	}
	return nil
}

func (r *registry) add(s *Sub) {
	s.slot = len(r.list)
	r.list = append(r.list, s)
	switch {
	case r.byID != nil:
		r.byID[s.ID] = s
	case len(r.list) > smallRegistry:
		r.byID = make(map[string]*Sub, 2*len(r.list))
		for _, x := range r.list {
			r.byID[x.ID] = x
		}
	}
}

func (r *registry) remove(s *Sub) {
	last := len(r.list) - 1
	moved := r.list[last]
	r.list[s.slot], moved.slot = moved, s.slot
	r.list[last] = nil
	r.list = r.list[:last]
	s.slot = -1
	if r.byID != nil {
		delete(r.byID, s.ID)
		if len(r.list) < smallRegistry/2 {
			r.byID = nil // a map never shrinks: make a fresh one if it grows again
		}
	}
	if cap(r.list) > 2*smallRegistry && len(r.list) < cap(r.list)/4 {
		r.list = append([]*Sub(nil), r.list...)
	}
	if len(r.list) == 0 {
		r.list = nil
	}
}
