package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// JWTConfig is the auth config for tokens. Each field names its config
// key; zero values get the defaults given, applied in one place
// (withDefaults).
type JWTConfig struct {
	Secret    string // HS256 shared secret (auth.jwt_secret), at least MinSecretBytes
	PublicKey string // PEM of RSA, EC or Ed25519 public keys or certificates, or a path to a PEM file (auth.jwt_public_key)
	JWKSURL   string // JWKS endpoint for RS256/ES256 keys selected by kid (auth.jwks_url)
	// Algorithms are the allowed algs (auth.jwt_algorithms); default:
	// HS256 if Secret is set, plus RS256 and ES256 if PublicKey or JWKSURL
	// is set. "none" is never allowed.
	Algorithms []string
	Issuer     string        // if set, the iss claim must equal it (auth.jwt_issuer)
	Audience   string        // if set, aud must contain it (auth.jwt_audience)
	Leeway     time.Duration // clock skew allowed on exp/nbf/iat; default 30s
	// JWKSRefresh is how often the JWKS is fetched again; default 1h. A
	// token naming an unknown kid also makes the Verifier fetch it, at most
	// once a minute, so rotated keys are picked up sooner.
	JWKSRefresh time.Duration
	// Logger receives JWKS fetch failures; default slog.Default().
	Logger *slog.Logger
}

// MinSecretBytes is the shortest HS256 secret accepted: RFC 7518 §3.2
// asks for a key at least as long as the hash.
const MinSecretBytes = 32

// jwksFetchTimeout bounds one fetch of the JWKS, and how long a Verify
// waits for a fetch caused by an unknown kid.
const jwksFetchTimeout = 10 * time.Second

// algorithms herald knows, by the kind of key that verifies them.
var (
	hmacAlgs  = []string{"HS256", "HS384", "HS512"}
	rsaAlgs   = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	ecdsaAlgs = map[string]string{"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"} // alg → curve
)

func knownAlgorithm(alg string) bool {
	return slices.Contains(hmacAlgs, alg) || slices.Contains(rsaAlgs, alg) || ecdsaAlgs[alg] != "" || alg == "EdDSA"
}

func (c JWTConfig) withDefaults() JWTConfig {
	if len(c.Algorithms) == 0 {
		var algs []string
		if c.Secret != "" {
			algs = append(algs, "HS256")
		}
		if c.PublicKey != "" || c.JWKSURL != "" {
			algs = append(algs, "RS256", "ES256")
		}
		c.Algorithms = algs
	}
	if c.Leeway == 0 {
		c.Leeway = 30 * time.Second
	}
	if c.JWKSRefresh == 0 {
		c.JWKSRefresh = time.Hour
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports the first problem of the config, naming the setting:
// no key at all, a short secret, an unknown or disallowed algorithm, an
// algorithm without a key to check it, a bad URL, or a public key that
// cannot be read or parsed (it reads the PEM file). It does not contact
// the JWKS endpoint.
func (c JWTConfig) Validate() error {
	c = c.withDefaults()
	if err := c.validateSettings(); err != nil {
		return err
	}
	_, err := loadPublicKeys(c.PublicKey)
	return err
}

// validateSettings is Validate without reading the public key.
func (c JWTConfig) validateSettings() error {
	if c.Secret == "" && c.PublicKey == "" && c.JWKSURL == "" {
		return errors.New("auth: no JWT key configured: set auth.jwt_secret, auth.jwt_public_key or auth.jwks_url")
	}
	if c.Secret != "" && len(c.Secret) < MinSecretBytes {
		return fmt.Errorf("auth.jwt_secret must be at least %d bytes (it has %d); generate one with `openssl rand -base64 32`", MinSecretBytes, len(c.Secret))
	}
	for _, alg := range c.Algorithms {
		switch {
		case strings.EqualFold(alg, "none"):
			return errors.New(`auth.jwt_algorithms: "none" (unsigned tokens) is never allowed`)
		case !knownAlgorithm(alg):
			return fmt.Errorf("auth.jwt_algorithms: unknown algorithm %q (known: %s, %s, ES256, ES384, ES512, EdDSA)",
				alg, strings.Join(hmacAlgs, ", "), strings.Join(rsaAlgs, ", "))
		case slices.Contains(hmacAlgs, alg) && c.Secret == "":
			return fmt.Errorf("auth.jwt_algorithms: %s needs auth.jwt_secret", alg)
		case !slices.Contains(hmacAlgs, alg) && c.PublicKey == "" && c.JWKSURL == "":
			return fmt.Errorf("auth.jwt_algorithms: %s needs auth.jwt_public_key or auth.jwks_url", alg)
		}
	}
	if c.JWKSURL != "" {
		u, err := url.Parse(c.JWKSURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("auth.jwks_url must be an http or https URL, not %q", c.JWKSURL)
		}
	}
	if c.Leeway < 0 || c.JWKSRefresh < 0 {
		return errors.New("auth: JWT leeway and JWKS refresh interval may not be negative")
	}
	return nil
}

// loadPublicKeys reads every public key of s: PEM text, or the path of a
// PEM file. PKIX public keys, PKCS #1 RSA public keys and certificates
// are accepted; several may follow each other (key rotation).
func loadPublicKeys(s string) ([]crypto.PublicKey, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	data := []byte(s)
	if !strings.Contains(s, "-----BEGIN") {
		var err error
		if data, err = os.ReadFile(strings.TrimSpace(s)); err != nil {
			return nil, fmt.Errorf("auth.jwt_public_key is neither PEM text nor a readable file: %w", err)
		}
	}
	var keys []crypto.PublicKey
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		key, err := parsePublicKey(block)
		if err != nil {
			return nil, fmt.Errorf("auth.jwt_public_key: PEM block %d (%s): %w", n, block.Type, err)
		}
		if err := checkKey(key); err != nil {
			return nil, fmt.Errorf("auth.jwt_public_key: PEM block %d: %w", n, err)
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, errors.New("auth.jwt_public_key holds no PEM block")
	}
	return keys, nil
}

func parsePublicKey(block *pem.Block) (crypto.PublicKey, error) {
	switch block.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		return cert.PublicKey, nil
	}
	if strings.Contains(block.Type, "PRIVATE") {
		return nil, errors.New("this is a private key: give the public key only")
	}
	return nil, errors.New("not a public key or certificate")
}

// checkKey refuses keys herald cannot or should not verify with.
func checkKey(key crypto.PublicKey) error {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits, at least 2048 needed", k.N.BitLen())
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return fmt.Errorf("unsupported key type %T (RSA, EC or Ed25519)", key)
	}
	return nil
}

