package server

import (
	"net/http"
	"strings"
	"time"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/api"
	"github.com/herald-gw/herald/internal/dialect/ess"
)

// ESSLimits bound the ess dialect (Milestone Events and State).
type ESSLimits struct {
	MaxMessageBytes int           `koanf:"max_message_bytes"` // inbound command; default 256 KiB
	MaxFilters      int           `koanf:"max_filters"`       // per session, over its subscriptions; default 200
	MaxStateBytes   int           `koanf:"max_state_bytes"`   // a getState reply; default 4 MiB
	AuthTimeout     time.Duration `koanf:"auth_timeout"`      // for the authenticate command; default 10s
}

// ESSConfig sets the ess dialect's behaviour.
type ESSConfig struct {
	// CloseOnTokenExpiry closes a connection when its token expires (the
	// session stays resumable for sessions.detach_window). Default false:
	// as the vendor's server, a token is checked when presented only.
	CloseOnTokenExpiry bool `koanf:"close_on_token_expiry"`
}

// essConfig builds the dialect's shared config.
func (s *Server) essConfig() *ess.Config {
	l := s.cfg.Limits.ESS
	cfg := ess.Config{
		Node:             s.node,
		State:            s.engine,
		Verify:           s.api.BearerPrincipal,
		Devices:          s.devices,
		AuthTimeout:      l.AuthTimeout,
		MaxMessageBytes:  l.MaxMessageBytes,
		MaxSubscriptions: s.cfg.Limits.MaxSubscriptions,
		MaxFilters:       l.MaxFilters,
		MaxStateBytes:    l.MaxStateBytes,
		CloseOnExpiry:    s.cfg.ESS.CloseOnTokenExpiry,
	}.WithDefaults()
	return &cfg
}

// serveESS is GET /api/ws/events/v1: a bearer token on the upgrade is
// checked before it (401 as an HTTP response); without one, the client
// authenticates with its first command.
func (s *Server) serveESS(w http.ResponseWriter, r *http.Request) {
	var principal *herald.Principal
	var exp time.Time
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, _ := strings.Cut(strings.TrimSpace(h), " ")
		if !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(token) == "" {
			api.WriteError(w, s.logger, herald.Errorf(herald.EUNAUTHORIZED, "the Authorization header must be Bearer <token>"))
			return
		}
		p, e, err := s.api.BearerPrincipal(r.Context(), strings.TrimSpace(token))
		if err == nil && !p.Can(herald.ScopeSubscribe) {
			err = herald.Errorf(herald.EFORBIDDEN, "the token lacks the subscribe scope")
		}
		if err != nil {
			api.WriteError(w, s.logger, err)
			return
		}
		principal, exp = &p, e
	}
	opts := s.connOptions()
	opts.MaxMessageBytes = s.ess.MaxMessageBytes
	conn, ended, ok := s.upgrade(w, r, "ess", []string{ess.Protocol}, opts)
	if !ok {
		return
	}
	ess.Serve(conn, s.ess, principal, exp, ended)
}
