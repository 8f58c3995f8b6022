package auth

import (
	"context"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/herald-gw/herald"
)

// claims returns valid claims for testOrg with the changes applied; a nil
// value deletes the claim.
func claims(changes map[string]any) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{
		"org":    testOrg,
		"sub":    "alice",
		"scopes": []string{"subscribe"},
		"iat":    now.Unix(),
		"exp":    now.Add(time.Hour).Unix(),
	}
	for k, v := range changes {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func TestVerify(t *testing.T) {
	rsaKey := testRSAKey()
	ec := testECKeys()
	jwks := newJWKSServer(t, ecJWK(t, ec[0], "k1", "ES256"), ecJWK(t, ec[1], "k2", "ES256"))
	v := newTestVerifier(t, JWTConfig{
		Secret:    testSecret,
		PublicKey: publicPEM(t, &rsaKey.PublicKey),
		JWKSURL:   jwks.URL,
	}, newRegistry(testOrg))
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", c) }
	now := time.Now()
	exp := now.Add(-time.Hour).Truncate(time.Second)

	tests := []struct {
		name     string
		token    string
		wantCode string // "" = accepted
		wantMsg  string // part of the message
		scopes   []string
	}{
		{name: "HS256", token: hs(claims(nil)), scopes: []string{"subscribe"}},
		{name: "bearer prefix", token: "Bearer " + hs(claims(nil)), scopes: []string{"subscribe"}},
		{name: "RS256 via PEM", token: sign(t, jwt.SigningMethodRS256, rsaKey, "", claims(nil)), scopes: []string{"subscribe"}},
		{name: "ES256 via JWKS kid k1", token: sign(t, jwt.SigningMethodES256, ec[0], "k1", claims(nil)), scopes: []string{"subscribe"}},
		{name: "ES256 via JWKS kid k2", token: sign(t, jwt.SigningMethodES256, ec[1], "k2", claims(nil)), scopes: []string{"subscribe"}},
		{name: "ES256 via JWKS without kid", token: sign(t, jwt.SigningMethodES256, ec[1], "", claims(nil)), scopes: []string{"subscribe"}},
		{name: "OAuth scope string", token: hs(claims(map[string]any{"scopes": nil, "scope": "openid subscribe publish"})), scopes: []string{"subscribe", "publish"}},
		{name: "scopes as a string", token: hs(claims(map[string]any{"scopes": "publish admin"})), scopes: []string{"publish", "admin"}},
		{name: "foreign scopes ignored", token: hs(claims(map[string]any{"scopes": []string{"openid", "admin", "admin"}})), scopes: []string{"admin"}},
		{name: "extra claims ignored", token: hs(claims(map[string]any{"tenant": map[string]any{"x": 1}, "jti": "abc"})), scopes: []string{"subscribe"}},
		{name: "expired within leeway", token: hs(claims(map[string]any{"exp": now.Add(-10 * time.Second).Unix()})), scopes: []string{"subscribe"}},

		{name: "empty", token: "", wantCode: CodeMissingToken},
		{name: "bearer only", token: "Bearer ", wantCode: CodeMissingToken},
		{name: "expired", token: hs(claims(map[string]any{"exp": exp.Unix()})), wantCode: CodeTokenExpired, wantMsg: "expired at " + exp.UTC().Format(time.RFC3339)},
		{name: "no exp", token: hs(claims(map[string]any{"exp": nil})), wantCode: CodeInvalidToken, wantMsg: "no exp"},
		{name: "nbf in the future", token: hs(claims(map[string]any{"nbf": now.Add(time.Hour).Unix()})), wantCode: CodeInvalidToken, wantMsg: "not valid before"},
		{name: "iat in the future", token: hs(claims(map[string]any{"iat": now.Add(time.Hour).Unix()})), wantCode: CodeInvalidToken, wantMsg: "issued in the future"},
		{name: "wrong secret", token: sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32)), "", claims(nil)), wantCode: CodeInvalidToken, wantMsg: "signature does not match"},
		{name: "tampered claims", token: tamper(hs(claims(nil)), `"sub":"alice"`, `"sub":"mallory"`), wantCode: CodeInvalidToken, wantMsg: "signature"},
		{name: "alg none", token: handMade(`{"alg":"none","typ":"JWT"}`, claimsJSON(t, claims(nil)), nil), wantCode: CodeAlgorithmNotAllowed, wantMsg: "alg none"},
		{name: "alg NONE with signature", token: handMade(`{"alg":"NONE"}`, claimsJSON(t, claims(nil)), []byte("x")), wantCode: CodeAlgorithmNotAllowed},
		{name: "HS512 not allowed", token: sign(t, jwt.SigningMethodHS512, []byte(testSecret), "", claims(nil)), wantCode: CodeAlgorithmNotAllowed, wantMsg: `signed with "HS512", allowed: HS256, RS256, ES256`},
		{name: "unknown alg", token: handMade(`{"alg":"XS999"}`, claimsJSON(t, claims(nil)), []byte("x")), wantCode: CodeAlgorithmNotAllowed},
		{name: "no alg", token: handMade(`{"typ":"JWT"}`, claimsJSON(t, claims(nil)), []byte("x")), wantCode: CodeInvalidToken, wantMsg: "no alg"},
		{name: "RS256 with HMAC of the public key", token: sign(t, jwt.SigningMethodHS256, []byte(publicPEM(t, &rsaKey.PublicKey)), "", claims(nil)), wantCode: CodeInvalidToken, wantMsg: "signature"},
		{name: "RS256 with another key", token: sign(t, jwt.SigningMethodRS256, mustRSA(2048), "", claims(nil)), wantCode: CodeInvalidToken, wantMsg: "signature"},
		{name: "ES256 kid of another key", token: sign(t, jwt.SigningMethodES256, ec[1], "k1", claims(nil)), wantCode: CodeInvalidToken, wantMsg: "signature"},
		{name: "ES256 unknown kid", token: sign(t, jwt.SigningMethodES256, ec[0], "k9", claims(nil)), wantCode: CodeInvalidToken, wantMsg: `no key with kid "k9"`},
		{name: "ES256 not in JWKS", token: sign(t, jwt.SigningMethodES256, mustEC(elliptic.P256()), "", claims(nil)), wantCode: CodeInvalidToken, wantMsg: "signature"},
		{name: "kid not a string", token: handMade(`{"alg":"ES256","kid":7}`, claimsJSON(t, claims(nil)), make([]byte, 64)), wantCode: CodeInvalidToken, wantMsg: "kid"},
		{name: "crit header", token: handMade(`{"alg":"HS256","crit":["exp"]}`, claimsJSON(t, claims(nil)), nil), wantCode: CodeInvalidToken, wantMsg: "crit"},
		{name: "no org", token: hs(claims(map[string]any{"org": nil})), wantCode: CodeInvalidToken, wantMsg: "no org claim"},
		{name: "no sub", token: hs(claims(map[string]any{"sub": nil})), wantCode: CodeInvalidToken, wantMsg: "no sub claim"},
		{name: "no scopes", token: hs(claims(map[string]any{"scopes": nil})), wantCode: CodeInvalidToken, wantMsg: "no scopes claim"},
		{name: "empty scopes", token: hs(claims(map[string]any{"scopes": []string{}})), wantCode: CodeInsufficientScope},
		{name: "unknown scope", token: hs(claims(map[string]any{"scopes": []string{"root"}})), wantCode: CodeInsufficientScope, wantMsg: `it has ["root"]`},
		{name: "scopes of the wrong type", token: hs(claims(map[string]any{"scopes": 3})), wantCode: CodeInvalidToken, wantMsg: "scopes must be"},
		{name: "org of the wrong type", token: hs(claims(map[string]any{"org": 3})), wantCode: CodeInvalidToken, wantMsg: "malformed"},
		{name: "org not in registry", token: hs(claims(map[string]any{"org": "0b9e5c1a-7d3f-4a2b-8c6d-1e2f3a4b5c6d"})), wantCode: CodeUnknownOrg, wantMsg: `org "0b9e5c1a-7d3f-4a2b-8c6d-1e2f3a4b5c6d" does not exist`},
		{name: "one part", token: "abc", wantCode: CodeInvalidToken, wantMsg: "malformed"},
		{name: "four parts", token: hs(claims(nil)) + ".x", wantCode: CodeInvalidToken, wantMsg: "malformed"},
		{name: "bad base64", token: "e30!.e30.e30", wantCode: CodeInvalidToken, wantMsg: "malformed"},
		{name: "bad header JSON", token: handMade(`{"alg":`, `{}`, nil), wantCode: CodeInvalidToken, wantMsg: "malformed"},
		{name: "bad claims JSON", token: handMade(`{"alg":"HS256"}`, `{"org":`, nil), wantCode: CodeInvalidToken, wantMsg: "malformed"},
		{name: "too long", token: strings.Repeat("a", MaxTokenBytes+1), wantCode: CodeInvalidToken, wantMsg: "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, exp, err := v.Verify(context.Background(), tt.token)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if p.Org != testOrg || p.User != "alice" || strings.Join(p.Scopes, " ") != strings.Join(tt.scopes, " ") {
					t.Fatalf("principal %+v, want scopes %v", p, tt.scopes)
				}
				if exp.IsZero() {
					t.Fatal("no expiry returned")
				}
				return
			}
			var te *TokenError
			if !errors.As(err, &te) {
				t.Fatalf("got %v (%T), want a TokenError %s", err, err, tt.wantCode)
			}
			if te.Code != tt.wantCode || !strings.Contains(te.Message, tt.wantMsg) {
				t.Fatalf("got %s %q, want %s containing %q", te.Code, te.Message, tt.wantCode, tt.wantMsg)
			}
			if strings.Contains(te.Message, testSecret) {
				t.Fatalf("message leaks the secret: %q", te.Message)
			}
		})
	}
}

