package api

import (
	"context"
	"net/http"

	"github.com/herald-gw/herald"
)

// getDevice serves GET /api/devices/{uuid}: a registered device of the
// caller's org, for clients that show names (herald monitor's enrichment).
// It takes the credentials every dialect's clients hold: x-auth-apikey,
// or Authorization: Bearer with a JWT or an API key. Another org's device
// and an unknown one get the same 404.
func (a *API) getDevice(w http.ResponseWriter, r *http.Request) {
	p, ok := a.essAuthorized(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	d, err := a.Registry.Device(ctx, p.Org, r.PathValue("uuid"))
	switch {
	case herald.ErrorCode(err) == herald.ENOTFOUND:
		WriteError(w, a.Logger, herald.Errorf(herald.ENOTFOUND, "no device with this uuid"))
	case err != nil:
		WriteError(w, a.Logger, err)
	default:
		WriteJSON(w, http.StatusOK, map[string]any{"uuid": d.UUID, "name": d.Name, "kind": d.Kind, "number": d.Number})
	}
}