// fits reports whether key verifies tokens signed with alg.
func fits(alg string, key crypto.PublicKey) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return slices.Contains(rsaAlgs, alg) && k.N.BitLen() >= 2048
	case *ecdsa.PublicKey:
		return ecdsaAlgs[alg] != "" && ecdsaAlgs[alg] == k.Curve.Params().Name
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// newJWKS fetches the JWKS and refreshes it until ctx is done. Its own
// transport lets Close drop the idle connection to the endpoint.
func newJWKS(ctx context.Context, cfg JWTConfig) (keyfunc.Keyfunc, *http.Transport, error) {
	logger := cfg.Logger
	transport := http.DefaultTransport.(*http.Transport).Clone()
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.JWKSURL}, keyfunc.Override{
		Client:            &http.Client{Transport: transport, Timeout: jwksFetchTimeout},
		HTTPTimeout:       jwksFetchTimeout,
		RefreshInterval:   cfg.JWKSRefresh,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(time.Minute), 1),
		RateLimitWaitMax:  jwksFetchTimeout,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(fetchCtx context.Context, err error) {
				if ctx.Err() != nil {
					return // closed mid-fetch
				}
				logger.WarnContext(fetchCtx, "JWKS fetch failed; tokens signed with its keys are refused until it succeeds", "url", u, "err", err)
			}
		},
	})
	if err != nil {
		transport.CloseIdleConnections()
		return nil, nil, fmt.Errorf("auth.jwks_url: %w", err)
	}
	return kf, transport, nil
}

// key returns what checks the signature of t: the secret for HMAC, else
// the configured public keys that fit the algorithm — the JWKS key named
// by kid (every JWKS key without a kid) and the PEM keys. jwt has already
// checked that the algorithm is allowed.
func (v *Verifier) key(ctx context.Context, t *jwt.Token) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		return nil, refuse(CodeInvalidToken, "token has critical header parameters (crit), which herald does not support")
	}
	alg := t.Method.Alg()
	if slices.Contains(hmacAlgs, alg) {
		return v.secret, nil
	}
	var set jwt.VerificationKeySet
	for _, k := range v.pemKeys {
		if fits(alg, k) {
			set.Keys = append(set.Keys, k)
		}
	}
	if v.jwks != nil {
		jwks, err := v.jwksKeys(ctx, t, alg)
		if err != nil && len(set.Keys) == 0 {
			return nil, err
		}
		set.Keys = append(set.Keys, jwks...)
	}
	if len(set.Keys) == 0 {
		return nil, refuse(CodeInvalidToken, "no key configured verifies %s tokens", alg)
	}
	return set, nil
}

// jwksKeys returns the JWKS keys that may have signed t.
func (v *Verifier) jwksKeys(ctx context.Context, t *jwt.Token, alg string) ([]jwt.VerificationKey, error) {
	store := v.jwks.Storage()
	var jwks []jwkset.JWK
	if raw, ok := t.Header["kid"]; ok {
		kid, ok := raw.(string)
		if !ok {
			return nil, refuse(CodeInvalidToken, "token header kid is not a string")
		}
		jwk, err := store.KeyRead(ctx, kid)
		if err != nil {
			return nil, refuse(CodeInvalidToken, "no key with kid %.64q in the JWKS", kid)
		}
		jwks = []jwkset.JWK{jwk}
	} else {
		all, err := store.KeyReadAll(ctx)
		if err != nil {
			return nil, refuse(CodeInvalidToken, "the JWKS has no keys")
		}
		jwks = all
	}
	var keys []jwt.VerificationKey
	for _, jwk := range jwks {
		m := jwk.Marshal()
		if (m.ALG != "" && m.ALG.String() != alg) || (m.USE != "" && m.USE != jwkset.UseSig) {
			continue
		}
		key := jwk.Key()
		if p, ok := key.(interface{ Public() crypto.PublicKey }); ok {
			key = p.Public()
		}
		if fits(alg, key) {
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return nil, refuse(CodeInvalidToken, "no key in the JWKS verifies %s tokens with this kid", alg)
	}
	return keys, nil
}
