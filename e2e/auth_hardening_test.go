package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
)

// paddedToken is a subscribe token for user of orgA whose length is
// exactly n bytes (n ≥ 300): a "pad" claim makes up the difference, as the
// groups and profile claims of an identity provider's token do.
func paddedToken(t *testing.T, user string, n int) string {
	t.Helper()
	claims := func(pad int) jwt.MapClaims {
		return jwt.MapClaims{"org": orgA, "sub": user, "scopes": []string{"subscribe"},
			"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(), "pad": strings.Repeat("x", pad)}
	}
	// base64 makes 4 bytes of 3: try the pads near the proportional one.
	base := len(signed(t, jwtSecret, jwt.SigningMethodHS256, claims(0)))
	for pad := (n - base) * 3 / 4; pad <= (n-base)*3/4+4; pad++ {
		if tok := signed(t, jwtSecret, jwt.SigningMethodHS256, claims(pad)); len(tok) == n {
			return tok
		}
	}
	t.Fatalf("no pad makes a %d-byte token", n)
	return ""
}

// TestChannelsLargeAuthMessage (issue 9 item 8): an auth message may be
// as large as the largest token herald takes, while every other message
// keeps limits.channels.max_message_bytes (1 KB).
func TestChannelsLargeAuthMessage(t *testing.T) {
	ts := startServer(t, channelsConfig(t.TempDir()))

	t.Run("a 1,097-byte token logs in and refreshes", func(t *testing.T) {
		c := dialChannels(t, ts, "/ws")
		c.login(paddedToken(t, "ivy", 1097))
		c.login(paddedToken(t, "ivy", 1500)) // an in-band refresh is an auth message too
		c.send(map[string]any{"type": "ping", "timestamp": "still here"})
		if m := c.expect("pong"); m["timestamp"] != "still here" {
			t.Fatalf("pong %v", m)
		}
	})

	t.Run("the largest token herald takes logs in", func(t *testing.T) {
		c := dialChannels(t, ts, "/ws")
		c.login(paddedToken(t, "ivy", 8<<10))
	})

	t.Run("other messages over 1 KB are dropped, the socket stays open", func(t *testing.T) {
		c := dialChannels(t, ts, "/ws")
		c.login(token(t, orgA, "ivy", time.Hour))
		sizes := []int{1100, 4 << 10, 9 << 10, 20 << 10, 512 << 10}
		for _, n := range sizes {
			c.send(`{"type":"ping","timestamp":"` + strings.Repeat("x", n) + `"}`)
			if m := c.expect("error"); m["error"] != "message_too_large" {
				t.Fatalf("a %d-byte ping: got %v, want error message_too_large", n, m)
			}
		}
		// Over 1 KB with a batch of auths inside is no auth message.
		batch := `{"type":"batch","messages":[{"type":"auth","token":"` + token(t, orgA, "ivy", time.Hour) + `"},` +
			`{"type":"ping","timestamp":"` + strings.Repeat("x", 1024) + `"}]}`
		c.send(batch)
		if m := c.expect("error"); m["error"] != "message_too_large" {
			t.Fatalf("a %d-byte batch: got %v, want error message_too_large", len(batch), m)
		}
		c.send(`{"type":"ping","timestamp":"after"}`)
		if m := c.expect("pong"); m["timestamp"] != "after" {
			t.Fatalf("pong %v", m)
		}
	})

	t.Run("a first message over the auth limit closes the connection (1009)", func(t *testing.T) {
		// (Over 1 MiB the connection is closed unread, tested elsewhere:
		// the client's write may then fail, before it reads the close.)
		for _, n := range []int{10 << 10, 1000 << 10} {
			c := dialChannels(t, ts, "/ws")
			c.send(`{"type":"auth","token":"` + strings.Repeat("x", n) + `"}`)
			m, err := c.read(patience)
			if err == nil {
				t.Fatalf("a %d-byte first message: got %v, want the connection closed", n, m)
			}
			if code := websocket.CloseStatus(err); code != websocket.StatusMessageTooBig {
				t.Fatalf("a %d-byte first message: closed with %d (%v), want 1009", n, code, err)
			}
		}
	})
}

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
