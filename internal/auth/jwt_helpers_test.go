package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/herald-gw/herald"
)

const (
	testOrg    = "5f0c6b2e-4d2a-4c1e-9b7a-2a9d8e4f1c30"
	testSecret = "test-secret-of-at-least-32-bytes!"
)

// fakeRegistry knows some orgs; its other methods are not used.
type fakeRegistry struct {
	herald.Registry
	orgs map[string]bool
	err  error // returned by Org when set
}

func (r fakeRegistry) Org(_ context.Context, uuid string) (herald.Org, error) {
	if r.err != nil {
		return herald.Org{}, r.err
	}
	if !r.orgs[uuid] {
		return herald.Org{}, herald.Errorf(herald.ENOTFOUND, "org %q not found", uuid)
	}
	return herald.Org{UUID: uuid, Name: "acme"}, nil
}

func newRegistry(orgs ...string) fakeRegistry {
	r := fakeRegistry{orgs: map[string]bool{}}
	for _, o := range orgs {
		r.orgs[o] = true
	}
	return r
}

// Keys are generated once: RSA generation is slow under -race.
var (
	testRSAKey = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA(2048) })
	testECKeys = sync.OnceValue(func() []*ecdsa.PrivateKey {
		return []*ecdsa.PrivateKey{mustEC(elliptic.P256()), mustEC(elliptic.P256()), mustEC(elliptic.P384())}
	})
)

func mustRSA(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

func mustEC(c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// publicPEM encodes key's public half as a PKIX PEM block.
func publicPEM(t testing.TB, key any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// sign returns a token of claims signed with key by method, with kid in
// the header when not empty.
func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// handMade joins a header and claims given as JSON with a signature, for
// tokens no library would produce.
func handMade(header, claims string, sig []byte) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(claims)) + "." + enc(sig)
}

// ecJWK renders an EC public key as a JWK.
func ecJWK(t testing.TB, key *ecdsa.PrivateKey, kid, alg string) map[string]string {
	t.Helper()
	raw, err := key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	n := (len(raw) - 1) / 2
	enc := base64.RawURLEncoding.EncodeToString
	return map[string]string{
		"kty": "EC", "crv": key.Curve.Params().Name, "kid": kid, "alg": alg, "use": "sig",
		"x": enc(raw[1 : 1+n]), "y": enc(raw[1+n:]),
	}
}

// jwksServer serves the JWK set that set returns at the time of the
// request, and counts requests.
type jwksServer struct {
	*httptest.Server
	mu       sync.Mutex
	keys     []map[string]string
	requests int
	down     bool // answer 503
}

func newJWKSServer(t testing.TB, keys ...map[string]string) *jwksServer {
	t.Helper()
	s := &jwksServer{keys: keys}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.requests++
		if s.down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"keys": s.keys})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) setKeys(keys ...map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
}

func (s *jwksServer) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

func (s *jwksServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func newTestVerifier(t testing.TB, cfg JWTConfig, reg herald.Registry) *Verifier {
	t.Helper()
	v, err := NewVerifier(context.Background(), cfg, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}
