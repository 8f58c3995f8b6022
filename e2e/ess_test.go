package e2e

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestESSResume follows the vendor's resume rule (protocols.md §1.5): a
// client that reconnects within the window with its session id and last
// event id gets 200, the same id, and exactly the matching events it
// missed, on the node it left or on another one attached to the same
// engine; with eventId "" everything after the point of disconnect; after
// the window, or with another org's session id, 201 and a new session.
func TestESSResume(t *testing.T) {
	url := startNATS(t)
	cfgA, cfgB := testConfig(t.TempDir()), testConfig(t.TempDir())
	cfgA.NATS, cfgB.NATS = []string{url}, []string{url}
	a, b := startServer(t, cfgA), startServer(t, cfgB)

	c := dialESS(t, a.essURL(), keyA)
	start := c.startSession("", "")
	session, _ := start["sessionId"].(string)
	if start["status"] != float64(201) || session == "" {
		t.Fatalf("new session: %v", start)
	}
	c.subscribe(cameraFilter(guidMotionStarted, guidMotionStopped))
	first := a.publish(keyA, motion("MOTION_STARTED", camA))[0]
	if got := ids(c.waitEvents(1)); got[0] != first {
		t.Fatalf("live event %v, want %s", got, first)
	}

	// Disconnect; 50 matching events and some that do not match.
	missed := func(ts *testServer) []string {
		var want []string
		for i := range 50 {
			entity := "MOTION_STARTED"
			if i%2 == 1 {
				entity = "MOTION_STOPPED"
			}
			want = append(want, ts.publish(keyA, motion(entity, camA), motion("RECORDING_STARTED", camA), alert("a"+strconv.Itoa(i), camA))[0])
		}
		ts.publish(keyB, motion("MOTION_STARTED", camB))
		return want
	}
	c.c.Close(websocket.StatusNormalClosure, "")
	a.waitNoConnections()
	want := missed(a)

	// Same node, within the window.
	c = dialESS(t, a.essURL(), keyA)
	resumed := c.startSession(session, first)
	if resumed["status"] != float64(200) || resumed["sessionId"] != session {
		t.Fatalf("resume on the same node: %v", resumed)
	}
	if got := ids(c.waitEvents(50)); !slices.Equal(got, want) {
		t.Fatalf("resume replayed %v, want %v", got, want)
	}
	sentinel := a.publish(keyA, motion("MOTION_STARTED", camA))[0]
	if got := ids(c.waitEvents(51))[50]; got != sentinel {
		t.Fatalf("after the replay came %s, want the sentinel %s: a duplicate or an extra", got, sentinel)
	}
	last := sentinel

	// Another node, within the window.
	c.c.Close(websocket.StatusNormalClosure, "")
	a.waitNoConnections()
	want = missed(a)
	c = dialESS(t, b.essURL(), keyA)
	resumed = c.startSession(session, last)
	if resumed["status"] != float64(200) || resumed["sessionId"] != session {
		t.Fatalf("resume on another node: %v", resumed)
	}
	if got := ids(c.waitEvents(50)); !slices.Equal(got, want) {
		t.Fatalf("resume on another node replayed %v, want %v", got, want)
	}

	// eventId "": everything after the point of disconnect.
	c.c.Close(websocket.StatusNormalClosure, "")
	b.waitNoConnections()
	want = missed(b)
	c = dialESS(t, a.essURL(), keyA)
	resumed = c.startSession(session, "")
	if resumed["status"] != float64(200) || resumed["sessionId"] != session {
		t.Fatalf("resume without eventId: %v", resumed)
	}
	if got := ids(c.waitEvents(50)); !slices.Equal(got, want) {
		t.Fatalf("resume without eventId replayed %v, want %v", got, want)
	}

	// Another org's client cannot take the session: a new one, and org A's
	// session is still there for its owner.
	c.c.Close(websocket.StatusNormalClosure, "")
	a.waitNoConnections()
	other := dialESS(t, a.essURL(), keyB)
	stolen := other.startSession(session, "")
	if stolen["status"] != float64(201) || stolen["sessionId"] == session {
		t.Fatalf("org B resuming org A's session: %v", stolen)
	}
	c = dialESS(t, b.essURL(), keyA)
	if resumed = c.startSession(session, ""); resumed["status"] != float64(200) {
		t.Fatalf("org A's session after org B tried it: %v", resumed)
	}
	// An unknown session, or an event id this server never sent: 201.
	for _, try := range [][2]string{{"00000000-0000-0000-0000-000000000000", ""}, {session, "not-an-id"}} {
		x := dialESS(t, a.essURL(), keyA)
		if r := x.startSession(try[0], try[1]); r["status"] != float64(201) || r["sessionId"] == try[0] {
			t.Fatalf("startSession %v: %v", try, r)
		}
	}
}

