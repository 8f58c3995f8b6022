package streams

import (
	"errors"
	"regexp"
	"strconv"
	"testing"

	"github.com/herald-gw/herald"
)

const (
	acme   = "7d3c1a52-7f6e-4b8e-9b0a-2f1e8e1c0001"
	globex = "7d3c1a52-7f6e-4b8e-9b0a-2f1e8e1c0002"
)

func testIndex() *Index {
	idx := NewIndex()
	for _, dev := range []herald.Device{
		{Org: acme, UUID: "cam-1", Name: "Lobby Camera"},
		{Org: acme, UUID: "boiler-7", Name: "boiler"},
		{Org: acme, UUID: "twin-a", Name: "twin"},
		{Org: acme, UUID: "twin-b", Name: "twin"},
		{Org: acme, UUID: "slash", Name: "a/b"},
		{Org: globex, UUID: "dock-1", Name: "Dock Camera"},
	} {
		idx.Put(dev)
	}
	return idx
}

func TestStreamID(t *testing.T) {
	id := StreamID(acme, "cam-1", herald.ChannelAlerts)
	if !regexp.MustCompile(`^s[0-9a-f]{24}$`).MatchString(id) {
		t.Fatalf("StreamID = %q, want s and 24 hex digits", id)
	}
	if id != StreamID(acme, "cam-1", herald.ChannelAlerts) {
		t.Fatal("StreamID is not stable")
	}
	distinct := map[string]bool{}
	for _, org := range []string{acme, globex} {
		for _, dev := range []string{"", "cam-1", "cam-2"} {
			for _, ch := range Channels {
				distinct[StreamID(org, dev, ch)] = true
			}
		}
	}
	if len(distinct) != 2*3*len(Channels) {
		t.Fatalf("%d distinct ids of %d streams", len(distinct), 2*3*len(Channels))
	}
}

// Every stream GET /api/streams lists is found by its id and by its path,
// as the same target.
func TestStreamsOfFoundByIDAndPath(t *testing.T) {
	idx := testIndex()
	devices := []herald.Device{{Org: acme, UUID: "cam-1", Name: "Lobby Camera"}, {Org: acme, UUID: "slash", Name: "a/b"}}
	list := StreamsOf("acme", acme, devices)
	if len(list) != 3*len(Channels) {
		t.Fatalf("StreamsOf listed %d streams, want %d", len(list), 3*len(Channels))
	}
	for _, s := range list {
		byID, ok := idx.Find(acme, s.ID)
		if !ok {
			t.Fatalf("Find(%s) of %s found nothing", s.ID, s.Path)
		}
		byPath, registered, err := ParsePath(s.Path, "acme", acme, idx)
		if err != nil || !registered || byPath != byID {
			t.Fatalf("ParsePath(%s) = %+v, %v, %v; by id %+v", s.Path, byPath, registered, err, byID)
		}
	}
	if list[len(Channels)].Path != "/acme/devices/slash/alerts" {
		t.Fatalf("a device whose name has a / is listed as %s, want its uuid in the path", list[len(Channels)].Path)
	}
}

