package inmem_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/engine/enginetest"
	"github.com/herald-gw/herald/internal/inmem"
)

// TestMain fails the run if Follow or WatchDevices leave a goroutine
// behind once their context is done.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestContract runs the suite every engine passes.
func TestContract(t *testing.T) {
	enginetest.Run(t, func(t *testing.T, limits enginetest.Limits) enginetest.Engine {
		return inmem.New(inmem.Config{Retain: limits.Retain})
	})
}

// clock is a test's clock: it moves only when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)} }

func record(org, key string, n int) herald.Record {
	return herald.Record{
		Org: org, Channel: herald.ChannelAlerts, Entity: "POLICY_ALERT", DeviceUUID: "cam-1", EntityUUID: "p-1", Key: key,
		Data: fmt.Appendf(nil, `{"org":%q,"channel":"alerts","entity":"POLICY_ALERT","deviceUuid":"cam-1","entityUuid":"p-1","n":%d}`, org, n),
	}
}

func mustAppend(t *testing.T, e *inmem.Engine, records ...herald.Record) []uint64 {
	t.Helper()
	ids, err := e.Append(t.Context(), records)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return ids
}

// TestRetainExactly checks the knob tests rely on to reach ECONFLICT: the
// log keeps exactly the newest Retain events, so a cursor is refused as
// soon as the event after it is gone, and not before.
func TestRetainExactly(t *testing.T) {
	e := inmem.New(inmem.Config{Retain: 3})
	for i := range 5 {
		mustAppend(t, e, record("org-a", "", i))
	}
	// Ids 3, 4 and 5 remain.
	none := func(*herald.Event) error { return nil }
	if _, err := e.Replay(t.Context(), "org-a", 1, 0, none); herald.ErrorCode(err) != herald.ECONFLICT {
		t.Fatalf("Replay after 1 (event 2 removed): %v, want ECONFLICT", err)
	}
	last, err := e.Replay(t.Context(), "org-a", 2, 0, none)
	if err != nil || last != 5 {
		t.Fatalf("Replay after 2 = %d, %v; want 5, nil", last, err)
	}
	if last, err := e.Replay(t.Context(), "org-a", 0, 2, none); err != nil || last != 0 {
		t.Fatalf("Replay until a removed event = %d, %v; want 0, nil", last, err)
	}
	if id, _ := e.LastID(t.Context()); id != 5 {
		t.Fatalf("LastID = %d, want 5", id)
	}
}

// TestDedupeWindow moves the clock past the window: a key is then stored
// again, under a new id.
func TestDedupeWindow(t *testing.T) {
	c := newClock()
	e := inmem.New(inmem.Config{DedupeWindow: time.Minute, Now: c.Now})
	first := mustAppend(t, e, record("org-a", "k", 1))[0]
	c.advance(59 * time.Second)
	if id := mustAppend(t, e, record("org-a", "k", 2))[0]; id != first {
		t.Fatalf("key within the window got id %d, want %d", id, first)
	}
	c.advance(time.Second)
	if id := mustAppend(t, e, record("org-a", "k", 3))[0]; id == first {
		t.Fatalf("key after the window was deduplicated against %d", first)
	}
}

// TestSessionClock expires a detached session by moving the clock, and
// checks that a save forgets expired sessions of other ids too.
func TestSessionClock(t *testing.T) {
	c := newClock()
	e := inmem.New(inmem.Config{Now: c.Now})
	ctx := t.Context()
	for _, id := range []string{"a", "b"} {
		if err := e.SaveSession(ctx, herald.DetachedSession{ID: id, Org: "org-a", Expires: c.Now().Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	c.advance(time.Minute - time.Nanosecond)
	if _, err := e.TakeSession(ctx, "a"); err != nil {
		t.Fatalf("TakeSession just before Expires: %v", err)
	}
	c.advance(time.Nanosecond)
	if _, err := e.TakeSession(ctx, "b"); herald.ErrorCode(err) != herald.ENOTFOUND {
		t.Fatalf("TakeSession at Expires: %v, want ENOTFOUND", err)
	}
}

// TestFollowRetention lets retention overtake a follower that is not
// reading: it goes on with the oldest retained event, in order.
func TestFollowRetention(t *testing.T) {
	e := inmem.New(inmem.Config{Retain: 2})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	mustAppend(t, e, record("org-a", "", 1))

	got := make(chan uint64, 10)
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- e.Follow(ctx, 0, func(event *herald.Event) {
			got <- event.ID
			if event.ID == 1 {
				<-release
			}
		})
	}()
	// The follower is held in fn with event 1 while 2..5 are appended;
	// retention keeps 4 and 5.
	if id := <-got; id != 1 {
		t.Fatalf("first event %d, want 1", id)
	}
	for i := 2; i <= 5; i++ {
		mustAppend(t, e, record("org-a", "", i))
	}
	close(release)
	for _, want := range []uint64{4, 5} {
		if id := <-got; id != want {
			t.Fatalf("event %d after retention, want %d", id, want)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow returned %v, want context.Canceled", err)
	}
}

// TestCallbacksMayCallBack checks that Replay, Follow and WatchDevices
// call their functions without a lock held: a session core that appends
// or looks up from inside them must not deadlock.
func TestCallbacksMayCallBack(t *testing.T) {
	e := inmem.New(inmem.Config{})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	mustAppend(t, e, record("org-a", "", 1))
	if _, err := e.Replay(ctx, "org-a", 0, 0, func(*herald.Event) error {
		_, err := e.Append(ctx, []herald.Record{record("org-a", "", 2)})
		return err
	}); err != nil {
		t.Fatalf("Replay: %v", err)
	}

	followed := make(chan uint64, 10)
	followCtx, stopFollow := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() {
		stopped <- e.Follow(followCtx, 1, func(event *herald.Event) {
			if _, err := e.LastID(ctx); err == nil {
				followed <- event.ID
			}
		})
	}()
	if id := <-followed; id != 2 {
		t.Fatalf("Follow passed %d, want 2", id)
	}
	stopFollow()
	<-stopped

	if err := e.PutDevice(ctx, herald.Device{Org: "org-a", UUID: "cam-1"}); err != nil {
		t.Fatal(err)
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan error, 1)
	go func() {
		watched <- e.WatchDevices(watchCtx, func(d herald.Device) {
			if _, err := e.Device(ctx, d.Org, d.UUID); err != nil {
				t.Errorf("Device from WatchDevices: %v", err)
			}
		}, stopWatch)
	}()
	if err := <-watched; !errors.Is(err, context.Canceled) {
		t.Fatalf("WatchDevices returned %v, want context.Canceled", err)
	}
}
