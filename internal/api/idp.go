package api

import (
	"context"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/auth"
)

// The token endpoint's paths, lower case and without a trailing slash:
// requests match them whatever the case (the vendor's samples use both
// /API/IDP/... and /api/IDP/...).
var idpPaths = []string{"/api/idp/connect/token", "/idp/connect/token"}

// maxTokenFormBytes bounds the token endpoint's form body.
const maxTokenFormBytes = 8 << 10

// IDPConfig sets the token endpoint, POST /API/IDP/connect/token (the
// OAuth password grant of Milestone's identity provider). Zero values get
// the defaults given, applied in withDefaults.
type IDPConfig struct {
	// Secret signs the tokens (HS256); the verifier must accept it. Nil:
	// herald cannot sign (only public keys are configured), and the
	// endpoint answers 501 unsupported_grant_type.
	Secret []byte
	TTL    time.Duration // token lifetime; default 1h
	// CORSOrigins are the browser origins allowed to call the endpoint;
	// default ["*"] (any: the endpoint uses no cookies).
	CORSOrigins []string
	// MaxChecks bounds the bcrypt password checks running at once;
	// default GOMAXPROCS/2, at least 1. A request waits up to CheckWait
	// (default 5s) for a turn, then gets 503 temporarily_unavailable.
	MaxChecks int
	CheckWait time.Duration
	// Failures per remote IP (IPv6: per /64) and per user name: a burst of
	// FailureBurst (default 10) refused logins, then one more every
	// FailureEvery (default 6s). Past it the endpoint answers 429 without
	// checking the password.
	FailureBurst int
	FailureEvery time.Duration

	now     func() time.Time                  // default time.Now; tests move the clock
	compare func(hash, password []byte) error // default bcrypt.CompareHashAndPassword
}

func (c IDPConfig) withDefaults() IDPConfig {
	if c.TTL <= 0 {
		c.TTL = time.Hour
	}
	if len(c.CORSOrigins) == 0 {
		c.CORSOrigins = []string{"*"}
	}
	if c.MaxChecks <= 0 {
		c.MaxChecks = max(1, runtime.GOMAXPROCS(0)/2)
	}
	if c.CheckWait <= 0 {
		c.CheckWait = 5 * time.Second
	}
	if c.FailureBurst <= 0 {
		c.FailureBurst = 10
	}
	if c.FailureEvery <= 0 {
		c.FailureEvery = 6 * time.Second
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.compare == nil {
		c.compare = bcrypt.CompareHashAndPassword
	}
	return c
}

// dummyHash is checked when the user does not exist, so that an unknown
// user costs the same time as a wrong password.
// It is made on first use: hashing costs about as much as a check.
var dummyHash = sync.OnceValue(func() []byte {
	hash, _ := bcrypt.GenerateFromPassword([]byte("herald: no such user"), bcrypt.DefaultCost)
	return hash
})

// idp is the token endpoint's state.
type idp struct {
	cfg      IDPConfig
	api      *API
	checks   chan struct{} // a slot per running password check
	waiting  atomic.Int32  // requests waiting for a slot (tests read it)
	failures failureLimits
}

// Handler returns next with the token endpoint in front of it: the
// endpoint's paths match without regard to case or a trailing slash,
// which http.ServeMux patterns cannot express.
func (a *API) Handler(next http.Handler) http.Handler {
	d := a.newIDP()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isIDPPath(r.URL.Path) {
			d.serveHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a *API) newIDP() *idp {
	cfg := a.IDP.withDefaults()
	return &idp{cfg: cfg, api: a, checks: make(chan struct{}, cfg.MaxChecks),
		failures: failureLimits{every: cfg.FailureEvery, burst: cfg.FailureBurst, entries: make(map[string]*rate.Limiter)}}
}

func isIDPPath(path string) bool {
	path = strings.TrimSuffix(path, "/")
	for _, p := range idpPaths {
		if strings.EqualFold(path, p) {
			return true
		}
	}
	return false
}

// tokenAnswer is the OAuth token response.
type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	TokenType   string `json:"token_type"`
	Scope       string `json:"scope"`
}

// oauthError is an OAuth error response (RFC 6749 §5.2).
type oauthError struct {
	Status      int           `json:"-"`
	Code        string        `json:"error"`
	Description string        `json:"error_description"`
	RetryAfter  time.Duration `json:"-"`
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }

func oauthErr(status int, code, description string) *oauthError {
	return &oauthError{Status: status, Code: code, Description: description}
}

// errBadLogin is the one answer to a wrong password or an unknown user,
// so the endpoint does not tell which names exist.
var errBadLogin = oauthErr(http.StatusBadRequest, "invalid_grant", "invalid username or password")

func (d *idp) serveHTTP(w http.ResponseWriter, r *http.Request) {
	d.cors(w, r)
	switch r.Method {
	case http.MethodOptions:
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "POST, OPTIONS")
		d.fail(w, oauthErr(http.StatusMethodNotAllowed, "invalid_request", "the token endpoint takes POST only"))
		return
	}
	answer, err := d.token(r)
	if err != nil {
		var oe *oauthError
		if !errors.As(err, &oe) {
			if d.api.Logger != nil {
				d.api.Logger.Error("token endpoint", "err", err)
			}
			oe = oauthErr(http.StatusInternalServerError, "server_error", "the registry could not be read; try again")
		}
		d.fail(w, oe)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	WriteJSON(w, http.StatusOK, answer)
}

func (d *idp) fail(w http.ResponseWriter, e *oauthError) {
	w.Header().Set("Cache-Control", "no-store")
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	WriteJSON(w, e.Status, e)
}

// cors answers the browser's origin check: every answer, the preflight
// included, carries Access-Control-Allow-Origin for an allowed origin.
func (d *idp) cors(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	allowed := ""
	for _, o := range d.cfg.CORSOrigins {
		if o == "*" {
			allowed = "*"
			break
		}
		if strings.EqualFold(o, origin) {
			allowed = origin
			break
		}
	}
	if allowed == "" {
		return
	}
	h.Set("Access-Control-Allow-Origin", allowed)
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		headers := r.Header.Get("Access-Control-Request-Headers")
		if headers == "" || len(headers) > 512 {
			headers = "Content-Type, Authorization"
		}
		h.Set("Access-Control-Allow-Headers", headers)
		h.Set("Access-Control-Max-Age", "600")
	}
}

