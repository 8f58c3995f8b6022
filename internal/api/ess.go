package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/dialect/ess"
)

// The name lookups the vendor's Events and State samples call
// (config_api.py): GET /api/rest/v1/{path} with the session's bearer
// token, reading data.displayName, data.state. Answers are {"data":{…}};
// anything unknown, and another org's device, is the same 404.
func (a *API) registerESS(mux Mux) {
	mux.HandleFunc("GET /api/rest/v1/eventTypes", a.essEventTypes)
	mux.HandleFunc("GET /api/rest/v1/eventTypes/{id}", a.essEventType)
	mux.HandleFunc("GET /api/rest/v1/stateGroups", a.essStateGroups)
	mux.HandleFunc("GET /api/rest/v1/stateGroups/{id}", a.essStateGroup)
	mux.HandleFunc("GET /api/rest/v1/{resourceType}/{id}", a.essSource)
}

// essPrincipal authenticates a lookup: a bearer JWT or API key, or
// x-auth-apikey, with the subscribe scope.
func (a *API) essPrincipal(r *http.Request) (herald.Principal, error) {
	var p herald.Principal
	var err error
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	switch {
	case r.Header.Get("x-auth-apikey") != "":
		p, err = a.Keys.Authenticate(r.Context(), r.Header.Get("x-auth-apikey"))
	case strings.EqualFold(scheme, "bearer") && strings.TrimSpace(token) != "":
		p, _, err = a.BearerPrincipal(r.Context(), strings.TrimSpace(token))
	default:
		err = herald.Errorf(herald.EUNAUTHORIZED, "send Authorization: Bearer <token> (or x-auth-apikey)")
	}
	if err == nil && !p.Can(herald.ScopeSubscribe) {
		err = herald.Errorf(herald.EFORBIDDEN, "the credential lacks the subscribe scope")
	}
	return p, err
}

func (a *API) essAuthorized(w http.ResponseWriter, r *http.Request) (herald.Principal, bool) {
	p, err := a.essPrincipal(r)
	if err != nil {
		WriteError(w, a.Logger, err)
		return p, false
	}
	return p, true
}

// essNotFound answers 404 without echoing the id: another org's device
// and an unknown one must read the same.
func essNotFound(w http.ResponseWriter, a *API, what, _ string) {
	WriteError(w, a.Logger, herald.Errorf(herald.ENOTFOUND, "no %s with this id", what))
}

func eventTypeData(t *ess.EventType) map[string]any {
	d := map[string]any{"id": t.ID, "name": t.Entity, "displayName": t.DisplayName}
	if t.StateGroup != nil {
		d["state"], d["stateGroupId"] = t.State, t.StateGroup.ID
	}
	return d
}

func stateGroupData(g *ess.StateGroup) map[string]any {
	states := make([]map[string]any, 0, len(g.Types))
	for _, t := range g.Types {
		states = append(states, map[string]any{"eventTypeId": t.ID, "name": t.State})
	}
	return map[string]any{"id": g.ID, "name": g.Name, "displayName": g.DisplayName, "states": states}
}

func (a *API) essEventType(w http.ResponseWriter, r *http.Request) {
	p, ok := a.essAuthorized(w, r)
	if !ok {
		return
	}
	t := ess.LookupType(p.Org, r.PathValue("id"))
	if t == nil {
		essNotFound(w, a, "event type", r.PathValue("id"))
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"data": eventTypeData(t)})
}

func (a *API) essEventTypes(w http.ResponseWriter, r *http.Request) {
	p, ok := a.essAuthorized(w, r)
	if !ok {
		return
	}
	var list []map[string]any
	for _, t := range ess.KnownTypes(p.Org) {
		list = append(list, eventTypeData(t))
	}
	WriteJSON(w, http.StatusOK, map[string]any{"array": list})
}

func (a *API) essStateGroup(w http.ResponseWriter, r *http.Request) {
	if _, ok := a.essAuthorized(w, r); !ok {
		return
	}
	g := ess.LookupStateGroup(r.PathValue("id"))
	if g == nil {
		essNotFound(w, a, "state group", r.PathValue("id"))
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"data": stateGroupData(g)})
}

func (a *API) essStateGroups(w http.ResponseWriter, r *http.Request) {
	if _, ok := a.essAuthorized(w, r); !ok {
		return
	}
	var list []map[string]any
	for _, g := range ess.StateGroups() {
		list = append(list, stateGroupData(g))
	}
	WriteJSON(w, http.StatusOK, map[string]any{"array": list})
}

// essSource is GET /api/rest/v1/{resourceType}/{id}: a registered device
// of the caller's org whose kind renders as that resource type.
func (a *API) essSource(w http.ResponseWriter, r *http.Request) {
	p, ok := a.essAuthorized(w, r)
	if !ok {
		return
	}
	resourceType, id := r.PathValue("resourceType"), r.PathValue("id")
	if _, known := ess.KindsOf(resourceType); !known {
		essNotFound(w, a, resourceType, id)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	device, err := a.Registry.Device(ctx, p.Org, id)
	if herald.ErrorCode(err) == herald.ENOTFOUND && strings.ToLower(id) != id {
		device, err = a.Registry.Device(ctx, p.Org, strings.ToLower(id))
	}
	switch {
	case herald.ErrorCode(err) == herald.ENOTFOUND:
		essNotFound(w, a, resourceType, id)
		return
	case err != nil:
		WriteError(w, a.Logger, err)
		return
	case !strings.EqualFold(ess.ResourceType(device.Kind, ""), resourceType):
		essNotFound(w, a, resourceType, id)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"data": map[string]any{
		"id": device.UUID, "name": device.Name, "displayName": device.Name, "kind": device.Kind}})
}