func TestFind(t *testing.T) {
	idx := testIndex()
	alerts := StreamID(acme, "cam-1", herald.ChannelAlerts)
	if got, ok := idx.Find(acme, alerts); !ok || got != (Target{Scope: ScopeStream, Device: "cam-1", Channel: herald.ChannelAlerts}) {
		t.Fatalf("Find(alerts of cam-1) = %+v, %v", got, ok)
	}
	if got, ok := idx.Find(acme, StreamID(acme, "", herald.ChannelSystem)); !ok || got != (Target{Scope: ScopeOrgStream, Channel: herald.ChannelSystem}) {
		t.Fatalf("Find(the org's system stream) = %+v, %v", got, ok)
	}
	for _, tc := range []struct{ name, org, id string }{
		{"another org's device stream", acme, StreamID(globex, "dock-1", herald.ChannelAlerts)},
		{"another org's own stream", acme, StreamID(globex, "", herald.ChannelAlerts)},
		{"this org's stream asked by another org", globex, alerts},
		{"an unregistered device never rendered", acme, StreamID(acme, "ghost", herald.ChannelAlerts)},
		{"a channel that is not one", acme, StreamID(acme, "cam-1", "video")},
		{"not hex", acme, "s" + "zz" + alerts[3:]},
		{"too short", acme, alerts[:24]},
		{"too long", acme, alerts + "0"},
		{"no s", acme, "t" + alerts[1:]},
		{"empty", acme, ""},
	} {
		if got, ok := idx.Find(tc.org, tc.id); ok {
			t.Errorf("Find(%s) = %+v, want not found", tc.name, got)
		}
	}

	idx.remember(acme, "ghost")
	if got, ok := idx.Find(acme, StreamID(acme, "ghost", herald.ChannelTelemetry)); !ok || got != (Target{Scope: ScopeStream, Device: "ghost", Channel: herald.ChannelTelemetry}) {
		t.Fatalf("after an event of it, Find(an unregistered device's stream) = %+v, %v", got, ok)
	}
	if _, ok := idx.Find(globex, StreamID(acme, "ghost", herald.ChannelTelemetry)); ok {
		t.Fatal("another org found an unregistered device's stream")
	}
}

func TestRememberIsBounded(t *testing.T) {
	idx := NewIndex()
	for i := range maxSeen + 10 {
		idx.remember(acme, "dev-"+strconv.Itoa(i))
	}
	idx.remember(acme, "dev-0")
	if idx.nSeen != maxSeen {
		t.Fatalf("the index remembers %d unregistered devices, want at most %d", idx.nSeen, maxSeen)
	}
	if _, ok := idx.Find(acme, StreamID(acme, "dev-"+strconv.Itoa(maxSeen+5), herald.ChannelAlerts)); ok {
		t.Fatal("a device past the bound was remembered")
	}
}

func TestPutRename(t *testing.T) {
	idx := testIndex()
	idx.Put(herald.Device{Org: acme, UUID: "boiler-7", Name: "furnace"})
	if got, registered, _ := ParsePath("/acme/devices/furnace", "acme", acme, idx); !registered || got.Device != "boiler-7" {
		t.Fatalf("the new name resolves to %+v, %v", got, registered)
	}
	if got, registered, _ := ParsePath("/acme/devices/boiler", "acme", acme, idx); registered {
		t.Fatalf("the old name still resolves, to %+v", got)
	}
	idx.Put(herald.Device{Org: acme, UUID: "twin-b", Name: "single"})
	if got, registered, err := ParsePath("/acme/devices/twin", "acme", acme, idx); err != nil || !registered || got.Device != "twin-a" {
		t.Fatalf("once one twin is renamed, the name resolves to %+v, %v, %v; want twin-a", got, registered, err)
	}
}