func claimsJSON(t *testing.T, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	s, err := tok.SigningString()
	if err != nil {
		t.Fatal(err)
	}
	_, payload, _ := strings.Cut(s, ".")
	b, err := jwt.NewParser().DecodeSegment(payload)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tamper replaces old with new in the token's claims, keeping the signature.
func tamper(token, old, new string) string {
	parts := strings.Split(token, ".")
	b, _ := jwt.NewParser().DecodeSegment(parts[1])
	return handMade(`{"alg":"HS256","typ":"JWT"}`, strings.Replace(string(b), old, new, 1), []byte(parts[2]))
}

func TestVerifyExpiry(t *testing.T) {
	v := newTestVerifier(t, JWTConfig{Secret: testSecret}, newRegistry(testOrg))
	now := time.Now()
	token, err := Issue([]byte(testSecret), testOrg, "bob", []string{"subscribe", "publish"}, 90*time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	p, exp, err := v.Verify(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(90 * time.Minute).Truncate(time.Second); !exp.Equal(want) {
		t.Fatalf("expiry %v, want %v", exp, want)
	}
	if p.User != "bob" || !p.Can(herald.ScopePublish) || !p.Can(herald.ScopeSubscribe) || p.Can(herald.ScopeAdmin) {
		t.Fatalf("principal %+v", p)
	}
}

func TestVerifyIssuerAudience(t *testing.T) {
	v := newTestVerifier(t, JWTConfig{Secret: testSecret, Issuer: "https://idp.example", Audience: "herald"}, newRegistry(testOrg))
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", c) }
	tests := []struct {
		name    string
		changes map[string]any
		wantMsg string // "" = accepted
	}{
		{"both", map[string]any{"iss": "https://idp.example", "aud": "herald"}, ""},
		{"aud list", map[string]any{"iss": "https://idp.example", "aud": []string{"other", "herald"}}, ""},
		{"wrong issuer", map[string]any{"iss": "https://evil.example", "aud": "herald"}, `issuer is "https://evil.example", expected "https://idp.example"`},
		{"no issuer", map[string]any{"aud": "herald"}, "issuer"},
		{"wrong audience", map[string]any{"iss": "https://idp.example", "aud": []string{"other"}}, `audience ["other"] does not include "herald"`},
		{"no audience", map[string]any{"iss": "https://idp.example"}, "audience"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := v.Verify(context.Background(), hs(claims(tt.changes)))
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var te *TokenError
			if !errors.As(err, &te) || te.Code != CodeInvalidToken || !strings.Contains(te.Message, tt.wantMsg) {
				t.Fatalf("got %v, want invalid_token containing %q", err, tt.wantMsg)
			}
		})
	}
}

// A registry failure is not the token's fault: it must not look like a
// refused token.
func TestVerifyRegistryError(t *testing.T) {
	reg := newRegistry(testOrg)
	reg.err = herald.Errorf(herald.EUNAVAILABLE, "engine down")
	v := newTestVerifier(t, JWTConfig{Secret: testSecret}, reg)
	token, err := Issue([]byte(testSecret), testOrg, "alice", []string{"subscribe"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = v.Verify(context.Background(), token)
	var te *TokenError
	if err == nil || errors.As(err, &te) || herald.ErrorCode(err) != herald.EUNAVAILABLE {
		t.Fatalf("got %v, want the registry's error", err)
	}
}

// A key added to the JWKS after start is found when a token names it.
func TestVerifyJWKSRotation(t *testing.T) {
	ec := testECKeys()
	jwks := newJWKSServer(t, ecJWK(t, ec[0], "old", "ES256"))
	v := newTestVerifier(t, JWTConfig{JWKSURL: jwks.URL}, newRegistry(testOrg))
	if _, _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, ec[0], "old", claims(nil))); err != nil {
		t.Fatal(err)
	}
	jwks.setKeys(ecJWK(t, ec[1], "new", "ES256"))
	before := jwks.count()
	if _, _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, ec[1], "new", claims(nil))); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	if jwks.count() != before+1 {
		t.Fatalf("JWKS fetched %d times for the unknown kid, want 1", jwks.count()-before)
	}
	// The old key is gone from the set, and refetching is rate limited:
	// an unknown kid neither waits nor hits the endpoint again.
	start := time.Now()
	_, _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, ec[0], "old", claims(nil)))
	var te *TokenError
	if !errors.As(err, &te) || te.Code != CodeInvalidToken {
		t.Fatalf("revoked key: got %v", err)
	}
	if time.Since(start) > 5*time.Second || jwks.count() != before+1 {
		t.Fatalf("unknown kid took %v and %d fetches", time.Since(start), jwks.count()-before-1)
	}
}

