package e2e

import (
	"testing"

	"github.com/herald-gw/herald/internal/server"
)

// micA is a microphone of org A: its events are of resource type
// microphones, outside a cameras subscription.
const micA = "9d1e0f7a-1111-4c2b-8a3e-0000000000aa"

// TestESSPythonClient runs a client written as Milestone's Python sample
// is (e2e/python/ess_client.py, Debian's python3-websockets, -aiohttp and
// -requests): a token from the IDP endpoint with a user's password, a
// session, the sample's camera motion/recording subscription, getState,
// then events posted to /api/events, with every name resolved through
// the REST lookups.
func TestESSPythonClient(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Orgs[0].Users = []server.UserConfig{{Name: "operator", Password: "correct horse"}}
	cfg.Orgs[0].Devices = append(cfg.Orgs[0].Devices, server.DeviceConfig{UUID: micA, Name: "Lobby Microphone", Kind: "microphone"})
	ts := startServer(t, cfg)
	ts.publish(keyA, motion("MOTION_STARTED", camA), motion("RECORDING_STARTED", camA))

	p := startClient(t, []string{"HERALD_URL=" + ts.base, "ESS_USER=operator", "ESS_PASSWORD=correct horse", "ESS_EVENTS=2"},
		"ready", python, "python/ess_client.py")
	if m := p.nextStep("token"); m["token_type"] != "Bearer" {
		t.Fatalf("token: %v", m)
	}
	if m := p.nextStep("session"); m["status"] != float64(201) || m["sessionId"] == "" {
		t.Fatalf("session: %v", m)
	}
	if m := p.nextStep("subscription"); m["status"] != float64(200) {
		t.Fatalf("subscription: %v", m)
	}
	states := p.nextStep("state")["states"].([]any)
	got := map[string]map[string]any{}
	for _, s := range states {
		st := s.(map[string]any)
		got[st["state_group"].(string)] = st
	}
	if len(states) != 2 || got["Motion"]["state"] != "Motion" || got["Recording"]["state"] != "Recording" ||
		got["Motion"]["source_name"] != "Lobby Camera" {
		t.Fatalf("state: %v", states)
	}

	// Not delivered: another type, another resource type, another org.
	ts.publish(keyA, alert("a-1", camA), motion("MOTION_STARTED", micA))
	ts.publish(keyB, motion("MOTION_STARTED", camB))
	want := ts.publish(keyA, motion("MOTION_STOPPED", camA), motion("RECORDING_STOPPED", camA))
	for i, typ := range []string{guidMotionStopped, "79a94f89-92de-4fca-8a43-5561d407423d"} {
		ev := p.nextStep("event")
		if ev["id"] != want[i] || ev["type"] != typ || ev["source"] != "cameras/"+camA || ev["source_name"] != "Lobby Camera" {
			t.Fatalf("event %d: %v, want id %s type %s", i, ev, want[i], typ)
		}
	}
}

// nextStep returns the client's next line of the given step.
func (p *clientProcess) nextStep(step string) map[string]any {
	p.t.Helper()
	for {
		m := p.next()
		if m["step"] == step {
			return m
		}
		p.t.Fatalf("the client printed %v, want step %s", m, step)
	}
}
