package hub

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/herald-gw/herald"
)

type recorder struct {
	mu  sync.Mutex
	ids []uint64
}

func (r *recorder) Deliver(events []*herald.Event) {
	r.mu.Lock()
	for _, e := range events {
		r.ids = append(r.ids, e.ID)
	}
	r.mu.Unlock()
}

func TestDispatchByOrg(t *testing.T) {
	h := New(0)
	a, b := &recorder{}, &recorder{}
	h.Register("A", a, func(uint64) {})
	h.Register("B", b, func(uint64) {})
	h.DispatchBatch([]*herald.Event{&herald.Event{ID: 1, Org: "A"}})
	h.DispatchBatch([]*herald.Event{&herald.Event{ID: 2, Org: "B"}})
	h.DispatchBatch([]*herald.Event{&herald.Event{ID: 3, Org: "A"}})
	if len(a.ids) != 2 || a.ids[0] != 1 || a.ids[1] != 3 || len(b.ids) != 1 || b.ids[0] != 2 {
		t.Fatalf("a=%v b=%v", a.ids, b.ids)
	}
	h.Unregister("A", a)
	h.DispatchBatch([]*herald.Event{&herald.Event{ID: 4, Org: "A"}})
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
			h.DispatchBatch([]*herald.Event{&herald.Event{ID: i, Org: "A"}})
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

// TestRunBatchesInOrder: events fed to Run reach every subscriber of their
// org in log order, whatever batches they were grouped in, and mixed-org
// batches are split per org.
func TestRunBatchesInOrder(t *testing.T) {
	h := New(0)
	a, b := &recorder{}, &recorder{}
	h.Register("A", a, func(uint64) {})
	h.Register("B", b, func(uint64) {})
	in := make(chan *herald.Event, 1000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.Run(context.Background(), in)
	}()
	var wantA, wantB []uint64
	for i := uint64(1); i <= 5000; i++ {
		org := "A"
		if i%7 == 0 || i%11 == 0 {
			org = "B"
		}
		if org == "A" {
			wantA = append(wantA, i)
		} else {
			wantB = append(wantB, i)
		}
		in <- &herald.Event{ID: i, Org: org}
	}
	close(in)
	<-done
	if !slices.Equal(a.ids, wantA) || !slices.Equal(b.ids, wantB) || h.Head() != 5000 {
		t.Fatalf("A got %d events, want %d; B got %d, want %d; head %d", len(a.ids), len(wantA), len(b.ids), len(wantB), h.Head())
	}
}

// calls counts Deliver calls and the events they carried.
type calls struct {
	mu      sync.Mutex
	batches []int
}

func (c *calls) Deliver(events []*herald.Event) {
	c.mu.Lock()
	c.batches = append(c.batches, len(events))
	c.mu.Unlock()
}

func (c *calls) delivered() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.batches)
}

// runHub starts h.Run on in with lingerSubscribers subscribers of org A
// and returns the first of them.
func runHub(t *testing.T, h *Hub, in chan *herald.Event) *calls {
	t.Helper()
	first := &calls{}
	h.Register("A", first, func(uint64) {})
	for range lingerSubscribers - 1 {
		h.Register("A", &calls{}, func(uint64) {})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.Run(ctx, in)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return first
}

// TestRunLingers: with many subscribers, events that come one by one, each
// while the hub waits for the next, are fanned out as one batch.
func TestRunLingers(t *testing.T) {
	h := New(0)
	h.quiet, h.most = time.Minute, time.Minute // the test ends the wait by closing in
	in := make(chan *herald.Event)             // unbuffered: the hub takes each one on its own
	first := runHub(t, h, in)
	for i := uint64(1); i <= 10; i++ {
		in <- &herald.Event{ID: i, Org: "A"}
	}
	close(in)
	waitFor(t, func() bool { return len(first.delivered()) > 0 })
	if got := first.delivered(); !slices.Equal(got, []int{10}) {
		t.Fatalf("batches %v, want one of 10", got)
	}
}

// TestRunLingersBriefly: a lone event is not held once its linger is over.
func TestRunLingersBriefly(t *testing.T) {
	h := New(0)
	in := make(chan *herald.Event)
	first := runHub(t, h, in)
	in <- &herald.Event{ID: 1, Org: "A"}
	waitFor(t, func() bool { return len(first.delivered()) == 1 && h.Head() == 1 })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
