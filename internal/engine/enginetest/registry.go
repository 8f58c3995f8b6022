package enginetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-gw/herald"
)

func testOrgs(t *testing.T, storage Storage) {
	e := storage(t, Limits{})
	ctx := testContext(t)

	if orgs, err := e.Orgs(ctx); err != nil || len(orgs) != 0 {
		t.Fatalf("Orgs of an empty registry = %v, %v", orgs, err)
	}
	for _, org := range []herald.Org{{UUID: "org-b", Name: "B"}, {UUID: "org-a", Name: "A"}, {UUID: "org-a", Name: "A renamed"}} {
		if err := e.PutOrg(ctx, org); err != nil {
			t.Fatalf("PutOrg(%+v): %v", org, err)
		}
	}
	org, err := e.Org(ctx, "org-a")
	if err != nil || org != (herald.Org{UUID: "org-a", Name: "A renamed"}) {
		t.Fatalf("Org(org-a) = %+v, %v", org, err)
	}
	orgs, err := e.Orgs(ctx)
	if err != nil || len(orgs) != 2 || orgs[0].UUID != "org-a" || orgs[1].UUID != "org-b" {
		t.Fatalf("Orgs = %+v, %v", orgs, err)
	}
	_, err = e.Org(ctx, "org-c")
	wantCode(t, err, herald.ENOTFOUND)
	_, err = e.Org(ctx, "org.a")
	wantCode(t, err, herald.ENOTFOUND)
	wantCode(t, e.PutOrg(ctx, herald.Org{UUID: "org.a"}), herald.EINVALID)
	wantCode(t, e.PutOrg(ctx, herald.Org{}), herald.EINVALID)
}

func testAPIKeys(t *testing.T, storage Storage) {
	e := storage(t, Limits{})
	ctx := testContext(t)

	key := herald.APIKey{Hash: herald.HashAPIKey("secret"), Org: "org-a", Name: "ci", Scopes: []string{herald.ScopePublish}}
	if err := e.PutAPIKey(ctx, key); err != nil {
		t.Fatalf("PutAPIKey: %v", err)
	}
	got, err := e.APIKey(ctx, key.Hash)
	if err != nil || got.Hash != key.Hash || got.Org != "org-a" || got.Name != "ci" || len(got.Scopes) != 1 || got.Scopes[0] != herald.ScopePublish {
		t.Fatalf("APIKey = %+v, %v", got, err)
	}
	_, err = e.APIKey(ctx, herald.HashAPIKey("other"))
	wantCode(t, err, herald.ENOTFOUND)
	_, err = e.APIKey(ctx, "not hex!")
	wantCode(t, err, herald.ENOTFOUND)
	wantCode(t, e.PutAPIKey(ctx, herald.APIKey{Hash: "zz", Org: "org-a"}), herald.EINVALID)
}

func testUsers(t *testing.T, storage Storage) {
	e := storage(t, Limits{})
	ctx := testContext(t)

	users := []herald.User{
		{Org: "org-a", Name: "alice@example.com", PasswordHash: "hash-1"},
		{Org: "org-a", Name: "a.b c/d*>", PasswordHash: "hash-2"},
		{Org: "org-b", Name: "alice@example.com", PasswordHash: "hash-3"},
	}
	for _, user := range users {
		if err := e.PutUser(ctx, user); err != nil {
			t.Fatalf("PutUser(%+v): %v", user, err)
		}
	}
	for _, want := range users {
		got, err := e.User(ctx, want.Org, want.Name)
		if err != nil || got != want {
			t.Fatalf("User(%s, %q) = %+v, %v; want %+v", want.Org, want.Name, got, err, want)
		}
	}
	_, err := e.User(ctx, "org-c", "alice@example.com")
	wantCode(t, err, herald.ENOTFOUND)
	_, err = e.User(ctx, "org-a", "bob")
	wantCode(t, err, herald.ENOTFOUND)
	wantCode(t, e.PutUser(ctx, herald.User{Org: "org-a"}), herald.EINVALID)
}