// TestESSResumeAfterWindow: a session not resumed within
// sessions.detach_window is gone, and the client gets a new one (201)
// without subscriptions.
func TestESSResumeAfterWindow(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Sessions.DetachWindow = time.Second
	ts := startServer(t, cfg)
	c := dialESS(t, ts.essURL(), keyA)
	session := c.startSession("", "")["sessionId"].(string)
	c.subscribe(cameraFilter())
	first := ts.publish(keyA, motion("MOTION_STARTED", camA))[0]
	c.waitEvents(1)
	c.c.Close(websocket.StatusNormalClosure, "")
	ts.waitNoConnections()
	waitUntil(t, time.Now().Add(1500*time.Millisecond))
	ts.publish(keyA, motion("MOTION_STOPPED", camA))

	c = dialESS(t, ts.essURL(), keyA)
	r := c.startSession(session, first)
	if r["status"] != float64(201) || r["sessionId"] == session {
		t.Fatalf("resume after the window: %v", r)
	}
	// No subscriptions: nothing arrives until the client subscribes again.
	c.subscribe(cameraFilter())
	id := ts.publish(keyA, motion("MOTION_STARTED", camA))[0]
	if got := ids(c.waitEvents(1)); got[0] != id {
		t.Fatalf("first event of the new session %v, want %s", got, id)
	}
}

// TestESSResumeBeyondRetention: an eventId older than the log keeps
// answers 201 with a new session (the vendor's "events may be lost").
func TestESSResumeBeyondRetention(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Retention.MaxAge = time.Second
	ts := startServer(t, cfg)
	c := dialESS(t, ts.essURL(), keyA)
	session := c.startSession("", "")["sessionId"].(string)
	c.subscribe(cameraFilter())
	first := ts.publish(keyA, motion("MOTION_STARTED", camA), motion("MOTION_STOPPED", camA))[0]
	c.waitEvents(2)
	c.c.Close(websocket.StatusNormalClosure, "")
	ts.waitNoConnections()
	ts.waitExpired(first)
	c = dialESS(t, ts.essURL(), keyA)
	if r := c.startSession(session, first); r["status"] != float64(201) || r["sessionId"] == session {
		t.Fatalf("resume past retention: %v", r)
	}
}

// waitExpired waits until retention has removed event id from the log:
// retention runs on the server's schedule, so it waits until a STOMP
// resume after id is refused as "events lost".
func (ts *testServer) waitExpired(id string) {
	t := ts.t.(*testing.T)
	waitFor(t, 20*time.Second, "event "+id+" to expire", func() bool {
		s := dialRaw(t, ts.wsURL(), keyA)
		defer s.c.CloseNow()
		s.connect()
		s.send("SUBSCRIBE\nid:s\ndestination:/topic/change/" + orgA + "\nx-herald-after:" + id + "\n\n\x00")
		msg, err := s.next(patience)
		return err == nil && strings.HasPrefix(msg, "ERROR\n")
	})
}

// TestESSStateOutlivesRetentionAndRestart: a camera's state is still
// there once retention has removed its events from the log, and after a
// restart of the node on the same data.
func TestESSStateOutlivesRetentionAndRestart(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Retention.MaxAge = time.Second
	stopped := func(ts *testServer, when string) {
		t.Helper()
		c := dialESS(t, ts.essURL(), keyA)
		c.startSession("", "")
		c.subscribe(cameraFilter())
		states := c.ok(200, map[string]any{"command": "getState"})["states"].([]any)
		if len(states) != 1 || states[0].(map[string]any)["type"] != guidMotionStopped {
			t.Fatalf("%s: states %v, want camera A's motion stopped", when, states)
		}
	}
	t.Run("retention", func(t *testing.T) {
		ts := startServer(t, cfg) // stops when the subtest ends
		ids := ts.publish(keyA, motion("MOTION_STARTED", camA), motion("MOTION_STOPPED", camA), alert("later", camA))
		ts.waitExpired(ids[1]) // the alert after it is gone: the log is empty
		stopped(ts, "after retention")
	})
	t.Run("restart", func(t *testing.T) {
		stopped(startServer(t, cfg), "after a restart")
	})
}