func TestParsePath(t *testing.T) {
	idx := testIndex()
	for _, tc := range []struct {
		path       string
		want       Target
		registered bool
	}{
		{"/acme", Target{Scope: ScopeAll}, true},
		{"/acme/", Target{Scope: ScopeAll}, true},
		{"/" + acme, Target{Scope: ScopeAll}, true},
		{"/7D3C1A52-7F6E-4B8E-9B0A-2F1E8E1C0001/devices", Target{Scope: ScopeDevices}, true},
		{"/acme/devices/", Target{Scope: ScopeDevices}, true},
		{"/acme/devices/Lobby Camera", Target{Scope: ScopeDevice, Device: "cam-1"}, true},
		{"/acme/devices/cam-1/alerts", Target{Scope: ScopeStream, Device: "cam-1", Channel: "alerts"}, true},
		{"/acme/devices/boiler/telemetry/", Target{Scope: ScopeStream, Device: "boiler-7", Channel: "telemetry"}, true},
		{"/acme/devices/ghost/events", Target{Scope: ScopeStream, Device: "ghost", Channel: "events"}, false},
		{"/acme/devices/ghost", Target{Scope: ScopeDevice, Device: "ghost"}, false},
		{"/acme/org", Target{Scope: ScopeOrg}, true},
		{"/acme/org/system", Target{Scope: ScopeOrgStream, Channel: "system"}, true},
	} {
		got, registered, err := ParsePath(tc.path, "acme", acme, idx)
		if err != nil || got != tc.want || registered != tc.registered {
			t.Errorf("ParsePath(%q) = %+v, %v, %v; want %+v, %v", tc.path, got, registered, err, tc.want, tc.registered)
		}
	}
	for _, tc := range []struct{ path, reason string }{
		{"acme/devices", "a path starts with /, as /acme/devices/{device}/{channel}"},
		{"/globex/devices/Dock Camera/alerts", `no stream has the path "/globex/devices/Dock Camera/alerts"`},
		{"/" + globex, `no stream has the path "/` + globex + `"`},
		{"/globex", `no stream has the path "/globex"`},
		{"/ACME", `no stream has the path "/ACME"`},
		{"/acme/devices/cam-1/video", `no stream has the path "/acme/devices/cam-1/video"`},
		{"/acme/devices/cam-1/alerts/more", `no stream has the path "/acme/devices/cam-1/alerts/more"`},
		{"/acme/devices//alerts", `no stream has the path "/acme/devices//alerts"`},
		{"/acme/org/video", `no stream has the path "/acme/org/video"`},
		{"/acme/org/alerts/x", `no stream has the path "/acme/org/alerts/x"`},
		{"/acme/cameras", `no stream has the path "/acme/cameras"`},
		{"/acme/devices/twin/alerts", `"twin" names several devices: use the device's uuid in the path`},
	} {
		_, _, err := ParsePath(tc.path, "acme", acme, idx)
		var bad *BadMessage
		if !errors.As(err, &bad) || bad.Reason != tc.reason {
			t.Errorf("ParsePath(%q) = %v, want %q", tc.path, err, tc.reason)
		}
	}
}

func TestCovers(t *testing.T) {
	events := []struct{ device, channel string }{{"cam-1", "alerts"}, {"cam-1", "telemetry"}, {"cam-2", "alerts"}, {"", "alerts"}, {"", "system"}}
	for _, tc := range []struct {
		target Target
		covers []bool // of events, in order
	}{
		{Target{Scope: ScopeAll}, []bool{true, true, true, true, true}},
		{Target{Scope: ScopeDevices}, []bool{true, true, true, false, false}},
		{Target{Scope: ScopeDevice, Device: "cam-1"}, []bool{true, true, false, false, false}},
		{Target{Scope: ScopeStream, Device: "cam-1", Channel: "alerts"}, []bool{true, false, false, false, false}},
		{Target{Scope: ScopeOrg}, []bool{false, false, false, true, true}},
		{Target{Scope: ScopeOrgStream, Channel: "alerts"}, []bool{false, false, false, true, false}},
	} {
		for i, e := range events {
			if got := tc.target.Covers(e.device, e.channel); got != tc.covers[i] {
				t.Errorf("%+v covers %+v: %v, want %v", tc.target, e, got, tc.covers[i])
			}
		}
	}
}

// FuzzParsePath checks that no path panics ParsePath, that a refusal is a
// BadMessage with a reason, and that what it resolves is a target of the
// org: a channel it has and a device it names.
func FuzzParsePath(f *testing.F) {
	for _, seed := range []string{"/acme", "/acme/devices/Lobby Camera/alerts", "/acme/org/system", "/" + acme + "/devices/ghost",
		"/acme/devices/twin", "acme", "/", "//", "/acme/devices//", "/globex/devices/Dock Camera"} {
		f.Add(seed)
	}
	idx := testIndex()
	f.Fuzz(func(t *testing.T, path string) {
		got, _, err := ParsePath(path, "acme", acme, idx)
		if err != nil {
			var bad *BadMessage
			if !errors.As(err, &bad) || bad.Reason == "" {
				t.Fatalf("ParsePath(%q) = %v (%T), not a *BadMessage with a reason", path, err, err)
			}
			return
		}
		switch got.Scope {
		case ScopeStream, ScopeOrgStream:
			if !isChannel(got.Channel) {
				t.Fatalf("ParsePath(%q) = %+v: not a channel", path, got)
			}
		}
		if (got.Scope == ScopeStream || got.Scope == ScopeDevice) && got.Device == "" {
			t.Fatalf("ParsePath(%q) = %+v: no device", path, got)
		}
	})
}