func testDevices(t *testing.T, storage Storage) {
	e := storage(t, Limits{})
	ctx := testContext(t)

	// org-1 is a prefix of org-10: listing one must not list the other.
	devices := []herald.Device{
		{Org: "org-1", UUID: "shared-uuid", Name: "lobby", Kind: "camera", Number: 1},
		{Org: "org-1", UUID: "dev.2 b", Name: "door", Kind: "door"},
		{Org: "org-10", UUID: "shared-uuid", Name: "garage", Kind: "camera"},
		{Org: "org-1", UUID: "shared-uuid", Name: "lobby east", Kind: "camera", Number: 2},
	}
	for _, device := range devices {
		if err := e.PutDevice(ctx, device); err != nil {
			t.Fatalf("PutDevice(%+v): %v", device, err)
		}
	}
	got, err := e.Device(ctx, "org-1", "shared-uuid")
	if err != nil || got != devices[3] {
		t.Fatalf("Device(org-1, shared-uuid) = %+v, %v; want %+v", got, err, devices[3])
	}
	got, err = e.Device(ctx, "org-10", "shared-uuid")
	if err != nil || got != devices[2] {
		t.Fatalf("Device(org-10, shared-uuid) = %+v, %v; want %+v", got, err, devices[2])
	}
	list, err := e.Devices(ctx, "org-1")
	if err != nil || len(list) != 2 || list[0] != devices[1] || list[1] != devices[3] {
		t.Fatalf("Devices(org-1) = %+v, %v", list, err)
	}
	list, err = e.Devices(ctx, "org-10")
	if err != nil || len(list) != 1 || list[0] != devices[2] {
		t.Fatalf("Devices(org-10) = %+v, %v", list, err)
	}
	if list, err := e.Devices(ctx, "org-2"); err != nil || len(list) != 0 {
		t.Fatalf("Devices(org-2) = %+v, %v", list, err)
	}
	_, err = e.Device(ctx, "org-2", "shared-uuid")
	wantCode(t, err, herald.ENOTFOUND)
	wantCode(t, e.PutDevice(ctx, herald.Device{Org: "org-1"}), herald.EINVALID)
}

// testLongNames: a name longer than herald.MaxNameBytes is refused when put
// and not found when looked up, and the engine goes on working (NATS closes
// a connection whose request line is too long).
func testLongNames(t *testing.T, storage Storage) {
	e := storage(t, Limits{})
	ctx := testContext(t)
	long := strings.Repeat("d", 8000)
	if _, err := e.Device(ctx, "org-1", long); herald.ErrorCode(err) != herald.ENOTFOUND {
		t.Fatalf("Device with an 8000-byte uuid: %v, want ENOTFOUND", err)
	}
	if _, err := e.User(ctx, "org-1", long); herald.ErrorCode(err) != herald.ENOTFOUND {
		t.Fatalf("User with an 8000-byte name: %v, want ENOTFOUND", err)
	}
	if _, err := e.Setting(ctx, long); herald.ErrorCode(err) != herald.ENOTFOUND {
		t.Fatalf("Setting with an 8000-byte name: %v, want ENOTFOUND", err)
	}
	if err := e.PutDevice(ctx, herald.Device{Org: "org-1", UUID: long}); herald.ErrorCode(err) != herald.EINVALID {
		t.Fatalf("PutDevice with an 8000-byte uuid: %v, want EINVALID", err)
	}
	if err := e.PutDevice(ctx, herald.Device{Org: "org-1", UUID: "after"}); err != nil {
		t.Fatalf("PutDevice after the long names: %v", err)
	}
}

// testWatchDevices starts one watch on an empty registry and one on a
// registry with devices of two orgs: each gets the stored devices (the
// newest version of each, once), then ready, then the devices put after,
// of every org, in the order they were put. A version replaced before the
// watch passed it may be skipped (the engine keeps only the newest), the
// newest never.
func testWatchDevices(t *testing.T, storage Storage) {
	e := storage(t, Limits{})
	ctx := testContext(t)
	put := func(devices ...herald.Device) {
		t.Helper()
		for _, device := range devices {
			if err := e.PutDevice(ctx, device); err != nil {
				t.Fatalf("PutDevice(%+v): %v", device, err)
			}
		}
	}

	early := watchDevices(t, e)
	early.expectReady(t, nil)

	put(
		herald.Device{Org: "org-1", UUID: "cam-1", Name: "lobby", Kind: "camera"},
		herald.Device{Org: "org-2", UUID: "cam-1", Name: "garage", Kind: "camera"},
		herald.Device{Org: "org-1", UUID: "door.1 b", Name: "door", Kind: "door", Number: 7},
		herald.Device{Org: "org-1", UUID: "cam-1", Name: "lobby east", Kind: "camera", Number: 2},
	)
	late := watchDevices(t, e)
	late.expectReady(t, []herald.Device{
		{Org: "org-2", UUID: "cam-1", Name: "garage", Kind: "camera"},
		{Org: "org-1", UUID: "door.1 b", Name: "door", Kind: "door", Number: 7},
		{Org: "org-1", UUID: "cam-1", Name: "lobby east", Kind: "camera", Number: 2},
	})

	after := []herald.Device{
		{Org: "org-2", UUID: "sensor-9", Name: "freezer", Kind: "sensor"},
		{Org: "org-1", UUID: "cam-1", Name: "lobby west", Kind: "camera", Number: 3},
		{Org: "org-3", UUID: "cam-1", Name: "new org", Kind: "camera"},
	}
	put(after...)
	late.expect(t, after)
	early.expect(t, append([]herald.Device{
		{Org: "org-1", UUID: "cam-1", Name: "lobby", Kind: "camera"},
		{Org: "org-2", UUID: "cam-1", Name: "garage", Kind: "camera"},
		{Org: "org-1", UUID: "door.1 b", Name: "door", Kind: "door", Number: 7},
		{Org: "org-1", UUID: "cam-1", Name: "lobby east", Kind: "camera", Number: 2},
	}, after...))

	// A deleted device comes as its org and uuid, marked deleted; a watch
	// that begins later does not pass it.
	if err := e.DeleteDevice(ctx, "org-2", "sensor-9"); err != nil {
		t.Fatal(err)
	}
	gone := []herald.Device{{Org: "org-2", UUID: "sensor-9", Deleted: true}}
	late.expect(t, gone)
	early.expect(t, gone)
	latest := watchDevices(t, e)
	latest.expectReady(t, []herald.Device{
		{Org: "org-2", UUID: "cam-1", Name: "garage", Kind: "camera"},
		{Org: "org-1", UUID: "door.1 b", Name: "door", Kind: "door", Number: 7},
		{Org: "org-1", UUID: "cam-1", Name: "lobby west", Kind: "camera", Number: 3},
		{Org: "org-3", UUID: "cam-1", Name: "new org", Kind: "camera"},
	})

	for _, w := range []*deviceWatch{early, late, latest} {
		if err := w.stop(); !errors.Is(err, context.Canceled) {
			t.Fatalf("WatchDevices returned %v after cancel, want context.Canceled", err)
		}
		select {
		case d := <-w.seen:
			t.Fatalf("WatchDevices passed an extra %v", d)
		default:
		}
	}
}

