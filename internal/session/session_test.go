package session

import (
	"context"
	"encoding/json"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/inmem"
	"github.com/herald-gw/herald/internal/wsconn"
)

func TestLiveDelivery(t *testing.T) {
	n := newNode(t, inmem.Config{}, Node{})
	c := n.connect(t, "org-a", wsconn.Options{})
	c.subscribe("s", nil)
	n.append(t, "org-b", "b1") // another org's: never seen
	n.append(t, "org-a", "a1", "a2")
	c.expect("s:2", "s:3")
}

// TestSubscribeFromNowSkipsThePast: "from now" starts after what was
// acknowledged, even if the hub has not dispatched it yet.
func TestSubscribeFromNowSkipsThePast(t *testing.T) {
	n := newNode(t, inmem.Config{}, Node{})
	n.append(t, "org-a", "a1", "a2")
	c := n.connect(t, "org-a", wsconn.Options{})
	c.subscribe("s", nil)
	n.append(t, "org-a", "a3")
	c.expect("s:3")
}

func TestCatchUpFromCursorThenLive(t *testing.T) {
	n := newNode(t, inmem.Config{}, Node{})
	n.append(t, "org-a", entities("a", 5)...)
	n.waitHead(t, 5)
	c := n.connect(t, "org-a", wsconn.Options{})
	c.subscribe("s", ptr(2))
	c.expect(ids("s", 3, 5)...)
	waitFor(t, "rejoin", c.live)
	n.append(t, "org-a", "a6")
	c.expect("s:6")
}

// TestRejoinWhileOrgIsQuiet is defect 1 of issue 8: a session resumed at
// its org's last event, while another org's events are the node's head,
// replayed nothing forever instead of rejoining the live path (a core
// spinning while its client sat idle).
func TestRejoinWhileOrgIsQuiet(t *testing.T) {
	n := newNode(t, inmem.Config{}, Node{})
	n.append(t, "org-a", "a1", "a2", "a3")
	n.append(t, "org-b", "b1") // the node's head is another org's event
	n.waitHead(t, 4)
	c := n.connect(t, "org-a", wsconn.Options{})
	c.subscribe("s", ptr(3))
	waitFor(t, "rejoin while org-a is quiet", c.live)
	n.append(t, "org-b", "b2")
	n.append(t, "org-a", "a4")
	c.expect("s:6")
}

// TestRejoinManyOrgsInterleaved: resumed sessions of many orgs, while
// every org keeps publishing, each get exactly their org's events after
// their cursor, then live ones, with no gap and no duplicate at the
// hand-over.
func TestRejoinManyOrgsInterleaved(t *testing.T) {
	n := newNode(t, inmem.Config{}, Node{})
	const orgs, rounds = 8, 30
	org := func(i int) string { return "org-" + strconv.Itoa(i) }
	byOrg := make(map[string][]uint64)
	publish := func() {
		for i := range orgs {
			id := n.append(t, org(i), "e")[0]
			byOrg[org(i)] = append(byOrg[org(i)], id)
		}
	}
	for range rounds {
		publish()
	}
	n.waitHead(t, orgs*rounds)
	clients := make([]*client, orgs)
	for i := range orgs {
		clients[i] = n.connect(t, org(i), wsconn.Options{})
		clients[i].subscribe("s", &byOrg[org(i)][i]) // each from a different point
	}
	for range rounds { // published while they catch up
		publish()
	}
	for i, c := range clients {
		var want []string
		for _, id := range byOrg[org(i)][i+1:] {
			want = append(want, "s:"+strconv.FormatUint(id, 10))
		}
		c.expect(want...)
		waitFor(t, "rejoin of "+org(i), c.live)
	}
	publish()
	for i, c := range clients {
		c.expect("s:" + strconv.FormatUint(byOrg[org(i)][2*rounds], 10))
	}
}

// TestResumeRestartsGeneration: a subscription resuming from before the
// session's position gets its history; the subscriptions that already had
// it get nothing twice.
func TestResumeRestartsGeneration(t *testing.T) {
	n := newNode(t, inmem.Config{}, Node{})
	c := n.connect(t, "org-a", wsconn.Options{})
	c.subscribe("live", nil)
	n.append(t, "org-a", entities("a", 4)...)
	c.expect(ids("live", 1, 4)...)
	c.subscribe("old", ptr(1))
	c.expect(ids("old", 2, 4)...)
	waitFor(t, "rejoin", c.live)
	n.append(t, "org-a", "a5")
	c.expect("live:5", "old:5")
}

