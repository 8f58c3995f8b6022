package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/auth"
	"github.com/herald-gw/herald/internal/ingest"
)

// API holds what the HTTP endpoints need.
type API struct {
	Log          herald.EventLog
	State        herald.StateView
	Registry     herald.Registry
	Keys         auth.Keys
	Logger       *slog.Logger
	MaxBodyBytes int64 // ingest request body limit; default 4 MiB
	Ingest       ingest.Limits
	Engine       string                // engine mode, for /healthz
	Stats        func() map[string]any // live counters for /healthz; may be nil
}

// Register mounts the endpoints on mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", a.health)
	mux.HandleFunc("POST /api/events", a.publish)
	a.registerRhombus(mux)
}

func (a *API) health(w http.ResponseWriter, r *http.Request) {
	out := map[string]any{"status": "ok", "engine": a.Engine}
	if a.Stats != nil {
		for k, v := range a.Stats() {
			out[k] = v
		}
	}
	WriteJSON(w, http.StatusOK, out)
}

// APIKeyPrincipal authenticates the request's x-auth-apikey header and
// checks that the key holds scope.
func (a *API) APIKeyPrincipal(ctx context.Context, r *http.Request, scope string) (herald.Principal, error) {
	p, err := a.Keys.Authenticate(ctx, r.Header.Get("x-auth-apikey"))
	if err != nil {
		return p, err
	}
	if !p.Can(scope) {
		return p, herald.Errorf(herald.EFORBIDDEN, "this API key lacks the %s scope", scope)
	}
	return p, nil
}

// publish is POST /api/events: one event, an array, or NDJSON. It answers
// only once the events are durable.
func (a *API) publish(w http.ResponseWriter, r *http.Request) {
	p, err := a.APIKeyPrincipal(r.Context(), r, herald.ScopePublish)
	if err != nil {
		WriteError(w, a.Logger, err)
		return
	}
	limit := a.MaxBodyBytes
	if limit <= 0 {
		limit = 4 << 20
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			err = herald.Errorf(herald.ETOOLARGE, "request body is larger than %d bytes", limit)
		} else {
			err = herald.Errorf(herald.EINVALID, "cannot read request body: %v", err)
		}
		WriteError(w, a.Logger, err)
		return
	}
	records, err := ingest.Parse(body, p.Org, time.Now().UnixMilli(), a.Ingest)
	if err != nil {
		WriteError(w, a.Logger, err)
		return
	}
	ids, err := a.Log.Append(r.Context(), records)
	if err != nil {
		WriteError(w, a.Logger, err)
		return
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = formatID(id)
	}
	WriteJSON(w, http.StatusOK, map[string][]string{"ids": out})
}