// The JWKS endpoint being down at start is not fatal, and a later token
// makes the Verifier fetch it.
func TestVerifyJWKSDownAtStart(t *testing.T) {
	ec := testECKeys()
	jwks := newJWKSServer(t, ecJWK(t, ec[0], "k1", "ES256"))
	jwks.setDown(true)
	var logged strings.Builder
	logger := slog.New(slog.NewTextHandler(&syncWriter{w: &logged}, nil))
	v := newTestVerifier(t, JWTConfig{JWKSURL: jwks.URL, Logger: logger}, newRegistry(testOrg))
	if jwks.count() != 1 || !strings.Contains(logged.String(), "JWKS fetch failed") {
		t.Fatalf("%d fetches, log %q", jwks.count(), logged.String())
	}
	jwks.setDown(false)
	if _, _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, ec[0], "k1", claims(nil))); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyJWKSRefresh(t *testing.T) {
	jwks := newJWKSServer(t, ecJWK(t, testECKeys()[0], "k1", "ES256"))
	v := newTestVerifier(t, JWTConfig{JWKSURL: jwks.URL, JWKSRefresh: 20 * time.Millisecond}, newRegistry(testOrg))
	deadline := time.Now().Add(5 * time.Second)
	for jwks.count() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d fetches in 5s with a 20ms refresh interval", jwks.count())
		}
		time.Sleep(10 * time.Millisecond)
	}
	v.Close()
	// After Close no more fetches: goleak in TestMain checks the
	// goroutine is gone.
}

