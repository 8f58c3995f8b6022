// Package enginetest is the contract every engine mode passes: the same
// suite runs against the embedded server and an external cluster, so
// that "the same code, embedded or external" is checked, not assumed.
package enginetest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/engine"
)

// Storage returns the configuration of a fresh, empty place for an
// engine's data: a new DataDir, or the URLs of a NATS server that no other
// call shares. Opening the returned configuration again must reach the
// same data. The suite sets the limits it tests (MaxBatch, MaxBytes…) on
// the copy it opens.
type Storage func(t *testing.T) engine.Config

// Run runs the contract suite, each test on storage of its own.
func Run(t *testing.T, storage Storage) {
	tests := []struct {
		name string
		run  func(*testing.T, Storage)
	}{
		{"Append", testAppend},
		{"AppendAtomic", testAppendAtomic},
		{"AppendRetry", testAppendRetry},
		{"Dedupe", testDedupe},
		{"Replay", testReplay},
		{"Follow", testFollow},
		{"Latest", testLatest},
		{"Retention", testRetention},
		{"Orgs", testOrgs},
		{"APIKeys", testAPIKeys},
		{"Users", testUsers},
		{"Devices", testDevices},
		{"Settings", testSettings},
		{"Persistence", testPersistence},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) { test.run(t, storage) })
	}
}

// open opens an engine on cfg and closes it when the test ends.
func open(t *testing.T, cfg engine.Config) *engine.Engine {
	t.Helper()
	e, err := engine.Open(testContext(t), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

// testContext bounds every engine call of a test, so that a hang fails
// the test instead of stalling the run.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fields are the parts of a record the engine reads; n tags the record so
// a test can recognize it after a round trip.
type fields struct {
	org, channel, entity, device, entityUUID, key string
	n                                             int
}

func record(f fields) herald.Record {
	if f.channel == "" {
		f.channel = herald.ChannelAlerts
	}
	if f.entity == "" {
		f.entity = "POLICY_ALERT"
	}
	data, err := json.Marshal(map[string]any{
		"org":         f.org,
		"channel":     f.channel,
		"entity":      f.entity,
		"deviceUuid":  f.device,
		"entityUuid":  f.entityUUID,
		"type":        "CREATE",
		"timestampMs": 1_700_000_000_000 + f.n,
		"n":           f.n,
	})
	if err != nil {
		panic(err)
	}
	return herald.Record{
		Org: f.org, Channel: f.channel, Entity: f.entity,
		DeviceUUID: f.device, EntityUUID: f.entityUUID, Key: f.key, Data: data,
	}
}

// simple returns a record of org tagged n.
func simple(org string, n int) herald.Record {
	return record(fields{org: org, device: "device-1", entityUUID: "entity-1", n: n})
}

// numberOf returns the tag of a stored event.
func numberOf(t *testing.T, event *herald.Event) int {
	t.Helper()
	var body struct {
		ID string `json:"id"`
		N  int    `json:"n"`
	}
	if err := json.Unmarshal(event.Body, &body); err != nil {
		t.Fatalf("event %d: body is not JSON: %v", event.ID, err)
	}
	if body.ID != event.IDString() {
		t.Fatalf("event %d: body id is %q", event.ID, body.ID)
	}
	return body.N
}

func mustAppend(t *testing.T, e *engine.Engine, records ...herald.Record) []uint64 {
	t.Helper()
	ids, err := e.Append(testContext(t), records)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if len(ids) != len(records) {
		t.Fatalf("Append returned %d ids for %d records", len(ids), len(records))
	}
	return ids
}

func lastID(t *testing.T, e *engine.Engine) uint64 {
	t.Helper()
	id, err := e.LastID(testContext(t))
	if err != nil {
		t.Fatalf("LastID: %v", err)
	}
	return id
}

// replay returns the events Replay passes to fn, checking its result.
func replay(t *testing.T, e *engine.Engine, org string, after, until uint64) []*herald.Event {
	t.Helper()
	var events []*herald.Event
	last, err := e.Replay(testContext(t), org, after, until, func(event *herald.Event) error {
		events = append(events, event)
		return nil
	})
	if err != nil {
		t.Fatalf("Replay(%s, %d, %d): %v", org, after, until, err)
	}
	want := after
	if len(events) > 0 {
		want = events[len(events)-1].ID
	}
	if last != want {
		t.Fatalf("Replay(%s, %d, %d) returned %d, want %d", org, after, until, last, want)
	}
	return events
}

func ids(events []*herald.Event) []uint64 {
	out := make([]uint64, len(events))
	for i, event := range events {
		out[i] = event.ID
	}
	return out
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := herald.ErrorCode(err); got != code {
		t.Fatalf("error %v: code %q, want %q", err, got, code)
	}
}

func equalIDs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// dense reports whether ids are first, first+1, …
func dense(ids []uint64, first uint64) bool {
	for i, id := range ids {
		if id != first+uint64(i) {
			return false
		}
	}
	return true
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after 20s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func describe(events []*herald.Event) string {
	s := ""
	for _, event := range events {
		s += fmt.Sprintf(" %d/%s", event.ID, event.Org)
	}
	return s
}
