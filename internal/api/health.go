package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/auth"
	"github.com/herald-gw/herald/internal/session"
)

// Health is what /healthz and /readyz read from the node. The zero value
// is a node that is never ready; set Ready.
type Health struct {
	// Ready reports whether the node serves: it follows the log and its
	// device directory is loaded, and shutdown has not begun. nil: never.
	Ready func() bool
	// Serving reports whether /readyz should send clients here: Ready,
	// and the engine answers, and the node keeps up with the log; reason
	// says why not. nil: Ready alone.
	Serving func() (ok bool, reason string)
	// DataLoss reports that the node serves on a log that lost
	// acknowledged events at start (--accept-data-loss). nil: never.
	DataLoss func() bool
	// Engine is the engine mode (embedded or external).
	Engine string
	// Gauges are the node's live figures, node-wide and per org.
	Gauges *session.Gauges
	// Head returns the newest event id the node has dispatched.
	Head func() uint64
	// StateLag returns how many of the newest events the state view has
	// not copied yet; nil: not reported.
	StateLag func(ctx context.Context) (uint64, error)
}

// TokenVerifier checks a JWT (auth.Verifier). API.Tokens may be nil:
// then no bearer token is accepted.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (herald.Principal, time.Time, error)
}

// Health statuses: the only thing /healthz tells a caller without a
// credential.
const (
	StatusOK          = "ok"          // serving
	StatusDegraded    = "degraded"    // serving, but the log lost acknowledged events at start
	StatusUnavailable = "unavailable" // not serving yet, or shutting down
	StatusReady       = "ready"       // /readyz: serving
)

// dataLossNote explains StatusDegraded to the operator.
const dataLossNote = "the event log was damaged and emptied at start; see docs/operations.md, \"Damaged data\""

// healthTimeout bounds the engine questions a credentialed /healthz asks
// (the org's last event, the state view's lag): a monitor's probe must
// get an answer even when the engine is slow.
const healthTimeout = 2 * time.Second

func (a *API) logger() *slog.Logger {
	if a.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Logger
}

func (a *API) ready() bool { return a.Health.Ready != nil && a.Health.Ready() }

// health is GET /healthz. Without a credential it says only whether the
// node is up: "ok" or "degraded" with 200, "unavailable" with 503. With
// an admin credential it adds the node's figures; with any other valid
// credential, the figures of the credential's org alone (a tenant must
// not learn how busy the others are). A credential that is not valid is
// refused with 401, whatever the node's state.
func (a *API) health(w http.ResponseWriter, r *http.Request) {
	p, authenticated, err := a.healthPrincipal(r)
	if err != nil {
		WriteError(w, a.Logger, err)
		return
	}
	status, code := StatusOK, http.StatusOK
	switch {
	case !a.ready():
		status, code = StatusUnavailable, http.StatusServiceUnavailable
	case a.Health.DataLoss != nil && a.Health.DataLoss():
		status = StatusDegraded
	}
	out := map[string]any{"status": status}
	if authenticated {
		ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
		defer cancel()
		if p.Can(herald.ScopeAdmin) {
			a.nodeFigures(ctx, out)
		} else {
			a.orgFigures(ctx, p.Org, out)
		}
	}
	WriteJSON(w, code, out)
}

// readiness is GET /readyz, for load balancers and orchestrators: 200
// while the node serves, 503 before and once shutdown has begun. It needs
// no credential, tells nothing else and asks the engine nothing, so it
// is cheap to probe often.
func (a *API) readiness(w http.ResponseWriter, r *http.Request) {
	ok, reason := a.ready(), ""
	if ok && a.Health.Serving != nil {
		ok, reason = a.Health.Serving()
	}
	if !ok {
		out := map[string]string{"status": StatusUnavailable}
		if reason != "" {
			out["reason"] = reason
		}
		WriteJSON(w, http.StatusServiceUnavailable, out)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]string{"status": StatusReady})
}

