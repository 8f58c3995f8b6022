// Package api serves herald's HTTP endpoints: event ingest, health, and
// the vendor-compatible REST endpoints of each dialect.
package api

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/herald-gw/herald"
)

// statusOf maps error codes to HTTP statuses: the one table for HTTP.
var statusOf = map[string]int{
	herald.EINVALID:      http.StatusBadRequest,
	herald.EUNAUTHORIZED: http.StatusUnauthorized,
	herald.EFORBIDDEN:    http.StatusForbidden,
	herald.ENOTFOUND:     http.StatusNotFound,
	herald.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	herald.ECONFLICT:     http.StatusConflict,
	herald.EUNAVAILABLE:  http.StatusServiceUnavailable,
	herald.EINTERNAL:     http.StatusInternalServerError,
}

// Status returns the HTTP status for err.
func Status(err error) int {
	if s, ok := statusOf[herald.ErrorCode(err)]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// errorBody is herald's own JSON error shape.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field,omitempty"`
		Index   *int   `json:"index,omitempty"`
	} `json:"error"`
}

// WriteError writes err in herald's JSON shape with its HTTP status.
// Internal errors are logged and shown without detail.
func WriteError(w http.ResponseWriter, logger *slog.Logger, err error) {
	var body errorBody
	body.Error.Code = herald.ErrorCode(err)
	countError(body.Error.Code)
	body.Error.Message = herald.ErrorMessage(err)
	if e, ok := err.(*herald.Error); ok {
		body.Error.Field = e.Field
		if e.Index >= 0 {
			body.Error.Index = &e.Index
		}
	}
	if body.Error.Code == herald.EINTERNAL && logger != nil {
		logger.Error("request failed", "err", err)
	}
	WriteJSON(w, Status(err), body)
}

// WriteJSON writes v as a JSON response.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
