package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/herald-gw/herald"
)

// DeviceNumbers finds a registered device by its numeric id, the name
// the channels dialect gives devices (the node's device directory).
type DeviceNumbers interface {
	ByNumber(org string, n int64) (herald.Device, bool)
}

// getDevice serves GET /api/devices/{uuid}: a registered device of the
// caller's org, for clients that show names (herald monitor's enrichment).
// A number that is no device's uuid is looked up as a device number, since
// the channels dialect's pushes carry those. It takes the credentials
// every dialect's clients hold: x-auth-apikey, or Authorization: Bearer
// with a JWT or an API key. Another org's device and an unknown one get
// the same 404.
func (a *API) getDevice(w http.ResponseWriter, r *http.Request) {
	p, ok := a.essAuthorized(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	id := r.PathValue("uuid")
	d, err := a.Registry.Device(ctx, p.Org, id)
	if n, perr := strconv.ParseInt(id, 10, 64); herald.ErrorCode(err) == herald.ENOTFOUND && perr == nil && n > 0 && a.Numbers != nil {
		if dev, ok := a.Numbers.ByNumber(p.Org, n); ok {
			d, err = dev, nil
		}
	}
	switch {
	case herald.ErrorCode(err) == herald.ENOTFOUND:
		WriteError(w, a.Logger, herald.Errorf(herald.ENOTFOUND, "no device with this uuid"))
	case err != nil:
		WriteError(w, a.Logger, err)
	default:
		WriteJSON(w, http.StatusOK, map[string]any{"uuid": d.UUID, "name": d.Name, "kind": d.Kind, "number": d.Number})
	}
}
