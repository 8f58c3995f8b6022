// Package enginetest is the contract every engine passes: the same suite
// runs against the in-memory engine, the embedded NATS server and an
// external NATS cluster, so that "the same code, embedded or external"
// and "the test double behaves like the real thing" are checked, not
// assumed. Tests of what only the NATS engine offers (atomic batches, its
// size limits, data that outlives a restart) skip implementations that do
// not offer it, found by optional interfaces.
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

// Engine is what the suite tests: every interface the root package asks
// of an engine.
type Engine interface {
	herald.EventLog
	herald.StateView
	herald.Registry
	herald.SessionStore
}

// Storage returns, for one test, a fresh and empty Engine on storage that
// no other call shares, with the given limits, and closes it when the
// test ends.
type Storage func(t *testing.T, limits Limits) Engine

// Limits are the limits a test needs. The zero value asks for none (the
// implementation's defaults).
type Limits struct {
	// Retain, when positive, makes the log keep only about this many of
	// its newest events, so that retention can be reached with a few
	// hundred appends. An implementation whose log is bounded in bytes
	// converts it with the size of a typical test event.
	Retain int
	// MaxBatch, when positive, is the most records one Append takes;
	// only tests that skip implementations without that limit set it.
	MaxBatch int
}

// Reopener is an Engine whose data outlives it: the persistence test
// runs only on such implementations.
type Reopener interface {
	// Reopen closes the engine and opens a new one on the same storage,
	// closed when the test ends.
	Reopen(t *testing.T) Engine
}

// atomicAppender is an engine that can store a batch whole or not at all
// (engine.Engine.AppendAtomic).
type atomicAppender interface {
	AppendAtomic(ctx context.Context, records []herald.Record) ([]uint64, error)
}

// stateLagger is an engine whose state view trails its log
// (engine.Engine.StateLag). An engine without it updates both at once.
type stateLagger interface {
	StateLag(ctx context.Context) (uint64, error)
}

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
		{"States", testStates},
		{"Retention", testRetention},
		{"Orgs", testOrgs},
		{"APIKeys", testAPIKeys},
		{"Users", testUsers},
		{"Devices", testDevices},
		{"LongNames", testLongNames},
		{"WatchDevices", testWatchDevices},
		{"Deletes", testDeletes},
		{"WatchRevocations", testWatchRevocations},
		{"Settings", testSettings},
		{"Sessions", testSessions},
		{"SessionExpiry", testSessionExpiry},
		{"SessionRace", testSessionRace},
		{"Persistence", testPersistence},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) { test.run(t, storage) })
	}
}

// eventBytes is about what one test event (see record) costs a log that
// is bounded in bytes: the JSON, the subject and the store's framing.
const eventBytes = 300

// NATS returns the Storage of the NATS engine: config gives a fresh,
// empty place for its data (a new DataDir, or the URLs of a NATS server
// that no other call shares), which opening again must reach.
func NATS(config func(t *testing.T) engine.Config) Storage {
	return func(t *testing.T, limits Limits) Engine {
		cfg := config(t)
		if limits.MaxBatch > 0 {
			cfg.MaxBatch = limits.MaxBatch
		}
		if limits.Retain > 0 {
			cfg.MaxBytes = int64(limits.Retain) * eventBytes
		}
		return openNATS(t, cfg)
	}
}

// natsEngine is the NATS engine with what the suite asks of it beyond the
// interfaces: reopening its storage.
type natsEngine struct {
	*engine.Engine
	cfg engine.Config
}

// openNATS opens an engine on cfg and closes it when the test ends.
func openNATS(t *testing.T, cfg engine.Config) *natsEngine {
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
	return &natsEngine{Engine: e, cfg: cfg}
}

func (e *natsEngine) Reopen(t *testing.T) Engine {
	t.Helper()
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return openNATS(t, e.cfg)
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

func mustAppend(t *testing.T, e Engine, records ...herald.Record) []uint64 {
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

func lastID(t *testing.T, e Engine) uint64 {
	t.Helper()
	id, err := e.LastID(testContext(t))
	if err != nil {
		t.Fatalf("LastID: %v", err)
	}
	return id
}

// replay returns the events Replay passes to fn, checking its result.
func replay(t *testing.T, e Engine, org string, after, until uint64) []*herald.Event {
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
