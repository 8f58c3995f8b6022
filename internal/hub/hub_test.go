package hub

import (
	"sync"
	"testing"

	"github.com/herald-gw/herald"
)

type recorder struct {
	mu  sync.Mutex
	ids []uint64
}

func (r *recorder) Deliver(e *herald.Event) {
	r.mu.Lock()
	r.ids = append(r.ids, e.ID)
	r.mu.Unlock()
}

func TestDispatchByOrg(t *testing.T) {
	h := New(0)
	a, b := &recorder{}, &recorder{}
	h.Register("A", a, func(uint64) {})
	h.Register("B", b, func(uint64) {})
	h.Dispatch(&herald.Event{ID: 1, Org: "A"})
	h.Dispatch(&herald.Event{ID: 2, Org: "B"})
	h.Dispatch(&herald.Event{ID: 3, Org: "A"})
	if len(a.ids) != 2 || a.ids[0] != 1 || a.ids[1] != 3 || len(b.ids) != 1 || b.ids[0] != 2 {
		t.Fatalf("a=%v b=%v", a.ids, b.ids)
	}
	h.Unregister("A", a)
	h.Dispatch(&herald.Event{ID: 4, Org: "A"})
	if len(a.ids) != 2 || h.Subscribers() != 1 || h.Head() != 4 {
		t.Fatalf("after unregister: a=%v subs=%d head=%d", a.ids, h.Subscribers(), h.Head())
	}
}

// TestRegisterHeadIsExact checks the contract sessions rely on: a
// subscriber registering while events flow gets exactly the events after
// the head it was given.
func TestRegisterHeadIsExact(t *testing.T) {
	h := New(0)
	const n = 20000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := uint64(1); i <= n; i++ {
			h.Dispatch(&herald.Event{ID: i, Org: "A"})
		}
	}()
	var subs []*recorder
	var heads []uint64
	for range 50 {
		r := &recorder{}
		h.Register("A", r, func(head uint64) { heads = append(heads, head) })
		subs = append(subs, r)
	}
	<-done
	for i, r := range subs {
		want := heads[i] + 1
		for _, id := range r.ids {
			if id != want {
				t.Fatalf("subscriber %d (head %d): got %d, want %d", i, heads[i], id, want)
			}
			want++
		}
		if want != n+1 {
			t.Fatalf("subscriber %d ended at %d", i, want-1)
		}
	}
}
