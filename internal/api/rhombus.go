package api

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/jsonscan"
)

// The Rhombus-compatible REST endpoints (protocols.md §3). Every response
// carries error, errorMsg and warningMsg, as the vendor's do.

func (a *API) registerRhombus(mux Mux) {
	mux.HandleFunc("POST /api/org/getOrgV2", a.rhombus(a.getOrg))
	mux.HandleFunc("POST /api/camera/getMinimalCameraStateList", a.rhombus(a.getCameraStates))
	mux.HandleFunc("POST /api/alert/getAlert", a.rhombus(a.getAlert("alertUuid", "alert")))
	mux.HandleFunc("POST /api/event/getPolicyAlertDetails", a.rhombus(a.getAlert("policyAlertUuid", "policyAlert")))
}

type rhombusHandler func(r *http.Request, p herald.Principal, body map[string]json.RawMessage) (map[string]any, error)

// rhombus wraps a handler with API-key auth (subscribe scope), the JSON
// request body, and the vendor's response envelope.
func (a *API) rhombus(h rhombusHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := a.APIKeyPrincipal(r.Context(), r, herald.ScopeSubscribe)
		if err != nil {
			a.rhombusError(w, err)
			return
		}
		raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
		if err != nil {
			a.rhombusError(w, herald.Errorf(herald.ETOOLARGE, "request body is too large"))
			return
		}
		body := map[string]json.RawMessage{}
		if len(strings.TrimSpace(string(raw))) > 0 {
			if err := json.Unmarshal(raw, &body); err != nil {
				a.rhombusError(w, herald.Errorf(herald.EINVALID, "request body must be a JSON object"))
				return
			}
		}
		out, err := h(r, p, body)
		if err != nil {
			a.rhombusError(w, err)
			return
		}
		out["error"] = false
		out["errorMsg"] = nil
		out["warningMsg"] = nil
		WriteJSON(w, http.StatusOK, out)
	}
}

func (a *API) rhombusError(w http.ResponseWriter, err error) {
	if herald.ErrorCode(err) == herald.EINTERNAL {
		a.Logger.Error("request failed", "err", err)
	}
	WriteJSON(w, Status(err), map[string]any{"error": true, "errorMsg": herald.ErrorMessage(err), "warningMsg": nil})
}

func (a *API) getOrg(r *http.Request, p herald.Principal, _ map[string]json.RawMessage) (map[string]any, error) {
	org, err := a.Registry.Org(r.Context(), p.Org)
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"org":                 map[string]any{"uuid": org.UUID, "name": org.Name},
		"featureFlags":        map[string]any{},
		"cameraConfigOptions": map[string]any{},
	}, nil
}

func (a *API) getCameraStates(r *http.Request, p herald.Principal, _ map[string]json.RawMessage) (map[string]any, error) {
	devices, err := a.Registry.Devices(r.Context(), p.Org)
	if err != nil {
		return nil, err
	}
	states := []map[string]any{}
	for _, d := range devices {
		if d.Kind != "camera" {
			continue
		}
		status := "UNKNOWN"
		last, err := a.State.Latest(r.Context(), p.Org, herald.StateQuery{
			Channel: herald.ChannelDevices, DeviceUUID: d.UUID})
		switch {
		case err == nil:
			status = connectionStatus(last)
		case herald.ErrorCode(err) != herald.ENOTFOUND:
			return nil, err
		}
		states = append(states, map[string]any{
			"uuid": d.UUID, "name": d.Name, "connectionStatus": status, "healthStatus": status,
			"locationUuid": nil, "serialNumber": nil, "firmwareVersion": nil, "hwVariation": nil,
			"policyUuid": nil, "latitude": nil, "longitude": nil,
		})
	}
	return map[string]any{"cameraStates": states}, nil
}

// connectionStatus maps a device status event to Rhombus's
// RED | ORANGE | YELLOW | GREEN.
func connectionStatus(e *herald.Event) string {
	// The "status" member exactly: a struct field would also take
	// "STATUS" or "ſtatus", unlike every other reader of Body.
	var status string
	if v, ok := jsonscan.Lookup(e.Body, "status"); ok {
		_ = json.Unmarshal(v, &status)
	}
	switch s := strings.ToUpper(status); s {
	case "RED", "ORANGE", "YELLOW", "GREEN":
		return s
	case "ONLINE", "CONNECTED", "OK", "UP":
		return "GREEN"
	case "DEGRADED", "WARNING":
		return "YELLOW"
	case "ERROR":
		return "ORANGE"
	case "OFFLINE", "DISCONNECTED", "DOWN":
		return "RED"
	}
	return "UNKNOWN"
}

// getAlert serves the latest stored event of an alert, looked up by the
// request field that names it, under the response key the vendor uses.
func (a *API) getAlert(field, key string) rhombusHandler {
	return func(r *http.Request, p herald.Principal, body map[string]json.RawMessage) (map[string]any, error) {
		var uuid string
		if json.Unmarshal(body[field], &uuid) != nil || uuid == "" {
			return nil, &herald.Error{Code: herald.EINVALID, Field: field, Message: "is required", Index: -1}
		}
		e, err := a.State.Latest(r.Context(), p.Org, herald.StateQuery{EntityUUID: uuid})
		if err != nil {
			if herald.ErrorCode(err) == herald.ENOTFOUND {
				return nil, herald.Errorf(herald.ENOTFOUND, "no alert %s", uuid)
			}
			return nil, err
		}
		return map[string]any{key: policyAlert(e)}, nil
	}
}

// policyAlert renders an alert event in the shape of Rhombus's
// getPolicyAlertDetails: every canonical field, plus the vendor's names.
func policyAlert(e *herald.Event) map[string]any {
	out := map[string]any{}
	json.Unmarshal(e.Body, &out)
	out["uuid"] = e.EntityUUID
	out["orgUuid"] = e.Org
	for _, k := range []string{"locationUuid", "policyUuid", "thumbnailLocation"} {
		if _, ok := out[k]; !ok {
			out[k] = nil
		}
	}
	for _, k := range []string{"boundingBoxes", "seekPoints", "policyAlertTriggers"} {
		if _, ok := out[k]; !ok {
			out[k] = []any{}
		}
	}
	return out
}

func formatID(id uint64) string { return strconv.FormatUint(id, 10) }
