package channels

import (
	"fmt"
	"testing"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/auth"
)

// TestTokenErrorCodes: a token the engine could not check now is not an
// invalid token: a client may retry it (the SDK does), while a refused
// one it must not.
func TestTokenErrorCodes(t *testing.T) {
	for _, c := range []struct {
		err  error
		code string
	}{
		{fmt.Errorf("auth: looking up the token's org: %w", herald.Errorf(herald.EUNAVAILABLE, "engine: get org: nats: no responders available for request")), CodeTemporarilyUnavailable},
		{&auth.TokenError{Code: auth.CodeInvalidToken, Message: "token is expired"}, auth.CodeInvalidToken},
		{herald.Errorf(herald.EINTERNAL, "a bug"), "invalid_token"},
	} {
		if code, _ := tokenError(c.err); code != c.code {
			t.Errorf("%v: code %q, want %q", c.err, code, c.code)
		}
	}
}
