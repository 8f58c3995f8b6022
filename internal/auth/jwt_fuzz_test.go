package auth

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify feeds Verify valid tokens, broken ones and mutations of
// both. It must never panic, refuse only with a TokenError, and accept
// only tokens whose signature the test itself can check with the key.
func FuzzVerify(f *testing.F) {
	rsaKey := testRSAKey()
	v := newTestVerifier(f, JWTConfig{
		Secret:    testSecret,
		PublicKey: publicPEM(f, &rsaKey.PublicKey),
	}, newRegistry(testOrg))

	far := time.Now().AddDate(50, 0, 0).Unix()
	valid := func(changes map[string]any) jwt.MapClaims {
		c := claims(changes)
		c["exp"] = far
		return c
	}
	hs := sign(f, jwt.SigningMethodHS256, []byte(testSecret), "", valid(nil))
	seeds := []string{
		hs,
		"Bearer " + hs,
		sign(f, jwt.SigningMethodRS256, rsaKey, "", valid(nil)),
		sign(f, jwt.SigningMethodHS256, []byte(testSecret), "", valid(map[string]any{"scope": "subscribe publish", "scopes": nil})),
		sign(f, jwt.SigningMethodHS256, []byte(testSecret), "", valid(map[string]any{"aud": []string{"a", "b"}, "nbf": 1})),
		sign(f, jwt.SigningMethodHS512, []byte(testSecret), "", valid(nil)),
		sign(f, jwt.SigningMethodHS256, []byte(testSecret), "", valid(map[string]any{"exp": 1e300})),
		sign(f, jwt.SigningMethodHS256, []byte(testSecret), "", claims(map[string]any{"exp": strconv.FormatInt(far, 10)})),
		sign(f, jwt.SigningMethodHS256, []byte(testSecret), "", valid(map[string]any{"nbf": "1", "iat": "1"})),
		handMade(`{"alg":"none"}`, `{"org":"`+testOrg+`","sub":"a","scopes":["admin"],"exp":4102444800}`, nil),
		handMade(`{"alg":"RS256","kid":["x"]}`, `{}`, []byte{1, 2, 3}),
		"", "a.b", "a.b.c", "..", "e30.e30.", "Bearer", "e30.e30.e30.e30",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	signingInput := func(token string) (string, []byte, bool) {
		token = strings.TrimSpace(token)
		if len(token) >= 6 && strings.EqualFold(token[:6], "bearer") {
			token = strings.TrimSpace(token[6:])
		}
		i := strings.LastIndexByte(token, '.')
		if i < 0 {
			return "", nil, false
		}
		sig, err := jwt.NewParser().DecodeSegment(token[i+1:])
		return token[:i], sig, err == nil
	}

	f.Fuzz(func(t *testing.T, token string) {
		p, _, err := v.Verify(context.Background(), token)
		if err != nil {
			var te *TokenError
			if !errors.As(err, &te) || te.Code == "" || te.Message == "" {
				t.Fatalf("refusal %v (%T) is not a TokenError with a code and a message", err, err)
			}
			return
		}
		if p.Org != testOrg || p.User == "" || len(p.Scopes) == 0 {
			t.Fatalf("accepted with principal %+v", p)
		}
		input, sig, ok := signingInput(token)
		if !ok {
			t.Fatalf("accepted a token whose signature does not decode: %q", token)
		}
		if kind := expKind(t, input); kind != "number" {
			t.Fatalf("accepted a token whose exp is %s: %q", kind, token)
		}
		mac := hmac.New(sha256.New, []byte(testSecret))
		mac.Write([]byte(input))
		digest := sha256.Sum256([]byte(input))
		if !hmac.Equal(sig, mac.Sum(nil)) && rsa.VerifyPKCS1v15(&rsaKey.PublicKey, crypto.SHA256, digest[:], sig) != nil {
			t.Fatalf("accepted a token not signed with the key: %q", token)
		}
	})
}

// expKind names the JSON kind of the exp claim of a token's signing input.
func expKind(t *testing.T, input string) string {
	t.Helper()
	_, payload, _ := strings.Cut(input, ".")
	b, err := jwt.NewParser().DecodeSegment(payload)
	if err != nil {
		t.Fatalf("accepted a token whose claims do not decode: %v", err)
	}
	var c struct {
		Exp json.RawMessage `json:"exp"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("accepted a token whose claims are not an object: %v", err)
	}
	return jsonKind(c.Exp)
}