// TestESSState: getState shows each camera's newest motion state, and a
// snapshot taken while four publishers stream is consistent with the
// pushes around it: events up to the snapshot's position come before the
// reply, the rest after it, each once, and the snapshot holds the newest
// of each camera up to that position.
func TestESSState(t *testing.T) {
	ts := startServer(t, testConfig(t.TempDir()))
	ts.publish(keyA, motion("MOTION_STARTED", camA))
	ts.publish(keyA, motion("MOTION_STOPPED", camA))
	ts.publish(keyB, motion("MOTION_STARTED", camB))

	c := dialESS(t, ts.essURL(), keyA)
	c.startSession("", "")
	c.subscribe(cameraFilter(guidMotionStarted, guidMotionStopped))
	states := c.ok(200, map[string]any{"command": "getState"})["states"].([]any)
	if len(states) != 1 {
		t.Fatalf("states %v, want the one camera of org A", states)
	}
	st := states[0].(map[string]any)
	if st["type"] != guidMotionStopped || st["source"] != "cameras/"+camA || st["stategroupid"] == nil {
		t.Fatalf("state after started then stopped: %v", st)
	}

	// Four publishers on 20 devices of org A.
	devices := make([]string, 20)
	for i := range devices {
		devices[i] = "cam-" + strconv.Itoa(i)
	}
	const perPublisher = 60
	var wg sync.WaitGroup
	var mu sync.Mutex
	deviceOf := map[string]string{}
	entityOf := map[string]string{}
	started := make(chan struct{}, 4)
	for p := range 4 {
		wg.Go(func() {
			for i := range perPublisher {
				device := devices[(p*5+i)%len(devices)]
				entity := "MOTION_STARTED"
				if i%2 == 1 {
					entity = "MOTION_STOPPED"
				}
				id := ts.publish(keyA, motion(entity, device))[0]
				mu.Lock()
				deviceOf[id], entityOf[id] = device, entity
				mu.Unlock()
				if i == 5 {
					started <- struct{}{}
				}
			}
		})
	}
	for range 4 {
		<-started
	}
	before := len(c.pushed)
	reply := c.ok(200, map[string]any{"command": "getState"})
	pushedBefore := append([]map[string]any(nil), c.pushed[before:]...)
	wg.Wait()
	c.waitEvents(before + 4*perPublisher)
	all := c.pushed[before:]
	if len(all) != 4*perPublisher {
		t.Fatalf("%d events, want %d", len(all), 4*perPublisher)
	}
	var at uint64
	seen := map[string]bool{}
	for i, ev := range all {
		id := ev["id"].(string)
		if seen[id] {
			t.Fatalf("event %s pushed twice", id)
		}
		seen[id] = true
		n, _ := strconv.ParseUint(id, 10, 64)
		if i > 0 {
			prev, _ := strconv.ParseUint(all[i-1]["id"].(string), 10, 64)
			if n <= prev {
				t.Fatalf("events out of order: %d after %d", n, prev)
			}
		}
		if i < len(pushedBefore) {
			at = n
		} else if n <= at {
			t.Fatalf("event %d after the snapshot, which was taken at %d", n, at)
		}
	}
	// The newest event of each device up to the snapshot's position.
	want := map[string]string{"cameras/" + camA: guidMotionStopped}
	newest := map[string]uint64{}
	for id, device := range deviceOf {
		n, _ := strconv.ParseUint(id, 10, 64)
		if n <= at && n > newest[device] {
			newest[device] = n
			typ := guidMotionStarted
			if entityOf[id] == "MOTION_STOPPED" {
				typ = guidMotionStopped
			}
			want["cameras/"+device] = typ
		}
	}
	got := map[string]string{}
	for _, s := range reply["states"].([]any) {
		st := s.(map[string]any)
		got[st["source"].(string)] = st["type"].(string)
		if id, _ := strconv.ParseUint(st["id"].(string), 10, 64); id > at && at > 0 {
			t.Fatalf("state %v is newer than the snapshot's position %d", st, at)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("snapshot at %d: %v, want %v", at, got, want)
	}
	for src, typ := range want {
		if got[src] != typ {
			t.Fatalf("snapshot at %d: %s is %s, want %s (%d events before the reply)", at, src, got[src], typ, len(pushedBefore))
		}
	}
}

// TestESSStartAfter is herald's extension for clients that keep their own
// cursor (herald's SDK after a restart): startSession with an empty
// sessionId and an eventId makes a new session whose first subscription
// receives every matching event after eventId, then live ones. An eventId
// herald never sent, or one past retention, is refused with a reply.
func TestESSStartAfter(t *testing.T) {
	cfg := testConfig(t.TempDir())
	ts := startServer(t, cfg)
	first := ts.publish(keyA, motion("MOTION_STARTED", camA))[0]
	want := ts.publish(keyA, motion("MOTION_STOPPED", camA), alert("a1", camA), motion("MOTION_STARTED", camA))
	ts.publish(keyB, motion("MOTION_STARTED", camB))

	c := dialESS(t, ts.essURL(), keyA)
	r := c.startSession("", first)
	if r["status"] != float64(201) || r["sessionId"] == "" {
		t.Fatalf("startSession after %s: %v", first, r)
	}
	if r := c.command(map[string]any{"command": "getState", "commandId": 7}); r["status"] != float64(400) {
		t.Fatalf("getState before the first subscription: %v", r)
	}
	c.subscribe(map[string]any{"modifier": "include"})
	live := ts.publish(keyA, motion("MOTION_STOPPED", camA))[0]
	if got := ids(c.waitEvents(4)); !slices.Equal(got, append(want, live)) {
		t.Fatalf("events %v, want %v then %s", got, want, live)
	}

	for _, bad := range []string{"x1", "99999999"} {
		x := dialESS(t, ts.essURL(), keyA)
		if r := x.startSession("", bad); r["status"] != float64(400) || r["error"] == nil {
			t.Fatalf("startSession after %q: %v", bad, r)
		}
	}
}
