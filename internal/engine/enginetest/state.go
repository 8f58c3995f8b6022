package enginetest

import (
	"maps"
	"testing"

	"github.com/herald-gw/herald"
)

func testLatest(t *testing.T, storage Storage) {
	e := storage(t, Limits{})
	ctx := testContext(t)

	alert := fields{org: "org-a", channel: herald.ChannelAlerts, entity: "POLICY_ALERT", device: "cam-1", entityUUID: "policy-1"}
	telemetry := fields{org: "org-a", channel: herald.ChannelTelemetry, entity: "TELEMETRY", device: "cam-2", entityUUID: "cam-2"}
	odd := fields{org: "org-a", channel: herald.ChannelDevices, entity: "DEVICE_STATUS", device: "door 7.b*", entityUUID: ""}
	other := fields{org: "org-b", channel: herald.ChannelAlerts, entity: "POLICY_ALERT", device: "cam-1", entityUUID: "policy-1"}
	at := func(f fields, n int) herald.Record { f.n = n; return record(f) }

	mustAppend(t, e, at(alert, 1))
	id2 := mustAppend(t, e, at(telemetry, 2))[0]
	id3 := mustAppend(t, e, at(alert, 3), at(odd, 4))
	id5 := mustAppend(t, e, at(other, 5))[0]

	cases := []struct {
		name string
		org  string
		q    herald.StateQuery
		id   uint64
	}{
		{"newest of the org", "org-a", herald.StateQuery{}, id3[1]},
		{"exact", "org-a", herald.StateQuery{Channel: herald.ChannelAlerts, Entity: "POLICY_ALERT", DeviceUUID: "cam-1", EntityUUID: "policy-1"}, id3[0]},
		{"by device", "org-a", herald.StateQuery{DeviceUUID: "cam-2"}, id2},
		{"by channel", "org-a", herald.StateQuery{Channel: herald.ChannelTelemetry}, id2},
		{"by entity uuid", "org-a", herald.StateQuery{EntityUUID: "policy-1"}, id3[0]},
		{"odd characters", "org-a", herald.StateQuery{DeviceUUID: "door 7.b*"}, id3[1]},
		{"other org", "org-b", herald.StateQuery{DeviceUUID: "cam-1"}, id5},
	}
	for _, c := range cases {
		event, err := e.Latest(ctx, c.org, c.q)
		if err != nil {
			t.Errorf("%s: Latest: %v", c.name, err)
			continue
		}
		if event.ID != c.id || event.Org != c.org {
			t.Errorf("%s: Latest gave %d of %s, want %d", c.name, event.ID, event.Org, c.id)
		}
	}

	for _, q := range []herald.StateQuery{
		{Channel: herald.ChannelSystem},
		{DeviceUUID: "cam-3"},
		{Channel: herald.ChannelTelemetry, DeviceUUID: "cam-1"},
	} {
		_, err := e.Latest(ctx, "org-a", q)
		wantCode(t, err, herald.ENOTFOUND)
	}
	_, err := e.Latest(ctx, "org-c", herald.StateQuery{})
	wantCode(t, err, herald.ENOTFOUND)
}

// testRetention fills a tiny log until its first events are gone: STATE
// must still answer for them, and a cursor from before the log's start
// must be refused, not silently skipped.
func testRetention(t *testing.T, storage Storage) {
	e := storage(t, Limits{Retain: 100})
	ctx := testContext(t)

	kept := mustAppend(t, e, record(fields{org: "org-a", device: "kept", entityUUID: "x", n: 1}))[0]
	mustAppend(t, e, record(fields{org: "org-a", device: "kept", entityUUID: "y", n: 2}))
	waitForState(t, e)

	var filler []herald.Record
	for i := range 400 {
		filler = append(filler, record(fields{org: "org-a", device: "filler", entityUUID: "x", n: 100 + i}))
		if len(filler) == 50 {
			mustAppend(t, e, filler...)
			filler = filler[:0]
		}
	}
	// Retention may run a moment after the appends (the NATS engine
	// applies it behind the state view): wait for it.
	var events []*herald.Event
	eventually(t, "retention to remove the first events", func() (bool, error) {
		events = replay(t, e, "org-a", 0, 0)
		return len(events) > 0 && events[0].ID > kept+2, nil
	})
	first := events[0].ID
	waitForState(t, e)

	event, err := e.Latest(ctx, "org-a", herald.StateQuery{DeviceUUID: "kept", EntityUUID: "x"})
	if err != nil {
		t.Fatalf("Latest of an event gone from the log: %v", err)
	}
	if event.ID != kept || numberOf(t, event) != 1 || event.DeviceUUID != "kept" {
		t.Fatalf("Latest from STATE gave %d (n %d), want %d", event.ID, numberOf(t, event), kept)
	}
	event, err = e.Latest(ctx, "org-a", herald.StateQuery{DeviceUUID: "kept"})
	if err != nil || event.ID != kept+1 {
		t.Fatalf("Latest(device kept) = %v, %v; want %d", event, err, kept+1)
	}
	event, err = e.Latest(ctx, "org-a", herald.StateQuery{DeviceUUID: "filler"})
	if err != nil || numberOf(t, event) != 499 {
		t.Fatalf("Latest(device filler) = %v, %v; want the newest filler", event, err)
	}

	_, err = e.Replay(ctx, "org-a", kept, 0, func(*herald.Event) error {
		t.Fatal("Replay called fn for a cursor older than the log")
		return nil
	})
	wantCode(t, err, herald.ECONFLICT)
	if got := replay(t, e, "org-a", first-1, 0); len(got) != len(events) {
		t.Fatalf("Replay from just before the log's start gave %d events, want %d", len(got), len(events))
	}
}

