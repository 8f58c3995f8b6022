package e2e

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/herald-gw/herald/internal/server"
)

// TestESSBrowserClient runs a page written as Milestone's JavaScript
// sample is (e2e/testdata/ess-browser) in headless Chromium, served from
// an origin of its own as an integrator's page is: it fetches a token
// from the IDP endpoint (a cross-origin form POST), opens the WebSocket
// without headers, authenticates with a command, starts a session and
// subscribes; events posted to /api/events appear on the page; after the
// page's socket is closed it reconnects, resumes the same session and
// shows the events posted meanwhile.
func TestESSBrowserClient(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Orgs[0].Users = []server.UserConfig{{Name: "operator", Password: "correct horse"}}
	ts := startServer(t, cfg)
	pages := httptest.NewServer(http.FileServer(http.Dir("testdata/ess-browser")))
	t.Cleanup(pages.Close)

	b := startChromium(t)
	b.navigate(pages.URL + "/index.html?" + url.Values{"gw": {ts.base}, "user": {"operator"}, "password": {"correct horse"}}.Encode())
	b.waitText("connectionStatus", "Connected")
	session := b.waitText("session", "-")
	if kind := b.waitText("sessionKind", "new"); kind != "new" {
		t.Fatalf("session kind %q", kind)
	}
	b.waitText("subscription", "-")

	first := ts.publish(keyA, motion("MOTION_STARTED", camA))[0]
	shown := b.waitText("events", "id="+first)
	for _, want := range []string{"source=cameras/" + camA, "type=" + guidMotionStarted, "stategroupid="} {
		if !strings.Contains(shown, want) {
			t.Fatalf("the page shows %q, want %q in it", shown, want)
		}
	}

	// The page's socket drops; events come meanwhile; it reconnects and
	// resumes.
	ts.waitSubscriptions(1)
	b.text("socket.close(); 'closed'")
	ts.waitNoConnections()
	missed := ts.publish(keyA, motion("MOTION_STOPPED", camA), motion("RECORDING_STARTED", camA))
	if kind := b.waitText("sessionKind", "resumed"); kind != "resumed" {
		t.Fatalf("after the reconnect: %q", kind)
	}
	if got := b.waitText("session", "-"); got != session {
		t.Fatalf("resumed session %q, want %q", got, session)
	}
	for _, id := range missed {
		b.waitText("events", "id="+id)
	}
	if n := strings.Count(b.waitText("events", "id="+missed[1]), "id="+first+" "); n != 1 {
		t.Fatalf("event %s shown %d times", first, n)
	}
}