// TestSlowConsumerCatchesUp: a client that stops reading leaves the live
// path when its queue is full and catches up from the log once it reads
// again: every event once, in order.
func TestSlowConsumerCatchesUp(t *testing.T) {
	n := newNode(t, inmem.Config{}, Node{})
	c := n.connect(t, "org-a", wsconn.Options{QueueMessages: 4})
	c.subscribe("s", nil)
	c.pause()
	const total = 200
	n.append(t, "org-a", entities("a", total)...)
	n.waitHead(t, total)
	waitFor(t, "the session to leave the live path", func() bool { return !c.live() })
	c.resume()
	c.expect(ids("s", 1, total)...)
	waitFor(t, "rejoin", c.live)
	n.append(t, "org-a", "last")
	c.expect("s:" + strconv.Itoa(total+1))
	if n.node.Gauges.CatchUps.Load() == 0 {
		t.Fatal("no catch-up counted")
	}
}

// TestCursorPastRetentionIsLost: a resume point whose events retention
// removed is reported, never skipped silently.
func TestCursorPastRetentionIsLost(t *testing.T) {
	n := newNode(t, inmem.Config{Retain: 3}, Node{})
	n.append(t, "org-a", entities("a", 10)...)
	n.waitHead(t, 10)
	c := n.connect(t, "org-a", wsconn.Options{})
	c.subscribe("s", ptr(2))
	select {
	case err := <-c.handler.lost:
		if herald.ErrorCode(err) != herald.ECONFLICT {
			t.Fatalf("lost with %v, want ECONFLICT", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the session was not reported lost")
	}
}

// TestCursorBeyondEndRefused is defect 7 of issue 8: a resume cursor
// beyond the log's end was accepted, and nothing was ever delivered after
// it.
func TestCursorBeyondEndRefused(t *testing.T) {
	n := newNode(t, inmem.Config{}, Node{})
	n.append(t, "org-a", "a1", "a2", "a3")
	n.waitHead(t, 3)
	c := n.connect(t, "org-a", wsconn.Options{})
	err := c.session.Subscribe(&Sub{ID: "s"}, ptr(1003), nil)
	if herald.ErrorCode(err) != herald.EINVALID {
		t.Fatalf("Subscribe after 1003 with the log at 3: %v, want EINVALID", err)
	}
	c.subscribe("s", ptr(3)) // the end itself is a valid cursor
	n.append(t, "org-a", "a4")
	c.expect("s:4")
}

func TestSubscriptionLimits(t *testing.T) {
	n := newNode(t, inmem.Config{}, Node{MaxSubscriptions: 3})
	c := n.connect(t, "org-a", wsconn.Options{})
	for i := range 3 {
		c.subscribe("s"+strconv.Itoa(i), nil)
	}
	if err := c.session.Subscribe(&Sub{ID: "s3"}, nil, nil); herald.ErrorCode(err) != herald.ETOOLARGE {
		t.Fatalf("a 4th subscription: %v, want ETOOLARGE", err)
	}
	if err := c.session.Subscribe(&Sub{ID: "s0"}, nil, nil); herald.ErrorCode(err) != herald.ECONFLICT {
		t.Fatalf("a duplicate id: %v, want ECONFLICT", err)
	}
	if n.node.Gauges.Subscriptions.Load() != 3 {
		t.Fatalf("gauge %d, want 3", n.node.Gauges.Subscriptions.Load())
	}
}

// TestSubscribeUnsubscribeChurn is defect 2 of issue 8: subscribe and
// unsubscribe with fresh ids was quadratic (20,000 pairs did not finish
// in 10 s) and kept every entry. Each operation is O(1) and the memory
// is given back: the count of operations here would take minutes if
// each cost the number of earlier ones.
func TestSubscribeUnsubscribeChurn(t *testing.T) {
	n := newNode(t, inmem.Config{}, Node{})
	c := n.connect(t, "org-a", wsconn.Options{})
	c.subscribe("kept", nil)
	for i := range 200_000 {
		id := "sub-" + strconv.Itoa(i)
		c.subscribe(id, nil)
		if c.session.Unsubscribe(id) == nil {
			t.Fatalf("unsubscribe %s", id)
		}
	}
	c.session.mu.Lock()
	held, capacity, indexed := c.session.subs.len(), cap(c.session.subs.list), c.session.subs.byID != nil
	c.session.mu.Unlock()
	if held != 1 || capacity > 2*smallRegistry || indexed {
		t.Fatalf("after churn: %d subscriptions, list capacity %d, id index kept %v", held, capacity, indexed)
	}
	n.append(t, "org-a", "a1")
	c.expect("kept:1")
}

func TestRegistryIndexesManyAndShrinks(t *testing.T) {
	var r registry
	subs := make([]*Sub, 50)
	for i := range subs {
		subs[i] = &Sub{ID: strconv.Itoa(i)}
		r.add(subs[i])
	}
	if r.byID == nil {
		t.Fatal("no index above smallRegistry")
	}
	for i := 0; i < 50; i += 2 {
		r.remove(subs[i])
	}
	for i, s := range subs {
		if got := r.lookup(s.ID); (got != nil) != (i%2 == 1) {
			t.Fatalf("lookup %s = %v", s.ID, got)
		}
	}
	for i := 1; i < 50; i += 2 {
		r.remove(subs[i])
	}
	if r.len() != 0 || r.list != nil || r.byID != nil {
		t.Fatalf("empty registry keeps %d, %v, %v", r.len(), r.list, r.byID)
	}
}

// TestConflation: the first event of a key goes out at once, the ones
// within its period are merged into one message at the period's end, and
// a key quiet for a period is forgotten (defect 8: a conflating
// subscription never forgot a device it saw once).
func TestConflation(t *testing.T) {
	n := newNode(t, inmem.Config{}, Node{})
	c := n.connect(t, "org-a", wsconn.Options{})
	conflation := &Conflation{
		Period: 50 * time.Millisecond,
		Key:    func(e *herald.Event) string { return e.DeviceUUID },
		Merge: func(held any, e *herald.Event) (any, bool) {
			ids, _ := held.([]uint64)
			return append(ids, e.ID), false
		},
		Render: func(held any) []byte {
			b, _ := json.Marshal(held)
			return b
		},
	}
	sub := &Sub{ID: "c", Conflate: conflation}
	if err := c.session.Subscribe(sub, nil, nil); err != nil {
		t.Fatal(err)
	}
	var records []herald.Record
	for range 3 {
		records = append(records, herald.Record{Org: "org-a", Channel: "telemetry", Entity: "TELEMETRY", DeviceUUID: "d1",
			Data: []byte(`{"org":"org-a","channel":"telemetry","entity":"TELEMETRY","deviceUuid":"d1"}`)})
	}
	if _, err := n.log.Append(context.Background(), records); err != nil {
		t.Fatal(err)
	}
	c.expect("[1]", "[2,3]")
	waitFor(t, "the quiet key to be forgotten", func() bool { return sub.conflator.held() == 0 })
}

// TestConflationBoundsKeys: past MaxKeys, an event of a new key is
// delivered as usual instead of held.
func TestConflationBoundsKeys(t *testing.T) {
	n := newNode(t, inmem.Config{}, Node{})
	c := n.connect(t, "org-a", wsconn.Options{})
	sub := &Sub{ID: "c", Conflate: &Conflation{
		Period: time.Hour, MaxKeys: 1,
		Key:    func(e *herald.Event) string { return e.DeviceUUID },
		Merge:  func(held any, e *herald.Event) (any, bool) { return e.ID, false },
		Render: func(held any) []byte { return []byte("held:" + strconv.FormatUint(held.(uint64), 10)) },
	}}
	if err := c.session.Subscribe(sub, nil, nil); err != nil {
		t.Fatal(err)
	}
	n.append(t, "org-a", "x", "y") // devices dev-x and dev-y
	c.expect("held:1", "c:2")
}

// TestDetachAndAttach: a kept session is saved with its cursor when its
// connection ends; another connection takes it over and gets exactly the
// events it missed, then live ones.
func TestDetachAndAttach(t *testing.T) {
	n := newNode(t, inmem.Config{}, Node{})
	first := n.connect(t, "org-a", wsconn.Options{})
	first.subscribe("s", nil)
	first.session.Keep("sess-1", "test", func() json.RawMessage { return json.RawMessage(`{"subs":["s"]}`) })
	n.append(t, "org-a", "a1", "a2")
	first.expect("s:1", "s:2")
	first.session.Conn().Close()
	waitFor(t, "the session to be saved", func() bool { return n.node.Gauges.Detached.Load() == 1 })
	n.append(t, "org-a", "a3", "a4") // missed while detached

	second := n.connect(t, "org-a", wsconn.Options{})
	if _, err := second.session.Attach(context.Background(), "sess-1", "other-dialect"); herald.ErrorCode(err) != herald.ENOTFOUND {
		t.Fatalf("attach by another dialect: %v, want ENOTFOUND", err)
	}
	other := n.connect(t, "org-b", wsconn.Options{})
	if _, err := other.session.Attach(context.Background(), "sess-1", "test"); herald.ErrorCode(err) != herald.ENOTFOUND {
		t.Fatalf("attach from another org: %v, want ENOTFOUND", err)
	}
	d, err := second.session.Attach(context.Background(), "sess-1", "test")
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	if d.After != 2 || string(d.State) != `{"subs":["s"]}` {
		t.Fatalf("attached %+v", d)
	}
	if _, err := n.connect(t, "org-a", wsconn.Options{}).session.Attach(context.Background(), "sess-1", "test"); herald.ErrorCode(err) != herald.ENOTFOUND {
		t.Fatalf("a second attach: %v, want ENOTFOUND", err)
	}
	second.subscribe("s", &d.After)
	second.expect("s:3", "s:4")
	n.append(t, "org-a", "a5")
	second.expect("s:5")
}

// heldConn is a connection whose writes, once the peer has read them, do
// not return until the test lets them: a writer descheduled between its
// write and its bookkeeping.
type heldConn struct {
	net.Conn
	release chan struct{}
}

func (c *heldConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	<-c.release
	return n, err
}

// TestDetachCountsTheWriteInFlight: when the peer drops right after
// reading an event, before the writer has counted it written, the saved
// cursor still includes it, so the resume does not send it twice.
func TestDetachCountsTheWriteInFlight(t *testing.T) {
	n := newNode(t, inmem.Config{}, Node{})
	held := &heldConn{release: make(chan struct{})}
	c := n.connectVia(t, "org-a", wsconn.Options{}, func(nc net.Conn) net.Conn { held.Conn = nc; return held })
	c.subscribe("s", nil)
	c.session.Keep("sess-3", "test", nil)
	n.append(t, "org-a", "a1")
	c.expect("s:1") // read by the peer; the writer is held in Write
	c.peer.Close()  // the drop
	waitFor(t, "the reader to see the drop", c.session.Conn().Closing)
	close(held.release)
	waitFor(t, "the session to be saved", func() bool { return n.node.Gauges.Detached.Load() == 1 })
	d, err := n.log.TakeSession(context.Background(), "sess-3")
	if err != nil {
		t.Fatal(err)
	}
	if d.After != 1 {
		t.Fatalf("cursor %d, want 1: event 1 was delivered", d.After)
	}
}

// TestDetachCursorSkipsNothingUnwritten: when the connection drops with
// events queued but not written, the saved cursor is the last event
// written, so the resume sends the unwritten ones.
func TestDetachCursorSkipsNothingUnwritten(t *testing.T) {
	n := newNode(t, inmem.Config{}, Node{})
	c := n.connect(t, "org-a", wsconn.Options{})
	c.subscribe("s", nil)
	c.session.Keep("sess-2", "test", nil)
	n.append(t, "org-a", "a1")
	c.expect("s:1")
	c.pause()
	n.append(t, "org-a", "a2", "a3")
	n.waitHead(t, 3)
	waitFor(t, "events queued", func() bool { _, unwritten := c.session.Conn().Written(); return unwritten })
	c.session.Conn().Close()
	waitFor(t, "the session to be saved", func() bool { return n.node.Gauges.Detached.Load() == 1 })
	d, err := n.log.TakeSession(context.Background(), "sess-2")
	if err != nil {
		t.Fatal(err)
	}
	if d.After != 1 {
		t.Fatalf("cursor %d, want 1 (2 and 3 were never written)", d.After)
	}
}

// TestChangeIsAtomicWithDelivery: while Change's fn runs, no event is
// matched or queued; one published meanwhile comes after what fn queued,
// and is matched with what fn changed. (fn gives the delivery a second to
// match while it runs, which it must not take: without the exclusion the
// event is matched with the old state and never arrives.)
func TestChangeIsAtomicWithDelivery(t *testing.T) {
	n := newNode(t, inmem.Config{}, Node{})
	c := n.connect(t, "org-a", wsconn.Options{})
	var on atomic.Bool
	matched := make(chan struct{}, 1)
	match := func(*herald.Event) bool {
		select {
		case matched <- struct{}{}:
		default:
		}
		return on.Load()
	}
	if err := c.session.Subscribe(&Sub{ID: "s", Match: match}, nil, nil); err != nil {
		t.Fatal(err)
	}
	c.session.Change(func() {
		n.append(t, "org-a", "a1")
		select {
		case <-matched:
		case <-time.After(time.Second):
		}
		c.session.Conn().Send([]byte("reply"))
		on.Store(true)
	})
	c.expect("reply", "s:1")
}

// flakyLog is an EventLog whose first failures Replay calls fail as an
// engine that lost its quorum for a moment does.
type flakyLog struct {
	herald.EventLog
	mu       sync.Mutex
	failures int
}

func (l *flakyLog) Replay(ctx context.Context, org string, after, until uint64, fn func(*herald.Event) error) (uint64, error) {
	l.mu.Lock()
	fail := l.failures > 0
	if fail {
		l.failures--
	}
	l.mu.Unlock()
	if fail {
		return after, herald.Errorf(herald.EUNAVAILABLE, "engine: replay: context deadline exceeded")
	}
	return l.EventLog.Replay(ctx, org, after, until, fn)
}

// TestCatchUpRetriesTransientFailures: a replay that fails because the
// engine is unavailable for a while is tried again; the session is not
// ended as lost (a cluster that lost a node made every catching-up
// client of the channels dialect resume from the newest event, skipping
// what it had not received).
func TestCatchUpRetriesTransientFailures(t *testing.T) {
	n := newNode(t, inmem.Config{}, Node{})
	flaky := &flakyLog{EventLog: n.node.Log, failures: 3}
	n.node.Log = flaky
	n.append(t, "org-a", entities("a", 5)...)
	n.waitHead(t, 5)
	c := n.connect(t, "org-a", wsconn.Options{})
	c.subscribe("s", ptr(0))
	for i := 1; i <= 5; i++ {
		c.expect("s:" + strconv.Itoa(i))
	}
	n.append(t, "org-a", "live")
	c.expect("s:6")
	select {
	case err := <-c.handler.lost:
		t.Fatalf("the session was ended as lost: %v", err)
	default:
	}
	flaky.mu.Lock()
	defer flaky.mu.Unlock()
	if flaky.failures != 0 {
		t.Fatalf("%d failures left: the replay was not tried again", flaky.failures)
	}
}

// brokenLog is an EventLog that replays the events up to upTo and then
// fails, every time, as an engine that lost its quorum for longer than
// the catch-up's retries does.
type brokenLog struct {
	herald.EventLog
	upTo uint64
}

func (l *brokenLog) Replay(ctx context.Context, org string, after, until uint64, fn func(*herald.Event) error) (uint64, error) {
	last, err := l.EventLog.Replay(ctx, org, after, min(until, l.upTo), fn)
	if err != nil {
		return last, err
	}
	return last, herald.Errorf(herald.EUNAVAILABLE, "engine: replay: nats: no responders available for request")
}

// TestCatchUpThatFailsKeepsTheCursor: a catch-up that gives up on a log
// it cannot read ends the session with Lost (not ECONFLICT), and the
// cursor the session is then kept with is the last event the client got:
// a resume of the kept session skips nothing and repeats nothing. (So
// the dialects keep such a session instead of forgetting it.)
func TestCatchUpThatFailsKeepsTheCursor(t *testing.T) {
	n := newNode(t, inmem.Config{}, Node{catchUpAttempts: 1})
	n.node.Log = &brokenLog{EventLog: n.node.Log, upTo: 3}
	n.append(t, "org-a", entities("a", 5)...)
	n.waitHead(t, 5)
	c := n.connect(t, "org-a", wsconn.Options{})
	c.session.Keep("sess-4", "test", nil)
	c.subscribe("s", ptr(0))
	c.expect(ids("s", 1, 3)...)
	select {
	case err := <-c.handler.lost:
		if code := herald.ErrorCode(err); code != herald.EUNAVAILABLE {
			t.Fatalf("Lost with %s (%v), want EUNAVAILABLE", code, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the catch-up did not give up")
	}
	c.session.Conn().Close()
	waitFor(t, "the session to be saved", func() bool { return n.node.Gauges.Detached.Load() == 1 })
	d, err := n.log.TakeSession(context.Background(), "sess-4")
	if err != nil {
		t.Fatal(err)
	}
	if d.After != 3 {
		t.Fatalf("cursor %d, want 3: events 1 to 3 were delivered, 4 and 5 never read", d.After)
	}
}
