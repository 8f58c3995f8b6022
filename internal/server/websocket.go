package server

import (
	"net/http"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/api"
	"github.com/herald-gw/herald/internal/session"
	"github.com/herald-gw/herald/internal/wsconn"
)

// stompProtocols are the WebSocket sub-protocols of STOMP, preferred first.
var stompProtocols = []string{"v12.stomp", "v11.stomp", "v10.stomp"}

// serveSTOMP is GET /websocket: API-key auth before the upgrade (401/403
// as HTTP responses), then a STOMP session.
func (s *Server) serveSTOMP(w http.ResponseWriter, r *http.Request) {
	if scheme := r.URL.Query().Get("x-auth-scheme"); scheme != "" && scheme != "api-token" {
		api.WriteError(w, s.logger, herald.Errorf(herald.EUNAUTHORIZED,
			"unsupported x-auth-scheme %q: use api-token", scheme))
		return
	}
	key := r.Header.Get("x-auth-apikey")
	if key == "" {
		// Browsers cannot set headers on a WebSocket: accept the key as a
		// query parameter too (it then appears in access logs).
		key = r.URL.Query().Get("x-auth-apikey")
	}
	p, err := s.api.Keys.Authenticate(r.Context(), key)
	if err == nil && !p.Can(herald.ScopeSubscribe) {
		err = herald.Errorf(herald.EFORBIDDEN, "this API key lacks the subscribe scope")
	}
	if err != nil {
		api.WriteError(w, s.logger, err)
		return
	}
	conn, _, err := wsconn.Upgrade(w, r, stompProtocols, s.connOptions())
	if err != nil {
		return // the upgrader has answered the client
	}
	if !s.track(conn) {
		conn.Close()
		return
	}
	// ServeSTOMP returns at once, and so does this handler: net/http keeps
	// its per-request buffers, context and the handler's grown stack
	// (about 25 KB together) until the handler returns, which for a
	// WebSocket would be the connection's whole life.
	session.ServeSTOMP(conn, p, s.stomp, func() { s.untrack(conn) })
}