// deviceWatch is a running WatchDevices: what it passed to fn, and a nil
// for its call of ready, in the order they came.
type deviceWatch struct {
	seen chan *herald.Device
	stop func() error
}

func watchDevices(t *testing.T, e Engine) *deviceWatch {
	ctx, cancel := context.WithCancel(testContext(t))
	w := &deviceWatch{seen: make(chan *herald.Device, 100)}
	done := make(chan error, 1)
	go func() {
		done <- e.WatchDevices(ctx, func(d herald.Device) { w.seen <- &d }, func() { w.seen <- nil })
	}()
	var once sync.Once
	var err error
	w.stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { w.stop() })
	return w
}

// next returns what the watch passed next, failing the test after a
// bound.
func (w *deviceWatch) next(t *testing.T) *herald.Device {
	t.Helper()
	select {
	case d := <-w.seen:
		return d
	case <-time.After(20 * time.Second):
		t.Fatal("WatchDevices passed nothing for 20s")
		return nil
	}
}

// expectReady checks that the watch passes exactly the devices of want,
// in any order, and then calls ready.
func (w *deviceWatch) expectReady(t *testing.T, want []herald.Device) {
	t.Helper()
	missing := make(map[herald.Device]bool)
	for _, d := range want {
		missing[d] = true
	}
	for {
		d := w.next(t)
		if d == nil {
			break
		}
		if !missing[*d] {
			t.Fatalf("before ready, WatchDevices passed %+v, not one of the stored devices %+v (or twice)", *d, want)
		}
		delete(missing, *d)
	}
	if len(missing) > 0 {
		t.Fatalf("WatchDevices was ready without passing %v", missing)
	}
}

// expect checks that the watch passes the devices put, want, next and in
// order, but for versions replaced later in want, which it may skip.
func (w *deviceWatch) expect(t *testing.T, want []herald.Device) {
	t.Helper()
	replaced := func(i int) bool {
		for _, later := range want[i+1:] {
			if later.Org == want[i].Org && later.UUID == want[i].UUID {
				return true
			}
		}
		return false
	}
	for i := 0; i < len(want); {
		d := w.next(t)
		if d == nil {
			t.Fatalf("WatchDevices called ready again, want %+v", want[i])
		}
		for *d != want[i] && replaced(i) {
			i++
		}
		if *d != want[i] {
			t.Fatalf("WatchDevices passed %+v, want %+v", *d, want[i])
		}
		i++
	}
}