func TestIssue(t *testing.T) {
	secret := []byte(testSecret)
	now := time.Now()
	tests := []struct {
		name   string
		secret []byte
		org    string
		user   string
		scopes []string
		ttl    time.Duration
		want   string
	}{
		{"short secret", []byte("short"), testOrg, "a", []string{"subscribe"}, time.Hour, "at least 32 bytes"},
		{"no org", secret, "", "a", []string{"subscribe"}, time.Hour, "org"},
		{"no user", secret, testOrg, "", []string{"subscribe"}, time.Hour, "user"},
		{"no scopes", secret, testOrg, "a", nil, time.Hour, "scope"},
		{"unknown scope", secret, testOrg, "a", []string{"root"}, time.Hour, `unknown scope "root"`},
		{"zero ttl", secret, testOrg, "a", []string{"subscribe"}, 0, "positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Issue(tt.secret, tt.org, tt.user, tt.scopes, tt.ttl, now)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}

	token, err := Issue(secret, testOrg, "alice", []string{"subscribe"}, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q", token)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	sig, _ := jwt.NewParser().DecodeSegment(parts[2])
	if !hmac.Equal(sig, mac.Sum(nil)) {
		t.Fatal("Issue's token is not HS256 of its content")
	}
}

func TestJWTConfigValidate(t *testing.T) {
	rsaPEM := publicPEM(t, &testRSAKey().PublicKey)
	tests := []struct {
		name string
		cfg  JWTConfig
		want string // "" = valid
	}{
		{"secret", JWTConfig{Secret: testSecret}, ""},
		{"PEM", JWTConfig{PublicKey: rsaPEM}, ""},
		{"JWKS", JWTConfig{JWKSURL: "https://idp.example/jwks.json"}, ""},
		{"explicit algs", JWTConfig{Secret: testSecret, PublicKey: rsaPEM, Algorithms: []string{"HS384", "PS256", "EdDSA"}}, ""},
		{"nothing", JWTConfig{}, "no JWT key configured"},
		{"algs without key", JWTConfig{Algorithms: []string{"HS256"}}, "no JWT key configured"},
		{"short secret", JWTConfig{Secret: "short"}, "at least 32 bytes"},
		{"none", JWTConfig{Secret: testSecret, Algorithms: []string{"HS256", "none"}}, "never allowed"},
		{"unknown alg", JWTConfig{Secret: testSecret, Algorithms: []string{"HS257"}}, `unknown algorithm "HS257"`},
		{"HS without secret", JWTConfig{PublicKey: rsaPEM, Algorithms: []string{"HS256"}}, "HS256 needs auth.jwt_secret"},
		{"RS without key", JWTConfig{Secret: testSecret, Algorithms: []string{"RS256"}}, "RS256 needs auth.jwt_public_key"},
		{"bad URL", JWTConfig{JWKSURL: "idp.example/jwks"}, "auth.jwks_url"},
		{"ftp URL", JWTConfig{JWKSURL: "ftp://idp.example/jwks"}, "auth.jwks_url"},
		{"bad PEM", JWTConfig{PublicKey: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}, "auth.jwt_public_key"},
		{"missing file", JWTConfig{PublicKey: "/nonexistent/key.pem"}, "neither PEM text nor a readable file"},
		{"private key", JWTConfig{PublicKey: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}, "private key"},
		{"small RSA", JWTConfig{PublicKey: publicPEM(t, &mustRSA(1024).PublicKey)}, "at least 2048"},
		{"negative leeway", JWTConfig{Secret: testSecret, Leeway: -time.Second}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
			if tt.cfg.Secret != "" && strings.Contains(err.Error(), tt.cfg.Secret) {
				t.Fatalf("error leaks the secret: %v", err)
			}
		})
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// auth.jwt_public_key may be a file of several PEM blocks of any kind.
func TestVerifyPublicKeyFile(t *testing.T) {
	rsaKey := testRSAKey()
	ec := testECKeys()[2] // P-384
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)})
	path := filepath.Join(t.TempDir(), "keys.pem")
	if err := os.WriteFile(path, append(pkcs1, publicPEM(t, &ec.PublicKey)...), 0o600); err != nil {
		t.Fatal(err)
	}
	v := newTestVerifier(t, JWTConfig{PublicKey: path, Algorithms: []string{"RS256", "ES384"}}, newRegistry(testOrg))
	for name, token := range map[string]string{
		"RS256": sign(t, jwt.SigningMethodRS256, rsaKey, "", claims(nil)),
		"ES384": sign(t, jwt.SigningMethodES384, ec, "", claims(nil)),
	} {
		if _, _, err := v.Verify(context.Background(), token); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// ES256 is not allowed here, and P-384 would not fit it anyway.
	_, _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, testECKeys()[0], "", claims(nil)))
	var te *TokenError
	if !errors.As(err, &te) || te.Code != CodeAlgorithmNotAllowed {
		t.Fatalf("ES256: got %v", err)
	}
}

