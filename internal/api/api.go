package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
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
	Tokens       TokenVerifier  // bearer tokens for /healthz; nil: API keys only
	Health       Health         // what /healthz and /readyz report (health.go)
	IDP          IDPConfig      // the token endpoint (idp.go), served by Handler
	Numbers      DeviceNumbers  // devices by number for GET /api/devices; nil: by uuid only
	Ingested     IngestObserver // told of every stored batch; nil: nobody
}

// IngestObserver is told of every batch POST /api/events stored: how many
// events, how long the request took from its start and how long the
// engine took to store them. It must not block.
type IngestObserver interface {
	Ingested(events int, request, engine time.Duration)
}

// Register mounts the endpoints on mux.
func (a *API) Register(mux Mux) {
	mux.HandleFunc("GET /healthz", a.health)
	mux.HandleFunc("GET /readyz", a.readiness)
	mux.HandleFunc("POST /api/events", a.publish)
	mux.HandleFunc("GET /api/devices/{uuid}", a.getDevice)
	a.registerRhombus(mux)
	a.registerESS(mux)
	a.registerAdmin(mux)
	mux.HandleFunc("GET /api/openapi.json", serveOpenAPI)
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

// AtomicAppender is an event log that can also store a batch whole or
// not at all (the engine's JetStream atomic batches).
type AtomicAppender interface {
	// AppendAtomic is Append, except that when it fails none of the
	// records is stored.
	AppendAtomic(ctx context.Context, records []herald.Record) ([]uint64, error)
}

// publish is POST /api/events: one event, an array, or NDJSON. It answers
// only once the events are durable. With ?atomic=true the events are
// stored whole or not at all even when the engine fails midway; without
// it a failed request may have stored some of them (events with a key are
// never stored twice when the producer retries).
func (a *API) publish(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	p, err := a.APIKeyPrincipal(r.Context(), r, herald.ScopePublish)
	if err != nil {
		WriteError(w, a.Logger, err)
		return
	}
	appendFn := a.Log.Append
	if v := r.URL.Query().Get("atomic"); v != "" {
		atomic, err := strconv.ParseBool(v)
		if err != nil {
			WriteError(w, a.Logger, herald.Errorf(herald.EINVALID, "atomic must be true or false, not %q", v))
			return
		}
		if atomic {
			atomicLog, ok := a.Log.(AtomicAppender)
			if !ok {
				WriteError(w, a.Logger, herald.Errorf(herald.EINVALID, "this engine cannot store a batch atomically"))
				return
			}
			appendFn = atomicLog.AppendAtomic
		}
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
	appendStart := time.Now()
	ids, err := appendFn(r.Context(), records)
	if err != nil {
		WriteError(w, a.Logger, err)
		return
	}
	if a.Ingested != nil {
		now := time.Now()
		a.Ingested.Ingested(len(ids), now.Sub(start), now.Sub(appendStart))
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = formatID(id)
	}
	WriteJSON(w, http.StatusOK, map[string][]string{"ids": out})
}