// waitForState waits until the state view holds every event of the log.
func waitForState(t *testing.T, e Engine) {
	t.Helper()
	lagger, ok := e.(stateLagger)
	if !ok {
		return
	}
	eventually(t, "STATE catches up", func() (bool, error) {
		lag, err := lagger.StateLag(testContext(t))
		return lag == 0, err
	})
}

// testStates: States gives the newest event of each subject of the org
// whose entity is asked for, and copied covers what the view holds.
func testStates(t *testing.T, storage Storage) {
	e := storage(t, Limits{})
	ctx := testContext(t)
	motion := func(org, entity, device string, n int) herald.Record {
		return record(fields{org: org, channel: herald.ChannelEvents, entity: entity, device: device, n: n})
	}
	mustAppend(t, e,
		motion("org-a", "MOTION_STARTED", "cam-1", 1),
		motion("org-a", "MOTION_STOPPED", "cam-1", 2),
		motion("org-a", "MOTION_STARTED", "cam-2", 3),
	)
	mustAppend(t, e, motion("org-b", "MOTION_STARTED", "cam-1", 4))
	mustAppend(t, e, motion("org-a", "POLICY_ALERT", "cam-1", 5))
	last := mustAppend(t, e, motion("org-a", "MOTION_STARTED", "cam-1", 6))[0] // replaces n 1
	waitForState(t, e)

	states := func(org string, entities ...string) (map[int]bool, uint64) {
		t.Helper()
		seen := map[int]bool{}
		copied, err := e.States(ctx, org, entities, func(event *herald.Event) error {
			if event.Org != org {
				t.Errorf("States of %s gave an event of %s", org, event.Org)
			}
			seen[numberOf(t, event)] = true
			return nil
		})
		if err != nil {
			t.Fatalf("States: %v", err)
		}
		return seen, copied
	}
	got, copied := states("org-a", "MOTION_STARTED", "MOTION_STOPPED")
	if want := map[int]bool{2: true, 3: true, 6: true}; !maps.Equal(got, want) {
		t.Fatalf("org-a's motion states %v, want %v", got, want)
	}
	if copied < last || copied > lastID(t, e) {
		t.Fatalf("copied %d, want from %d (the view holds every event) to the log's last id %d", copied, last, lastID(t, e))
	}
	if got, _ := states("org-b", "MOTION_STARTED", "MOTION_STOPPED"); !maps.Equal(got, map[int]bool{4: true}) {
		t.Fatalf("org-b's states %v", got)
	}
	if got, _ := states("org-a", "RECORDING_STARTED"); len(got) != 0 {
		t.Fatalf("states of an entity never posted: %v", got)
	}
	if got, _ := states("org-c", "MOTION_STARTED"); len(got) != 0 {
		t.Fatalf("states of an org without events: %v", got)
	}

	stop := herald.Errorf(herald.EINVALID, "enough")
	calls := 0
	_, err := e.States(ctx, "org-a", []string{"MOTION_STARTED", "MOTION_STOPPED"}, func(*herald.Event) error {
		calls++
		return stop
	})
	if err != stop || calls != 1 {
		t.Fatalf("an error from fn: States returned %v after %d calls, want it at once", err, calls)
	}
}