// AdminOnly serves h to a request with an admin credential (x-auth-apikey,
// or Authorization: Bearer with an API key or a JWT); others get 401 or
// 403 in herald's JSON error shape.
func (a *API) AdminOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, authenticated, err := a.healthPrincipal(r)
		switch {
		case err != nil:
			WriteError(w, a.Logger, err)
		case !authenticated:
			WriteError(w, a.Logger, herald.Errorf(herald.EUNAUTHORIZED, "an admin credential is needed: x-auth-apikey or Authorization: Bearer"))
		case !p.Can(herald.ScopeAdmin):
			WriteError(w, a.Logger, herald.Errorf(herald.EFORBIDDEN, "this credential lacks the admin scope"))
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// healthPrincipal returns the request's principal: from x-auth-apikey,
// or from Authorization: Bearer with a JWT or an API key (what
// Prometheus's authorization setting sends).
// authenticated is false when the request carries neither. Any scope will
// do: what the principal sees depends on its scopes, not whether it sees.
func (a *API) healthPrincipal(r *http.Request) (p herald.Principal, authenticated bool, err error) {
	key, authorization := r.Header.Get("x-auth-apikey"), r.Header.Get("Authorization")
	switch {
	case key != "":
		p, err = a.Keys.Authenticate(r.Context(), key)
		return p, err == nil, err
	case authorization == "":
		return p, false, nil
	}
	scheme, token, _ := strings.Cut(authorization, " ")
	if !strings.EqualFold(scheme, "bearer") {
		return p, false, herald.Errorf(herald.EUNAUTHORIZED, "the Authorization header takes a bearer token (Authorization: Bearer <JWT or API key>)")
	}
	p, _, err = a.BearerPrincipal(r.Context(), strings.TrimSpace(token))
	return p, err == nil, err
}

// verifyJWT verifies a JWT; a refused one is EUNAUTHORIZED with the
// verifier's code and reason ("token_expired: token expired at …").
func (a *API) verifyJWT(ctx context.Context, token string) (herald.Principal, time.Time, error) {
	if a.Tokens == nil {
		return herald.Principal{}, time.Time{}, herald.Errorf(herald.EUNAUTHORIZED,
			"this server has no token verification configured (auth.jwt_secret, auth.jwt_public_key or auth.jwks_url); use an API key")
	}
	p, exp, err := a.Tokens.Verify(ctx, token)
	var refused *auth.TokenError
	if errors.As(err, &refused) {
		err = herald.Errorf(herald.EUNAUTHORIZED, "%s: %s", refused.Code, refused.Message)
	}
	return p, exp, err
}

// BearerPrincipal authenticates a bearer credential as Milestone's
// clients present one: a JWT (three dot-separated parts), or else one of
// herald's API keys. exp is zero for an API key.
func (a *API) BearerPrincipal(ctx context.Context, token string) (p herald.Principal, exp time.Time, err error) {
	if strings.Count(token, ".") == 2 {
		return a.verifyJWT(ctx, token)
	}
	p, err = a.Keys.Authenticate(ctx, token)
	if herald.ErrorCode(err) == herald.EUNAUTHORIZED {
		err = herald.Errorf(herald.EUNAUTHORIZED, "the bearer token is neither a JWT nor a valid API key")
	}
	return p, time.Time{}, err
}

// nodeFigures adds the node-wide figures, for admins. A figure the engine
// cannot give in time is left out rather than delaying the answer.
func (a *API) nodeFigures(ctx context.Context, out map[string]any) {
	h := a.Health
	out["scope"] = "node"
	out["engine"] = h.Engine
	if h.Gauges != nil {
		out["connections"] = h.Gauges.Connections.Load()
		out["subscriptions"] = h.Gauges.Subscriptions.Load()
		out["catchUps"] = h.Gauges.CatchUps.Load()
	}
	if h.Head != nil {
		out["lastEventId"] = formatID(h.Head())
	}
	if h.StateLag != nil {
		if lag, err := h.StateLag(ctx); err == nil {
			out["stateLag"] = lag
		} else {
			a.logger().Warn("healthz: the state view's lag is unknown", "err", err)
		}
	}
	if h.DataLoss != nil && h.DataLoss() {
		out["dataLoss"] = dataLossNote
	}
}

// orgFigures adds org's own figures: its sessions and subscriptions on
// this node, and its newest event in the log (not the log's head, which
// counts every org's events).
func (a *API) orgFigures(ctx context.Context, org string, out map[string]any) {
	out["scope"] = "org"
	out["org"] = org
	var figures session.OrgFigures
	if a.Health.Gauges != nil {
		figures = a.Health.Gauges.Org(org)
	}
	out["connections"] = figures.Connections
	out["subscriptions"] = figures.Subscriptions
	if a.State == nil {
		return
	}
	last, err := a.State.Latest(ctx, org, herald.StateQuery{})
	switch {
	case err == nil:
		out["lastEventId"] = formatID(last.ID)
	case herald.ErrorCode(err) == herald.ENOTFOUND:
		out["lastEventId"] = "0" // as the log's head of an empty log
	default:
		a.logger().Warn("healthz: the org's last event is unknown", "org", org, "err", err)
	}
}