// token checks the form and the credential and signs the token.
func (d *idp) token(r *http.Request) (*tokenAnswer, error) {
	form, err := readForm(r)
	if err != nil {
		return nil, err
	}
	grant := form.Get("grant_type")
	switch {
	case grant == "":
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "grant_type is missing (herald supports grant_type=password)")
	case grant != "password":
		return nil, oauthErr(http.StatusBadRequest, "unsupported_grant_type", "grant_type "+strconv.Quote(clip(grant))+" is not supported; herald supports grant_type=password")
	}
	username, password := form.Get("username"), form.Get("password")
	if username == "" || password == "" {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "username and password are required")
	}
	if len(d.cfg.Secret) == 0 {
		return nil, oauthErr(http.StatusNotImplemented, "unsupported_grant_type",
			"herald cannot issue tokens: only public keys (auth.jwt_public_key or auth.jwks_url) are configured, so tokens come from your identity provider")
	}
	// client_id is accepted whatever it is (the vendor's samples send GrantValidatorClient).
	ip := remoteIP(r.RemoteAddr)
	userKey := "user " + strings.ToLower(username)
	if wait := d.failures.blocked(d.cfg.now(), "ip "+ip, userKey); wait > 0 {
		e := oauthErr(http.StatusTooManyRequests, "invalid_grant", "too many failed logins from this address or for this user; try again later")
		e.RetryAfter = wait
		return nil, e
	}
	principal, err := d.authenticate(r.Context(), username, password)
	if err == errBadLogin {
		d.failures.record(d.cfg.now(), "ip "+ip, userKey)
	}
	if err != nil {
		return nil, err
	}
	token, err := auth.IssueFor(d.cfg.Secret, principal, d.cfg.TTL, d.cfg.now())
	if err != nil {
		return nil, err
	}
	return &tokenAnswer{AccessToken: token, ExpiresIn: int64(d.cfg.TTL / time.Second), TokenType: "Bearer",
		Scope: strings.Join(principal.Scopes, " ")}, nil
}

// readForm reads the bounded form body.
func readForm(r *http.Request) (url.Values, error) {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/x-www-form-urlencoded" {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "the body must be a form (Content-Type: application/x-www-form-urlencoded)")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxTokenFormBytes+1))
	if err != nil {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "cannot read the body")
	}
	if len(body) > maxTokenFormBytes {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "the body is larger than "+strconv.Itoa(maxTokenFormBytes)+" bytes")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "the body is not a valid form")
	}
	return form, nil
}

// authenticate returns the token's principal: an API key with the
// subscribe scope given as the password (any username), or a user of the
// registry, named "user" (looked up in every org) or "org/user" (org by
// name or uuid). Tokens get the subscribe scope only.
func (d *idp) authenticate(ctx context.Context, username, password string) (herald.Principal, error) {
	reg := d.api.Registry
	if key, err := reg.APIKey(ctx, herald.HashAPIKey(password)); err == nil {
		if (herald.Principal{Scopes: key.Scopes}).Can(herald.ScopeSubscribe) {
			name := key.Name
			if name == "" {
				name = key.Hash[:min(12, len(key.Hash))]
			}
			return herald.Principal{Org: key.Org, User: "key:" + name, Scopes: []string{herald.ScopeSubscribe},
				Credential: herald.KeyCredential(key.Hash)}, nil
		}
	} else if herald.ErrorCode(err) != herald.ENOTFOUND {
		return herald.Principal{}, err
	}
	user, err := d.findUser(ctx, username)
	if err != nil {
		if herald.ErrorCode(err) == herald.ENOTFOUND {
			d.check(ctx, dummyHash(), password)
			return herald.Principal{}, errBadLogin
		}
		return herald.Principal{}, err
	}
	ok, err := d.check(ctx, []byte(user.PasswordHash), password)
	if err != nil {
		return herald.Principal{}, err
	}
	if !ok {
		return herald.Principal{}, errBadLogin
	}
	return herald.Principal{Org: user.Org, User: user.Name, Scopes: []string{herald.ScopeSubscribe},
		Credential: herald.UserCredential(user.Name)}, nil
}