func testSettings(t *testing.T, storage Storage) {
	e := storage(t, Limits{})
	ctx := testContext(t)

	_, err := e.Setting(ctx, "bootstrap.done")
	wantCode(t, err, herald.ENOTFOUND)
	for _, value := range []string{"yes", "yes, twice"} {
		if err := e.PutSetting(ctx, "bootstrap.done", value); err != nil {
			t.Fatalf("PutSetting: %v", err)
		}
		if got, err := e.Setting(ctx, "bootstrap.done"); err != nil || got != value {
			t.Fatalf("Setting = %q, %v; want %q", got, err, value)
		}
	}
	if err := e.PutSetting(ctx, "a name with spaces", ""); err != nil {
		t.Fatalf("PutSetting: %v", err)
	}
	if got, err := e.Setting(ctx, "a name with spaces"); err != nil || got != "" {
		t.Fatalf("Setting of an empty value = %q, %v", got, err)
	}
	// CreateSetting: the first value wins, whoever races for it.
	values := make(chan string, 8)
	for i := range cap(values) {
		go func() {
			got, err := e.CreateSetting(ctx, "created", fmt.Sprintf("value %d", i))
			if err != nil {
				got = "error: " + err.Error()
			}
			values <- got
		}()
	}
	first := <-values
	for range cap(values) - 1 {
		if got := <-values; got != first {
			t.Fatalf("racing CreateSetting calls got %q and %q", first, got)
		}
	}
	if stored, err := e.Setting(ctx, "created"); err != nil || stored != first {
		t.Fatalf("Setting after CreateSetting = %q, %v; want %q", stored, err, first)
	}
	if got, err := e.CreateSetting(ctx, "created", "later"); err != nil || got != first {
		t.Fatalf("CreateSetting of an existing setting = %q, %v; want %q", got, err, first)
	}
}

// testPersistence closes an engine and opens its storage again: the log,
// the dedupe window, the state, the registry and the detached sessions
// are all still there. Engines whose data dies with them skip it.
func testPersistence(t *testing.T, storage Storage) {
	first := storage(t, Limits{})
	reopener, ok := first.(Reopener)
	if !ok {
		t.Skip("the engine's data does not outlive it")
	}
	ctx := testContext(t)

	keyed := record(fields{org: "org-a", device: "cam-1", key: "once", n: 1})
	stored := append(mustAppend(t, first, keyed, simple("org-a", 2)), mustAppend(t, first, simple("org-b", 3))...)
	device := herald.Device{Org: "org-a", UUID: "cam-1", Name: "lobby", Kind: "camera"}
	for _, err := range []error{
		first.PutOrg(ctx, herald.Org{UUID: "org-a", Name: "A"}),
		first.PutAPIKey(ctx, herald.APIKey{Hash: herald.HashAPIKey("k"), Org: "org-a", Scopes: herald.AllScopes}),
		first.PutUser(ctx, herald.User{Org: "org-a", Name: "alice", PasswordHash: "h"}),
		first.PutDevice(ctx, device),
		first.PutSetting(ctx, "bootstrap", "done"),
		first.SaveSession(ctx, herald.DetachedSession{ID: "s1", Org: "org-a", After: 2, Expires: time.Now().Add(time.Hour)}),
	} {
		if err != nil {
			t.Fatalf("put: %v", err)
		}
	}

	e := reopener.Reopen(t)
	if id := lastID(t, e); id != 3 {
		t.Fatalf("LastID after reopening is %d, want 3", id)
	}
	if got := replay(t, e, "org-a", 0, 0); !equalIDs(ids(got), stored[:2]) {
		t.Fatalf("Replay after reopening gave%s, want %v", describe(got), stored[:2])
	}
	if again := mustAppend(t, e, keyed); again[0] != stored[0] {
		t.Fatalf("a key stored before the restart got a new id %d, want %d", again[0], stored[0])
	}
	if next := mustAppend(t, e, simple("org-a", 4)); next[0] != 4 {
		t.Fatalf("first id after reopening is %d, want 4", next[0])
	}
	if event, err := e.Latest(ctx, "org-b", herald.StateQuery{}); err != nil || event.ID != stored[2] {
		t.Fatalf("Latest after reopening = %v, %v", event, err)
	}
	if org, err := e.Org(ctx, "org-a"); err != nil || org.Name != "A" {
		t.Fatalf("Org after reopening = %+v, %v", org, err)
	}
	if key, err := e.APIKey(ctx, herald.HashAPIKey("k")); err != nil || key.Org != "org-a" {
		t.Fatalf("APIKey after reopening = %+v, %v", key, err)
	}
	if user, err := e.User(ctx, "org-a", "alice"); err != nil || user.PasswordHash != "h" {
		t.Fatalf("User after reopening = %+v, %v", user, err)
	}
	if list, err := e.Devices(ctx, "org-a"); err != nil || len(list) != 1 || list[0] != device {
		t.Fatalf("Devices after reopening = %+v, %v", list, err)
	}
	if value, err := e.Setting(ctx, "bootstrap"); err != nil || value != "done" {
		t.Fatalf("Setting after reopening = %q, %v", value, err)
	}
	if s, err := e.TakeSession(ctx, "s1"); err != nil || s.Org != "org-a" || s.After != 2 {
		t.Fatalf("TakeSession after reopening = %+v, %v", s, err)
	}
}
