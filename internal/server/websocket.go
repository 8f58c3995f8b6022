package server

import (
	"net/http"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/api"
	"github.com/herald-gw/herald/internal/dialect/stomp"
	"github.com/herald-gw/herald/internal/wsconn"
)

// dialect is one wire dialect the node serves: its GET paths and the
// handler that authenticates, upgrades and hands the connection to the
// dialect's package. Adding a dialect is its package and one line in
// dialects.
type dialect struct {
	name  string
	paths []string
	serve http.HandlerFunc
}

func (s *Server) dialects() []dialect {
	return []dialect{
		{"stomp", []string{"/websocket", "/websocket/"}, s.serveSTOMP},
		{"channels", []string{"/ws", "/ws/"}, s.serveChannels},
		{"ess", []string{"/api/ws/events/v1", "/api/ws/events/v1/"}, s.serveESS},
		{"streams", []string{"/session/{id}/ws", "/session/{id}/ws/"}, s.serveStreams},
	}
}

// upgrade completes the WebSocket handshake and tracks the connection
// until the returned ended runs; ok is false if the handshake failed (the
// upgrader has answered) or the server is shutting down.
func (s *Server) upgrade(w http.ResponseWriter, r *http.Request, dialect string, protocols []string, opts wsconn.Options) (conn *wsconn.Conn, ended func(), ok bool) {
	conn, _, err := wsconn.Upgrade(w, r, protocols, opts)
	if err != nil {
		return nil, nil, false
	}
	if !s.track(conn, dialect) {
		conn.Close()
		return nil, nil, false
	}
	return conn, func() { s.untrack(conn) }, true
}

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
	conn, ended, ok := s.upgrade(w, r, "stomp", stomp.Protocols, s.connOptions())
	if !ok {
		return
	}
	// Serve returns at once, and so does this handler: net/http keeps its
	// per-request buffers, context and the handler's grown stack (about 25
	// KB together) until the handler returns, which for a WebSocket would
	// be the connection's whole life.
	stomp.Serve(conn, p, s.stomp, ended)
}
