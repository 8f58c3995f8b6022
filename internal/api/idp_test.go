package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/auth"
	"github.com/herald-gw/herald/internal/inmem"
)

const (
	idpOrgA = "5f0c6b2e-4d2a-4c1e-9b7a-2a9d8e4f1c30"
	idpOrgB = "0b9e5c1a-7d3f-4a2b-8c6d-1e2f3a4b5c6d"
)

// idpRegistry holds org acme (users alice and carol, a subscribe key and a
// publish-only key) and org beta (a user carol too).
func idpRegistry(t *testing.T) *inmem.Engine {
	t.Helper()
	ctx := context.Background()
	eng := inmem.New(inmem.Config{})
	for _, o := range []herald.Org{{UUID: idpOrgA, Name: "acme"}, {UUID: idpOrgB, Name: "beta"}} {
		if err := eng.PutOrg(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	users := []struct{ org, name, password string }{
		{idpOrgA, "alice", "alice-pw"}, {idpOrgA, "carol", "carol-a"}, {idpOrgB, "carol", "carol-b"},
	}
	for _, u := range users {
		hash, err := bcrypt.GenerateFromPassword([]byte(u.password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		if err := eng.PutUser(ctx, herald.User{Org: u.org, Name: u.name, PasswordHash: string(hash)}); err != nil {
			t.Fatal(err)
		}
	}
	keys := map[string][]string{"acme-subscriber": {herald.ScopeSubscribe, herald.ScopePublish}, "acme-publisher": {herald.ScopePublish}}
	for key, scopes := range keys {
		if err := eng.PutAPIKey(ctx, herald.APIKey{Hash: herald.HashAPIKey(key), Org: idpOrgA, Name: key, Scopes: scopes}); err != nil {
			t.Fatal(err)
		}
	}
	return eng
}

// tokenPost posts form to path on h.
func tokenPost(h http.Handler, path string, form url.Values, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func grant(user, password string) url.Values {
	return url.Values{"grant_type": {"password"}, "username": {user}, "password": {password}, "client_id": {"GrantValidatorClient"}}
}

func TestIDPIssuesTokens(t *testing.T) {
	eng := idpRegistry(t)
	a := &API{Registry: eng, IDP: IDPConfig{Secret: []byte(testSecret), TTL: 30 * time.Minute}}
	h := a.Handler(http.NotFoundHandler())
	verifier, err := auth.NewVerifier(context.Background(), auth.JWTConfig{Secret: testSecret}, eng)
	if err != nil {
		t.Fatal(err)
	}
	defer verifier.Close()

	tests := []struct {
		path, user, password string
		org, sub             string
	}{
		{"/API/IDP/connect/token", "alice", "alice-pw", idpOrgA, "alice"},
		{"/api/IDP/connect/token/", "acme/carol", "carol-a", idpOrgA, "carol"},
		{"/api/idp/connect/token", "beta/carol", "carol-b", idpOrgB, "carol"},
		{"/IDP/connect/token", idpOrgB + "/carol", "carol-b", idpOrgB, "carol"},
		{"/API/IDP/connect/token", "whoever", "acme-subscriber", idpOrgA, "key:acme-subscriber"},
	}
	for _, tt := range tests {
		w := tokenPost(h, tt.path, grant(tt.user, tt.password))
		if w.Code != http.StatusOK {
			t.Fatalf("%s as %s: %d %s", tt.path, tt.user, w.Code, w.Body)
		}
		if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
			t.Fatalf("Cache-Control %q", cc)
		}
		var answer tokenAnswer
		if err := json.Unmarshal(w.Body.Bytes(), &answer); err != nil {
			t.Fatal(err)
		}
		if answer.TokenType != "Bearer" || answer.ExpiresIn != 1800 || answer.Scope != herald.ScopeSubscribe {
			t.Fatalf("%s: %+v", tt.user, answer)
		}
		p, exp, err := verifier.Verify(context.Background(), answer.AccessToken)
		if err != nil {
			t.Fatalf("%s: the token does not verify: %v", tt.user, err)
		}
		if p.Org != tt.org || p.User != tt.sub || len(p.Scopes) != 1 || p.Scopes[0] != herald.ScopeSubscribe {
			t.Fatalf("%s: principal %+v", tt.user, p)
		}
		if left := time.Until(exp); left < 29*time.Minute || left > 31*time.Minute {
			t.Fatalf("%s: expires in %s", tt.user, left)
		}
	}
}

func TestIDPRefusals(t *testing.T) {
	a := &API{Registry: idpRegistry(t), IDP: IDPConfig{Secret: []byte(testSecret)}}
	h := a.Handler(http.NotFoundHandler())
	badLogin := `{"error":"invalid_grant","error_description":"invalid username or password"}`
	tests := []struct {
		name   string
		form   url.Values
		status int
		want   string
	}{
		{"wrong password", grant("alice", "nope"), 400, badLogin},
		{"unknown user", grant("mallory", "alice-pw"), 400, badLogin},
		{"another org's password", grant("acme/carol", "carol-b"), 400, badLogin},
		{"key without subscribe", grant("x", "acme-publisher"), 400, badLogin},
		{"user in two orgs", grant("carol", "carol-a"), 400, `exists in 2 orgs: give org/user`},
		{"no grant type", url.Values{"username": {"alice"}, "password": {"alice-pw"}}, 400, `"error":"invalid_request"`},
		{"client credentials", url.Values{"grant_type": {"client_credentials"}}, 400, `"error":"unsupported_grant_type"`},
		{"no password", grant("alice", ""), 400, "username and password are required"},
		{"huge body", grant("alice", strings.Repeat("x", maxTokenFormBytes)), 400, "larger than 8192 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tokenPost(h, "/API/IDP/connect/token", tt.form)
			if w.Code != tt.status || !strings.Contains(w.Body.String(), tt.want) {
				t.Fatalf("%d %s, want %d with %s", w.Code, w.Body, tt.status, tt.want)
			}
			if strings.Contains(w.Body.String(), "access_token") {
				t.Fatalf("a token in a refusal: %s", w.Body)
			}
		})
	}

	r := httptest.NewRequest(http.MethodPost, "/API/IDP/connect/token", strings.NewReader(`{"username":"alice"}`))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 400 || !strings.Contains(w.Body.String(), "must be a form") {
		t.Fatalf("a JSON body: %d %s", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/API/IDP/connect/token", nil))
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "POST, OPTIONS" {
		t.Fatalf("GET: %d %v", w.Code, w.Header())
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/API/IDP/connect/tokens", nil))
	if w.Code != http.StatusNotFound {
		t.Fatalf("another path reached the endpoint: %d", w.Code)
	}

	// Only public keys: herald cannot sign.
	noSecret := (&API{Registry: a.Registry}).Handler(http.NotFoundHandler())
	if w := tokenPost(noSecret, "/API/IDP/connect/token", grant("alice", "alice-pw")); w.Code != http.StatusNotImplemented {
		t.Fatalf("without a secret: %d %s", w.Code, w.Body)
	}
}

// After FailureBurst refused logins from one address, or for one user
// name, the endpoint answers 429 without checking the password, and lets
// one more attempt through every FailureEvery.
func TestIDPFailureLimits(t *testing.T) {
	now := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	checks := 0
	a := &API{Registry: idpRegistry(t), IDP: IDPConfig{Secret: []byte(testSecret), FailureBurst: 3, FailureEvery: 10 * time.Second,
		now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
		compare: func(hash, password []byte) error {
			mu.Lock()
			checks++
			mu.Unlock()
			return bcrypt.CompareHashAndPassword(hash, password)
		}}}
	h := a.Handler(http.NotFoundHandler())
	from := func(ip string) func(r *http.Request) { return func(r *http.Request) { r.RemoteAddr = ip } }
	post := func(user, password string, opt func(*http.Request)) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/API/IDP/connect/token", strings.NewReader(grant(user, password).Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		opt(r)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for range 3 {
		if w := post("alice", "guess", from("192.0.2.1:5000")); w.Code != 400 {
			t.Fatalf("a refused login: %d %s", w.Code, w.Body)
		}
	}
	before := checks
	w := post("alice", "alice-pw", from("192.0.2.1:5001"))
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "10" {
		t.Fatalf("past the burst: %d %v %s", w.Code, w.Header(), w.Body)
	}
	// The user name is limited from any address, and the address for any
	// user; an IPv6 client counts by its /64.
	if w := post("ALICE", "alice-pw", from("198.51.100.7:1")); w.Code != http.StatusTooManyRequests {
		t.Fatalf("alice from another address: %d", w.Code)
	}
	if w := post("bob", "x", from("192.0.2.1:2")); w.Code != http.StatusTooManyRequests {
		t.Fatalf("another user from the address: %d", w.Code)
	}
	if checks != before {
		t.Fatalf("%d password checks past the limit", checks-before)
	}
	for range 3 {
		post("dave", "guess", from("[2001:db8:1:2::10]:1"))
	}
	if w := post("erin", "x", from("[2001:db8:1:2::99]:1")); w.Code != http.StatusTooManyRequests {
		t.Fatalf("the same /64: %d", w.Code)
	}
	if w := post("carol", "carol-a", from("[2001:db8:1:3::1]:1")); w.Code == http.StatusTooManyRequests {
		t.Fatalf("another /64 is limited: %d %s", w.Code, w.Body)
	}

	mu.Lock()
	now = now.Add(10 * time.Second)
	mu.Unlock()
	if w := post("alice", "alice-pw", from("192.0.2.1:5002")); w.Code != http.StatusOK {
		t.Fatalf("after FailureEvery: %d %s", w.Code, w.Body)
	}
}

// With every check slot taken, a request waits CheckWait for one, then
// gets 503 with Retry-After.
func TestIDPBoundsPasswordChecks(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	a := &API{Registry: idpRegistry(t), IDP: IDPConfig{Secret: []byte(testSecret), MaxChecks: 1, CheckWait: 50 * time.Millisecond,
		compare: func(hash, password []byte) error {
			entered <- struct{}{}
			<-release
			return bcrypt.CompareHashAndPassword(hash, password)
		}}}
	h := a.Handler(http.NotFoundHandler())
	first := make(chan *httptest.ResponseRecorder)
	go func() { first <- tokenPost(h, "/API/IDP/connect/token", grant("alice", "alice-pw")) }()
	<-entered
	w := tokenPost(h, "/API/IDP/connect/token", grant("acme/carol", "carol-a"))
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "temporarily_unavailable") || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("with the slot taken: %d %v %s", w.Code, w.Header(), w.Body)
	}
	close(release)
	if w := <-first; w.Code != http.StatusOK {
		t.Fatalf("the first login: %d %s", w.Code, w.Body)
	}
}

func TestIDPCORS(t *testing.T) {
	reg := idpRegistry(t)
	anyOrigin := (&API{Registry: reg, IDP: IDPConfig{Secret: []byte(testSecret)}}).Handler(http.NotFoundHandler())
	listed := (&API{Registry: reg, IDP: IDPConfig{Secret: []byte(testSecret), CORSOrigins: []string{"https://ops.example.com"}}}).Handler(http.NotFoundHandler())

	preflight := httptest.NewRequest(http.MethodOptions, "/API/IDP/connect/token", nil)
	preflight.Header.Set("Origin", "http://localhost:3000")
	preflight.Header.Set("Access-Control-Request-Method", "POST")
	preflight.Header.Set("Access-Control-Request-Headers", "content-type")
	w := httptest.NewRecorder()
	anyOrigin.ServeHTTP(w, preflight)
	if w.Code != http.StatusNoContent || w.Header().Get("Access-Control-Allow-Origin") != "*" ||
		w.Header().Get("Access-Control-Allow-Methods") != "POST, OPTIONS" || w.Header().Get("Access-Control-Allow-Headers") != "content-type" {
		t.Fatalf("preflight: %d %v", w.Code, w.Header())
	}
	if w := tokenPost(anyOrigin, "/API/IDP/connect/token", grant("alice", "alice-pw"), "Origin", "http://localhost:3000"); w.Header().Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("the POST: %v", w.Header())
	}
	if w := tokenPost(listed, "/API/IDP/connect/token", grant("alice", "nope"), "Origin", "https://OPS.example.com"); w.Header().Get("Access-Control-Allow-Origin") != "https://OPS.example.com" {
		t.Fatalf("a listed origin, refused login: %v", w.Header())
	}
	if w := tokenPost(listed, "/API/IDP/connect/token", grant("alice", "alice-pw"), "Origin", "https://evil.example"); w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("an origin not listed: %v", w.Header())
	}
}
