package streams

import (
	"encoding/json"
	"testing"

	"github.com/herald-gw/herald"
)

type testDirectory map[string]herald.Device

func (d testDirectory) Device(org, uuid string) (herald.Device, bool) {
	dev, ok := d[org+"/"+uuid]
	return dev, ok
}

func (d testDirectory) OrgName(org string) string {
	if org == acme {
		return "acme"
	}
	return org
}

// TestRender pins the push of protocols.md §7.4 for a registered device,
// an unregistered one (whose stream id then resolves) and the org itself.
func TestRender(t *testing.T) {
	boiler := herald.Device{Org: acme, UUID: "boiler-7", Name: "boiler"}
	idx := NewIndex()
	idx.Put(boiler) // as the node's device watch feeds both
	r := newRenderer(testDirectory{acme + "/boiler-7": boiler}, idx)
	body := `{"id":"0b5c","channel":"telemetry","temperature":71.5}`
	creator := creatorID(acme)
	for _, tc := range []struct {
		device, path string
	}{
		{"boiler-7", "/acme/devices/boiler/telemetry"},
		{"ghost", "/acme/devices/ghost/telemetry"},
		{"", "/acme/org/telemetry"},
	} {
		e := &herald.Event{ID: 42, Org: acme, Channel: herald.ChannelTelemetry, DeviceUUID: tc.device, TimestampMs: 1700000000123, Body: []byte(body)}
		id := StreamID(acme, tc.device, herald.ChannelTelemetry)
		want := `{"type":"message","resource":"` + id + `","value":{"id":"e42","streamId":"` + id + `","path":"` + tc.path +
			`","creationDate":1700000000123,"generatedDate":1700000000123,"creatorId":"` + creator + `","lastEditDate":1700000000123,"lastEditorId":"` + creator +
			`","elems":` + body + `,"metadata":{},"location":null,"hash":null,"tags":{}}}`
		got := string(r.render(e))
		if got != want {
			t.Errorf("render of %q =\n%s\nwant\n%s", tc.device, got, want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("render of %q is not JSON", tc.device)
		}
		if target, ok := idx.Find(acme, id); !ok || !target.Covers(tc.device, herald.ChannelTelemetry) {
			t.Errorf("after a render, the stream %s of %q resolves to %+v, %v", id, tc.device, target, ok)
		}
	}
	if len(creator) != 25 || creator[0] != 'i' {
		t.Errorf("creatorId %q is not i and 24 hex digits", creator)
	}
}
