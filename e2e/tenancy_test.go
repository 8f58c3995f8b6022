package e2e

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

// TestTenancy: a key of org A sees nothing of org B through any
// destination or REST call.
func TestTenancy(t *testing.T) {
	ts := startServer(t, testConfig(t.TempDir()))

	a := dialRaw(t, ts.wsURL(), keyA)
	a.connect()
	a.send("SUBSCRIBE\nid:all\ndestination:/topic/change/" + orgA + "\n\n\x00")
	a.send("SUBSCRIBE\nid:resume\ndestination:/topic/change/" + orgA + "\nx-herald-after:0\n\n\x00")
	a.send("SUBSCRIBE\nid:dev\ndestination:/topic/change/" + orgA + "\nx-herald-device:" + camB + "\n\n\x00")
	ts.waitSubscriptions(3)

	bAlert := alert("b-alert-1", camB)
	bAlert["deviceUuid"] = camB
	ts.publish(keyB, bAlert, map[string]any{"entity": "DEVICE_STATUS", "deviceUuid": camB, "entityUuid": camB, "status": "online"})
	aID := ts.publish(keyA, alert("a-alert-1", camA))[0]
	// Every subscription of A gets A's event and nothing of B's, even the
	// replaying one and the one filtering on B's device. A second event of
	// A's is the sentinel: each subscription's messages come in log order,
	// so anything of B's would come before it. (The replaying subscription
	// may lag behind the others, so the check is per subscription.)
	sentinel := ts.publish(keyA, alert("a-alert-2", camA))[0]
	got := map[string][]string{}
	for len(got["all"]) < 2 || len(got["resume"]) < 2 {
		msg := a.expect("MESSAGE\n")
		if strings.Contains(msg, orgB) || strings.Contains(msg, camB) {
			t.Fatalf("org A received %q", msg)
		}
		sub := frameHeader(msg, "subscription")
		got[sub] = append(got[sub], frameHeader(msg, "message-id"))
	}
	want := map[string][]string{"all": {aID, sentinel}, "resume": {aID, sentinel}}
	if !maps.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("org A's subscriptions received %v, want %v", got, want)
	}

	// B's topic with A's key: ERROR, then close — also with case changes.
	for _, dest := range []string{"/topic/change/" + orgB, "/topic/change/" + strings.ToUpper(orgB)} {
		c := dialRaw(t, ts.wsURL(), keyA)
		c.connect()
		c.send("SUBSCRIBE\nid:x\ndestination:" + dest + "\n\n\x00")
		c.expect("ERROR\n")
		c.expectClosed()
	}

	// REST: A's key sees A's org and cameras only, and no alert of B.
	var org struct {
		Org struct{ UUID, Name string }
	}
	ts.do("POST", "/api/org/getOrgV2", keyA, map[string]any{}, &org)
	if org.Org.UUID != orgA {
		t.Fatalf("getOrgV2 with A's key: %+v", org)
	}
	var cams struct {
		CameraStates []map[string]any `json:"cameraStates"`
	}
	ts.do("POST", "/api/camera/getMinimalCameraStateList", keyA, map[string]any{}, &cams)
	if len(cams.CameraStates) != 1 || cams.CameraStates[0]["uuid"] != camA {
		t.Fatalf("A's cameras: %v", cams.CameraStates)
	}
	for _, call := range []struct{ path, field string }{
		{"/api/event/getPolicyAlertDetails", "policyAlertUuid"},
		{"/api/alert/getAlert", "alertUuid"},
	} {
		var out map[string]any
		status := ts.do("POST", call.path, keyA, map[string]any{call.field: "b-alert-1"}, &out)
		if status != 404 || out["error"] != true {
			t.Fatalf("%s for B's alert with A's key: %d %v", call.path, status, out)
		}
		status = ts.do("POST", call.path, keyB, map[string]any{call.field: "b-alert-1"}, &out)
		if status != 200 {
			t.Fatalf("%s for B's alert with B's key: %d %v", call.path, status, out)
		}
	}
	// A producer cannot write into another org.
	var errBody map[string]any
	if status := ts.do("POST", "/api/events", keyA, map[string]any{"entity": "X", "org": orgB}, &errBody); status != 400 {
		t.Fatalf("publishing into org B with A's key: %d %v", status, errBody)
	}
}