// check runs one password check in a slot: at most MaxChecks run at once.
func (d *idp) check(ctx context.Context, hash []byte, password string) (bool, error) {
	d.waiting.Add(1)
	timer := time.NewTimer(d.cfg.CheckWait)
	defer timer.Stop()
	select {
	case d.checks <- struct{}{}:
		d.waiting.Add(-1)
	case <-timer.C:
		d.waiting.Add(-1)
		e := oauthErr(http.StatusServiceUnavailable, "temporarily_unavailable", "too many logins at once; try again")
		e.RetryAfter = time.Second
		return false, e
	case <-ctx.Done():
		d.waiting.Add(-1)
		return false, ctx.Err()
	}
	defer func() { <-d.checks }()
	return d.cfg.compare(hash, []byte(password)) == nil, nil
}

// findUser finds the user named by username: "org/user" or a name that
// exactly one org has. ENOTFOUND if there is none.
func (d *idp) findUser(ctx context.Context, username string) (herald.User, error) {
	reg := d.api.Registry
	orgs, err := reg.Orgs(ctx)
	if err != nil {
		return herald.User{}, err
	}
	if orgRef, name, ok := strings.Cut(username, "/"); ok && name != "" {
		var found []herald.Org
		for _, o := range orgs {
			if strings.EqualFold(o.UUID, orgRef) {
				found = []herald.Org{o}
				break
			}
			if o.Name == orgRef {
				found = append(found, o)
			}
		}
		switch len(found) {
		case 0:
			// Perhaps a plain name with a slash in it.
		case 1:
			return reg.User(ctx, found[0].UUID, name)
		default:
			return herald.User{}, oauthErr(http.StatusBadRequest, "invalid_grant",
				strconv.Itoa(len(found))+" orgs are named "+strconv.Quote(clip(orgRef))+": give org/user with the org's uuid")
		}
	}
	var matches []herald.User
	for _, o := range orgs {
		u, err := reg.User(ctx, o.UUID, username)
		switch {
		case err == nil:
			matches = append(matches, u)
		case herald.ErrorCode(err) != herald.ENOTFOUND:
			return herald.User{}, err
		}
	}
	switch len(matches) {
	case 0:
		return herald.User{}, herald.Errorf(herald.ENOTFOUND, "user not found")
	case 1:
		return matches[0], nil
	}
	return herald.User{}, oauthErr(http.StatusBadRequest, "invalid_grant",
		"user "+strconv.Quote(clip(username))+" exists in "+strconv.Itoa(len(matches))+" orgs: give org/user, where org is the org's name or uuid")
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// remoteIP is the failure limiter's key of a request's remote address:
// the IPv4 address, or the IPv6 address's /64 (one host usually holds a
// whole /64).
func remoteIP(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip4 := ip.To4(); ip4 != nil {
		return ip4.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// maxFailureEntries bounds the failure limiter's memory. Past it, keys
// that have no entry share one limiter, so a flood of new addresses or
// names slows itself down instead of evicting what it is guessing.
const maxFailureEntries = 10000

// failureLimits keeps a token bucket of allowed failures per key.
type failureLimits struct {
	every   time.Duration
	burst   int
	mu      sync.Mutex
	entries map[string]*rate.Limiter // guarded by mu; full buckets are pruned when the map is full
	shared  *rate.Limiter            // guarded by mu; keys beyond maxFailureEntries
}

// blocked returns how long until the keys may fail again, 0 if they may.
func (f *failureLimits) blocked(now time.Time, keys ...string) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		l := f.entries[k]
		if l == nil {
			if len(f.entries) < maxFailureEntries || f.shared == nil {
				continue
			}
			l = f.shared
		}
		if tokens := l.TokensAt(now); tokens < 1 {
			wait = max(wait, time.Duration((1-tokens)*float64(f.every)))
		}
	}
	return wait
}

// record counts one failure against each key.
func (f *failureLimits) record(now time.Time, keys ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range keys {
		f.limiterLocked(k, now).AllowN(now, 1)
	}
}

func (f *failureLimits) limiterLocked(key string, now time.Time) *rate.Limiter {
	if l := f.entries[key]; l != nil {
		return l
	}
	if len(f.entries) >= maxFailureEntries {
		for k, l := range f.entries {
			if l.TokensAt(now) >= float64(f.burst) {
				delete(f.entries, k)
			}
		}
	}
	if len(f.entries) >= maxFailureEntries {
		if f.shared == nil {
			f.shared = rate.NewLimiter(rate.Every(f.every), f.burst)
		}
		return f.shared
	}
	l := rate.NewLimiter(rate.Every(f.every), f.burst)
	f.entries[key] = l
	return l
}