func TestNewVerifierErrors(t *testing.T) {
	if _, err := NewVerifier(context.Background(), JWTConfig{}, newRegistry()); err == nil || !strings.Contains(err.Error(), "no JWT key") {
		t.Fatalf("nothing configured: %v", err)
	}
	if _, err := NewVerifier(context.Background(), JWTConfig{PublicKey: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}, newRegistry()); err == nil {
		t.Fatal("bad PEM accepted")
	}
	if _, err := NewVerifier(context.Background(), JWTConfig{Secret: testSecret, Algorithms: []string{"HS1"}}, newRegistry()); err == nil {
		t.Fatal("unknown algorithm accepted")
	}
	if _, err := NewVerifier(context.Background(), JWTConfig{Secret: testSecret}, nil); err == nil {
		t.Fatal("nil registry accepted")
	}
}

// One Verifier serves every connection at once.
func TestVerifyConcurrent(t *testing.T) {
	ec := testECKeys()
	jwks := newJWKSServer(t, ecJWK(t, ec[0], "k1", "ES256"))
	v := newTestVerifier(t, JWTConfig{Secret: testSecret, JWKSURL: jwks.URL}, newRegistry(testOrg))
	tokens := []string{
		sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims(nil)),
		sign(t, jwt.SigningMethodES256, ec[0], "k1", claims(nil)),
		sign(t, jwt.SigningMethodES256, ec[0], "", claims(nil)),
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8*len(tokens))
	for range 8 {
		for _, token := range tokens {
			wg.Go(func() {
				if _, _, err := v.Verify(context.Background(), token); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestVerifyNumericDates pins RFC 7519 §2: exp, nbf and iat are
// NumericDates, JSON numbers. golang-jwt also takes a string holding a
// number; herald refuses it, and every other non-number, as invalid.
func TestVerifyNumericDates(t *testing.T) {
	v := newTestVerifier(t, JWTConfig{Secret: testSecret}, newRegistry(testOrg))
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", c) }
	now := time.Now()
	later := now.Add(time.Hour).Unix()
	tests := []struct {
		name    string
		changes map[string]any
		wantMsg string // "" = accepted
	}{
		{name: "numbers", changes: map[string]any{"nbf": now.Unix(), "iat": now.Unix()}},
		{name: "fractional exp", changes: map[string]any{"exp": float64(later) + 0.5}},
		{name: "exponent exp", changes: map[string]any{"exp": 4.1e9}},
		{name: "exp as a numeric string", changes: map[string]any{"exp": strconv.FormatInt(later, 10)}, wantMsg: "exp must be a number"},
		{name: "exp as a date string", changes: map[string]any{"exp": "2099-01-01T00:00:00Z"}, wantMsg: "exp must be a number"},
		{name: "exp true", changes: map[string]any{"exp": true}, wantMsg: "exp must be a number"},
		{name: "exp an object", changes: map[string]any{"exp": map[string]any{"$date": later}}, wantMsg: "exp must be a number"},
		{name: "exp a list", changes: map[string]any{"exp": []int64{later}}, wantMsg: "exp must be a number"},
		{name: "exp null", changes: map[string]any{"exp": json.RawMessage("null")}, wantMsg: "exp must be a number"},
		{name: "nbf as a numeric string", changes: map[string]any{"nbf": strconv.FormatInt(now.Unix(), 10)}, wantMsg: "nbf must be a number"},
		{name: "iat as a numeric string", changes: map[string]any{"iat": strconv.FormatInt(now.Unix(), 10)}, wantMsg: "iat must be a number"},
		{name: "EXP as a string (keys match without case, as for the claim itself)", changes: map[string]any{"exp": nil, "EXP": "4102444800"}, wantMsg: "exp must be a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := v.Verify(context.Background(), hs(claims(tt.changes)))
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var te *TokenError
			if !errors.As(err, &te) || te.Code != CodeInvalidToken || !strings.Contains(te.Message, tt.wantMsg) {
				t.Fatalf("got %v (%T), want %s containing %q", err, err, CodeInvalidToken, tt.wantMsg)
			}
		})
	}
}
