package auth

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/herald-gw/herald"
)

// Codes of a TokenError, sent to clients as they are.
const (
	CodeMissingToken        = "missing_token"
	CodeInvalidToken        = "invalid_token"
	CodeTokenExpired        = "token_expired"
	CodeAlgorithmNotAllowed = "algorithm_not_allowed"
	CodeUnknownOrg          = "unknown_org"
	CodeInsufficientScope   = "insufficient_scope"
	CodeTokenRevoked        = "token_revoked"
)

// MaxTokenBytes bounds a token: anything longer is refused before parsing.
const MaxTokenBytes = 8 << 10

// TokenError is what Verify returns on a refused token. Code is one of
// the Code* constants; Message tells a user what is wrong and never
// contains key material.
type TokenError struct {
	Code    string
	Message string
}

func (e *TokenError) Error() string { return e.Message }

func refuse(code, format string, args ...any) *TokenError {
	return &TokenError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Verifier checks JWTs against the configured keys and the registry. It
// is safe for concurrent use.
type Verifier struct {
	cfg     JWTConfig // with defaults applied
	secret  []byte
	pemKeys []crypto.PublicKey
	jwks    keyfunc.Keyfunc // nil without a JWKS URL
	stop    context.CancelFunc
	parser  *jwt.Parser
	reg     herald.Registry
}

// NewVerifier checks cfg (see JWTConfig.Validate), loads the PEM keys and,
// with a JWKS URL, fetches the key set and keeps refreshing it until ctx
// is done or Close is called. A JWKS endpoint that cannot be reached at
// start is not an error: it is logged and fetched again when a token
// names a kid the Verifier does not know.
func NewVerifier(ctx context.Context, cfg JWTConfig, reg herald.Registry) (*Verifier, error) {
	if reg == nil {
		return nil, errors.New("auth: NewVerifier needs a registry")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validateSettings(); err != nil {
		return nil, err
	}
	pemKeys, err := loadPublicKeys(cfg.PublicKey)
	if err != nil {
		return nil, err
	}
	v := &Verifier{
		cfg:     cfg,
		secret:  []byte(cfg.Secret),
		pemKeys: pemKeys,
		reg:     reg,
		stop:    func() {},
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(cfg.Algorithms),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	if cfg.JWKSURL != "" {
		jctx, cancel := context.WithCancel(ctx)
		jwks, transport, err := newJWKS(jctx, cfg)
		if err != nil {
			cancel()
			return nil, err
		}
		v.jwks = jwks
		v.stop = func() {
			cancel()
			transport.CloseIdleConnections()
		}
	}
	return v, nil
}

// Close stops the JWKS refresh; call it once the Verifier is no longer
// needed. Verify keeps working with the keys already fetched.
func (v *Verifier) Close() error {
	v.stop()
	return nil
}

// tokenClaims are the claims herald reads; others are ignored.
type tokenClaims struct {
	Org string `json:"org"`
	// Credential is herald's own claim, in the tokens it issues: what the
	// token was traded for (herald.Principal.Credential).
	Credential string    `json:"herald_credential"`
	Scopes     scopeList `json:"scopes"`
	Scope      string    `json:"scope"` // OAuth's space-separated form
	jwt.RegisteredClaims
}

// UnmarshalJSON decodes the claims, refusing dates that are not JSON
// numbers: RFC 7519 makes exp, nbf and iat NumericDates, and golang-jwt
// would also take a string holding a number. The refusal is a TokenError,
// which the parser wraps and explain finds. The dates are decoded by the
// same rules as the claims (last key wins, names match without case), so
// the value checked is the value used.
func (c *tokenClaims) UnmarshalJSON(b []byte) error {
	var dates struct {
		Exp json.RawMessage `json:"exp"`
		Nbf json.RawMessage `json:"nbf"`
		Iat json.RawMessage `json:"iat"`
	}
	// Claims that are not a JSON object fail below, with the message
	// they always had.
	if json.Unmarshal(b, &dates) == nil {
		for _, d := range []struct {
			name string
			raw  json.RawMessage
		}{{"exp", dates.Exp}, {"nbf", dates.Nbf}, {"iat", dates.Iat}} {
			if kind := jsonKind(d.raw); d.raw != nil && kind != "number" {
				return refuse(CodeInvalidToken, "token claim %s must be a number (seconds since 1970, an RFC 7519 NumericDate), not %s", d.name, kind)
			}
		}
	}
	type plain tokenClaims // without this method
	return json.Unmarshal(b, (*plain)(c))
}

// jsonKind names the kind of raw, a valid JSON value.
func jsonKind(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "empty"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// scopeList accepts an array of strings or, as OAuth writes scopes, one
// space-separated string.
type scopeList []string

func (s *scopeList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = strings.Fields(one)
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("scopes must be an array of strings or a space-separated string")
	}
	*s = many
	return nil
}

// Verify checks the token's signature and algorithm, exp (required), nbf
// and iat with the configured leeway, iss and aud when configured, the
// org, sub and scope claims, and that the org exists. It returns the
// principal, holding only herald's scopes of the token, and the token's
// expiry. A "Bearer " prefix is accepted. A refused token gives a
// *TokenError; any other error is the registry's and means the token
// could not be checked.
func (v *Verifier) Verify(ctx context.Context, token string) (herald.Principal, time.Time, error) {
	token = strings.TrimSpace(token)
	if len(token) >= 6 && strings.EqualFold(token[:6], "bearer") && (len(token) == 6 || token[6] == ' ') {
		token = strings.TrimSpace(token[6:])
	}
	if token == "" {
		return herald.Principal{}, time.Time{}, refuse(CodeMissingToken, "no token given")
	}
	if len(token) > MaxTokenBytes {
		return herald.Principal{}, time.Time{}, refuse(CodeInvalidToken, "token is %d bytes, more than the %d allowed", len(token), MaxTokenBytes)
	}
	var claims tokenClaims
	parsed, err := v.parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) { return v.key(ctx, t) })
	if err != nil {
		return herald.Principal{}, time.Time{}, v.explain(parsed, &claims, err)
	}
	p, err := v.principal(ctx, &claims)
	if err != nil {
		return herald.Principal{}, time.Time{}, err
	}
	return p, claims.ExpiresAt.Time, nil
}

// principal checks herald's own claims and the org.
func (v *Verifier) principal(ctx context.Context, c *tokenClaims) (herald.Principal, error) {
	if c.Org == "" {
		return herald.Principal{}, refuse(CodeInvalidToken, "token has no org claim")
	}
	if c.Subject == "" {
		return herald.Principal{}, refuse(CodeInvalidToken, "token has no sub claim (the user)")
	}
	granted := []string(c.Scopes)
	if len(granted) == 0 {
		granted = strings.Fields(c.Scope)
	}
	if c.Scopes == nil && c.Scope == "" {
		return herald.Principal{}, refuse(CodeInvalidToken, "token has no scopes claim")
	}
	var scopes []string
	for _, s := range granted {
		if herald.ValidScope(s) && !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	if len(scopes) == 0 {
		return herald.Principal{}, refuse(CodeInsufficientScope, "token grants none of herald's scopes (%s); it has %s",
			strings.Join(herald.AllScopes, ", "), quoteList(granted, 5))
	}
	org, err := v.reg.Org(ctx, c.Org)
	if err != nil {
		if herald.ErrorCode(err) == herald.ENOTFOUND {
			return herald.Principal{}, refuse(CodeUnknownOrg, "org %q does not exist", c.Org)
		}
		return herald.Principal{}, fmt.Errorf("auth: looking up the token's org: %w", err)
	}
	if c.Credential != "" {
		valid, err := CheckCredential(ctx, v.reg, org.UUID, c.Credential)
		if err != nil {
			return herald.Principal{}, fmt.Errorf("auth: checking the token's credential: %w", err)
		}
		if !valid {
			return herald.Principal{}, refuse(CodeTokenRevoked, "the %s this token was issued for was revoked", credentialKind(c.Credential))
		}
	}
	return herald.Principal{Org: org.UUID, User: c.Subject, Scopes: scopes, Credential: c.Credential}, nil
}

// CheckCredential reports whether cred, a herald.Principal.Credential of
// org, still lets its holder subscribe: an API key that exists, is the
// org's and holds the subscribe scope, or a user of the org that exists.
// The empty credential (a token of another issuer) is valid. An error is
// the registry's, and means the credential could not be checked.
func CheckCredential(ctx context.Context, reg herald.Registry, org, cred string) (bool, error) {
	var err error
	switch kind, name, _ := strings.Cut(cred, ":"); {
	case cred == "":
		return true, nil
	case kind == "key":
		var key herald.APIKey
		if key, err = reg.APIKey(ctx, name); err == nil {
			return key.Org == org && slices.Contains(key.Scopes, herald.ScopeSubscribe), nil
		}
	case kind == "user":
		if _, err = reg.User(ctx, org, name); err == nil {
			return true, nil
		}
	default:
		return false, nil
	}
	if herald.ErrorCode(err) == herald.ENOTFOUND {
		return false, nil
	}
	return false, err
}

func credentialKind(cred string) string {
	if strings.HasPrefix(cred, "key:") {
		return "API key"
	}
	return "user"
}

// explain turns a parse failure into a TokenError that says what is wrong.
func (v *Verifier) explain(t *jwt.Token, c *tokenClaims, err error) error {
	var te *TokenError
	if errors.As(err, &te) {
		return te
	}
	if t != nil && t.Header != nil {
		alg, ok := t.Header["alg"].(string)
		if !ok {
			return refuse(CodeInvalidToken, "token header has no alg")
		}
		if !slices.Contains(v.cfg.Algorithms, alg) {
			return v.algNotAllowed(alg)
		}
	}
	at := func(d *jwt.NumericDate) string { return d.UTC().Format(time.RFC3339) }
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return refuse(CodeInvalidToken, "malformed token: %s", strings.TrimPrefix(err.Error(), jwt.ErrTokenMalformed.Error()+": "))
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return refuse(CodeInvalidToken, "token signature does not match")
	case c.ExpiresAt == nil && errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return refuse(CodeInvalidToken, "token has no exp claim")
	case errors.Is(err, jwt.ErrTokenExpired):
		return refuse(CodeTokenExpired, "token expired at %s", at(c.ExpiresAt))
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return refuse(CodeInvalidToken, "token not valid before %s", at(c.NotBefore))
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return refuse(CodeInvalidToken, "token issued in the future (iat %s)", at(c.IssuedAt))
	case v.cfg.Issuer != "" && c.Issuer != v.cfg.Issuer:
		return refuse(CodeInvalidToken, "token issuer is %q, expected %q", c.Issuer, v.cfg.Issuer)
	case errors.Is(err, jwt.ErrTokenInvalidAudience) || errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && v.cfg.Audience != "":
		return refuse(CodeInvalidToken, "token audience %s does not include %q", quoteList(c.Audience, 5), v.cfg.Audience)
	}
	return refuse(CodeInvalidToken, "invalid token: %s", err)
}

func (v *Verifier) algNotAllowed(alg string) *TokenError {
	allowed := strings.Join(v.cfg.Algorithms, ", ")
	if alg == "none" {
		return refuse(CodeAlgorithmNotAllowed, "unsigned token (alg none) refused, allowed: %s", allowed)
	}
	return refuse(CodeAlgorithmNotAllowed, "token signed with %.20q, allowed: %s", alg, allowed)
}

// quoteList renders at most n items of list for a message.
func quoteList(list []string, n int) string {
	if len(list) == 0 {
		return "none"
	}
	var b strings.Builder
	b.WriteByte('[')
	for i, s := range list {
		if i == n {
			fmt.Fprintf(&b, " and %d more", len(list)-n)
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.40q", s)
	}
	b.WriteByte(']')
	return b.String()
}

// issuedClaims are the claims Issue writes.
type issuedClaims struct {
	Org        string   `json:"org"`
	Scopes     []string `json:"scopes"`
	Credential string   `json:"herald_credential,omitempty"`
	jwt.RegisteredClaims
}

// Issue returns an HS256 token for user of org with scopes, valid for ttl
// from now. The secret must be at least MinSecretBytes long.
func Issue(secret []byte, org, user string, scopes []string, ttl time.Duration, now time.Time) (string, error) {
	return IssueFor(secret, herald.Principal{Org: org, User: user, Scopes: scopes}, ttl, now)
}

// IssueFor is Issue for p; the token carries p's Credential, and a
// verifier refuses it once that credential is revoked.
func IssueFor(secret []byte, p herald.Principal, ttl time.Duration, now time.Time) (string, error) {
	org, user, scopes := p.Org, p.User, p.Scopes
	switch {
	case len(secret) < MinSecretBytes:
		return "", fmt.Errorf("auth: the JWT secret must be at least %d bytes", MinSecretBytes)
	case org == "":
		return "", errors.New("auth: a token needs an org")
	case user == "":
		return "", errors.New("auth: a token needs a user")
	case len(scopes) == 0:
		return "", errors.New("auth: a token needs at least one scope")
	case ttl <= 0:
		return "", fmt.Errorf("auth: token lifetime must be positive, not %s", ttl)
	}
	for _, s := range scopes {
		if !herald.ValidScope(s) {
			return "", fmt.Errorf("auth: unknown scope %q (%s)", s, strings.Join(herald.AllScopes, ", "))
		}
	}
	claims := issuedClaims{
		Org:        org,
		Scopes:     scopes,
		Credential: p.Credential,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   user,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
}
