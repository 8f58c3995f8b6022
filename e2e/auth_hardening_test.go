package e2e

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestChannelsRefreshNeedsSubscribeScope (issue 9 item 9): an in-band
// refresh passes every check of the first auth. A publish-only token is
// refused, and the connection's token still expires when it would have.
func TestChannelsRefreshNeedsSubscribeScope(t *testing.T) {
	ts := startServer(t, channelsConfig(t.TempDir()))
	// Expires in 2 to 3s (exp is in whole seconds).
	short := signed(t, jwtSecret, jwt.SigningMethodHS256, jwt.MapClaims{"org": orgA, "sub": "carol",
		"scopes": "subscribe", "exp": time.Now().Add(3 * time.Second).Unix(), "iat": time.Now().Unix()})
	c := dialChannels(t, ts, "/ws")
	c.login(short)

	for _, scopes := range [][]string{{"publish"}, {"admin"}, {"publish", "admin"}} {
		c.send(map[string]any{"type": "auth", "token": token(t, orgA, "carol", time.Hour, scopes...)})
		m := c.expect("auth_response")
		if m["success"] != false || m["error"] != "insufficient_scope" {
			t.Fatalf("refresh with scopes %v: got %v, want success:false error insufficient_scope", scopes, m)
		}
	}
	// The refusals changed nothing: the first token is still the one in
	// force, and it expires.
	c.expect("token_expired")
	if code := c.closedWith(); code != 4002 {
		t.Fatalf("closed with %d, want 4002", code)
	}
}
