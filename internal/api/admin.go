package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/herald-gw/herald"
)

// The admin API: orgs, API keys, users and devices under /api/admin/,
// for credentials with the admin scope (which administers every org).
// Deleting a key or a user, or removing a key's subscribe scope, or
// deleting an org revokes the credential: every node ends the connections
// that authenticated with it (herald.Registry.WatchRevocations).

// maxAdminBody bounds an admin request's JSON body.
const maxAdminBody = 64 << 10

// Password bounds: bcrypt reads at most 72 bytes.
const (
	minPasswordBytes = 8
	maxPasswordBytes = 72
)

func (a *API) registerAdmin(mux Mux) {
	for _, r := range []struct {
		pattern string
		handle  func(w http.ResponseWriter, r *http.Request) error
	}{
		{"GET /api/admin/orgs", a.listOrgs},
		{"POST /api/admin/orgs", a.createOrg},
		{"GET /api/admin/orgs/{org}", a.showOrg},
		{"PATCH /api/admin/orgs/{org}", a.updateOrg},
		{"DELETE /api/admin/orgs/{org}", a.deleteOrg},
		{"GET /api/admin/orgs/{org}/keys", a.listKeys},
		{"POST /api/admin/orgs/{org}/keys", a.createKey},
		{"GET /api/admin/orgs/{org}/keys/{id}", a.showKey},
		{"PATCH /api/admin/orgs/{org}/keys/{id}", a.updateKey},
		{"DELETE /api/admin/orgs/{org}/keys/{id}", a.deleteKey},
		{"GET /api/admin/orgs/{org}/users", a.listUsers},
		{"POST /api/admin/orgs/{org}/users", a.createUser},
		{"GET /api/admin/orgs/{org}/users/{name}", a.showUser},
		{"PATCH /api/admin/orgs/{org}/users/{name}", a.updateUser},
		{"DELETE /api/admin/orgs/{org}/users/{name}", a.deleteUser},
		{"GET /api/admin/orgs/{org}/devices", a.listDevices},
		{"POST /api/admin/orgs/{org}/devices", a.createDevice},
		{"GET /api/admin/orgs/{org}/devices/{uuid}", a.showDevice},
		{"PATCH /api/admin/orgs/{org}/devices/{uuid}", a.updateDevice},
		{"DELETE /api/admin/orgs/{org}/devices/{uuid}", a.deleteDevice},
	} {
		mux.Handle(r.pattern, a.AdminOnly(adminHandler(a, r.handle)))
	}
}

// adminHandler writes the error a handler returns in herald's shape.
func adminHandler(a *API, h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			WriteError(w, a.Logger, err)
		}
	})
}

// Mux is where endpoints are mounted: an *http.ServeMux, or a test's
// recorder of the routes.
type Mux interface {
	Handle(pattern string, handler http.Handler)
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// adminKey is an API key as the admin API shows it: never the key itself,
// except once, in Key, when it is created.
type adminKey struct {
	ID     string   `json:"id"` // the key's hash
	Org    string   `json:"org"`
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
	Key    string   `json:"key,omitempty"`
}

// adminUser is a user as the admin API shows it (without the hash).
type adminUser struct {
	Org  string `json:"org"`
	Name string `json:"name"`
}

func showKey(k herald.APIKey) adminKey {
	return adminKey{ID: k.Hash, Org: k.Org, Name: k.Name, Scopes: k.Scopes}
}

// readJSON decodes the request's JSON object body into v, refusing
// unknown fields and anything after the object.
func readJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAdminBody+1))
	if err != nil {
		return herald.Errorf(herald.EINVALID, "cannot read the request body: %v", err)
	}
	if len(body) > maxAdminBody {
		return herald.Errorf(herald.ETOOLARGE, "the request body is larger than %d bytes", maxAdminBody)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return herald.Errorf(herald.EINVALID, "the request body must be a JSON object")
		}
		return herald.Errorf(herald.EINVALID, "the request body is not valid: %v", err)
	}
	if dec.More() {
		return herald.Errorf(herald.EINVALID, "the request body must hold one JSON object")
	}
	return nil
}

func invalid(field, format string, args ...any) error {
	e := herald.Errorf(herald.EINVALID, format, args...)
	e.Field = field
	return e
}

// checkName checks a user's or key's name: printable UTF-8 of 1 to
// herald.MaxNameBytes bytes.
func checkName(field, name string, empty bool) error {
	switch {
	case name == "" && !empty:
		return invalid(field, "%s is required", field)
	case len(name) > herald.MaxNameBytes:
		return invalid(field, "%s may have at most %d bytes", field, herald.MaxNameBytes)
	case !utf8.ValidString(name) || strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return invalid(field, "%s must be printable text", field)
	}
	return nil
}

// checkOrgUUID checks an org's uuid as the engine stores it.
func checkOrgUUID(uuid string) error {
	if uuid == "" || len(uuid) > 64 || strings.IndexFunc(uuid, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) >= 0 {
		return invalid("uuid", "an org's uuid must have 1 to 64 lower-case letters, digits, '-' or '_'")
	}
	return nil
}

func checkScopes(scopes []string) error {
	if len(scopes) == 0 {
		return invalid("scopes", "scopes must name at least one of %s", strings.Join(herald.AllScopes, ", "))
	}
	for _, s := range scopes {
		if !herald.ValidScope(s) {
			return invalid("scopes", "unknown scope %q: the scopes are %s", clip(s), strings.Join(herald.AllScopes, ", "))
		}
	}
	return nil
}

// org returns the org the request's path names.
func (a *API) org(r *http.Request) (herald.Org, error) {
	return a.Registry.Org(r.Context(), strings.ToLower(r.PathValue("org")))
}

// --- orgs ---

func (a *API) listOrgs(w http.ResponseWriter, r *http.Request) error {
	orgs, err := a.Registry.Orgs(r.Context())
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, map[string][]herald.Org{"orgs": nonNil(orgs)})
	return nil
}

func (a *API) createOrg(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		UUID string `json:"uuid"`
		Name string `json:"name"`
	}
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if in.UUID == "" {
		in.UUID = NewUUID()
	}
	in.UUID = strings.ToLower(in.UUID)
	if err := checkOrgUUID(in.UUID); err != nil {
		return err
	}
	if err := checkName("name", in.Name, false); err != nil {
		return err
	}
	if err := a.absent(r.Context(), "org "+in.UUID, func(ctx context.Context) error {
		_, err := a.Registry.Org(ctx, in.UUID)
		return err
	}); err != nil {
		return err
	}
	org := herald.Org{UUID: in.UUID, Name: in.Name}
	if err := a.Registry.PutOrg(r.Context(), org); err != nil {
		return err
	}
	WriteJSON(w, http.StatusCreated, org)
	return nil
}

// absent returns ECONFLICT if lookup finds what, nil if it does not.
func (a *API) absent(ctx context.Context, what string, lookup func(context.Context) error) error {
	err := lookup(ctx)
	switch herald.ErrorCode(err) {
	case herald.ENOTFOUND:
		return nil
	case "":
		return herald.Errorf(herald.ECONFLICT, "%s exists already", what)
	}
	return err
}

func (a *API) showOrg(w http.ResponseWriter, r *http.Request) error {
	org, err := a.org(r)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, org)
	return nil
}

func (a *API) updateOrg(w http.ResponseWriter, r *http.Request) error {
	org, err := a.org(r)
	if err != nil {
		return err
	}
	var in struct {
		Name *string `json:"name"`
	}
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if in.Name != nil {
		if err := checkName("name", *in.Name, false); err != nil {
			return err
		}
		org.Name = *in.Name
	}
	if err := a.Registry.PutOrg(r.Context(), org); err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, org)
	return nil
}

// deleteOrg deletes the org's keys, users and devices, then the org: a
// failure midway leaves the org, and deleting it again goes on. Its
// events stay in the log until retention removes them.
func (a *API) deleteOrg(w http.ResponseWriter, r *http.Request) error {
	org, err := a.org(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	keys, err := a.Registry.APIKeys(ctx, org.UUID)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := ignoreNotFound(a.Registry.DeleteAPIKey(ctx, k.Hash)); err != nil {
			return err
		}
	}
	users, err := a.Registry.Users(ctx, org.UUID)
	if err != nil {
		return err
	}
	for _, u := range users {
		if err := ignoreNotFound(a.Registry.DeleteUser(ctx, org.UUID, u.Name)); err != nil {
			return err
		}
	}
	devices, err := a.Registry.Devices(ctx, org.UUID)
	if err != nil {
		return err
	}
	for _, d := range devices {
		if err := ignoreNotFound(a.Registry.DeleteDevice(ctx, org.UUID, d.UUID)); err != nil {
			return err
		}
	}
	if err := a.Registry.DeleteOrg(ctx, org.UUID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func ignoreNotFound(err error) error {
	if herald.ErrorCode(err) == herald.ENOTFOUND {
		return nil
	}
	return err
}

// --- API keys ---

func (a *API) listKeys(w http.ResponseWriter, r *http.Request) error {
	org, err := a.org(r)
	if err != nil {
		return err
	}
	keys, err := a.Registry.APIKeys(r.Context(), org.UUID)
	if err != nil {
		return err
	}
	out := make([]adminKey, len(keys))
	for i, k := range keys {
		out[i] = showKey(k)
	}
	WriteJSON(w, http.StatusOK, map[string][]adminKey{"keys": out})
	return nil
}

// createKey makes a new random key: the answer is the only time it is
// shown, as only its hash is stored.
func (a *API) createKey(w http.ResponseWriter, r *http.Request) error {
	org, err := a.org(r)
	if err != nil {
		return err
	}
	var in struct {
		Name   string   `json:"name"`
		Scopes []string `json:"scopes"`
	}
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if err := checkName("name", in.Name, true); err != nil {
		return err
	}
	if in.Scopes == nil {
		in.Scopes = []string{herald.ScopeSubscribe}
	}
	if err := checkScopes(in.Scopes); err != nil {
		return err
	}
	secret := NewAPIKey()
	key := herald.APIKey{Hash: herald.HashAPIKey(secret), Org: org.UUID, Name: in.Name, Scopes: dedupe(in.Scopes)}
	if err := a.Registry.PutAPIKey(r.Context(), key); err != nil {
		return err
	}
	out := showKey(key)
	out.Key = secret
	WriteJSON(w, http.StatusCreated, out)
	return nil
}

// key returns the org's key the request's path names; a key of another
// org is not found.
func (a *API) key(r *http.Request) (herald.APIKey, error) {
	org, err := a.org(r)
	if err != nil {
		return herald.APIKey{}, err
	}
	id := strings.ToLower(r.PathValue("id"))
	key, err := a.Registry.APIKey(r.Context(), id)
	if err == nil && key.Org != org.UUID {
		err = herald.Errorf(herald.ENOTFOUND, "API key not found")
	}
	return key, err
}

func (a *API) showKey(w http.ResponseWriter, r *http.Request) error {
	key, err := a.key(r)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, showKey(key))
	return nil
}

func (a *API) updateKey(w http.ResponseWriter, r *http.Request) error {
	key, err := a.key(r)
	if err != nil {
		return err
	}
	var in struct {
		Name   *string  `json:"name"`
		Scopes []string `json:"scopes"`
	}
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if in.Name != nil {
		if err := checkName("name", *in.Name, true); err != nil {
			return err
		}
		key.Name = *in.Name
	}
	if in.Scopes != nil {
		if err := checkScopes(in.Scopes); err != nil {
			return err
		}
		key.Scopes = dedupe(in.Scopes)
	}
	if err := a.Registry.PutAPIKey(r.Context(), key); err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, showKey(key))
	return nil
}

func (a *API) deleteKey(w http.ResponseWriter, r *http.Request) error {
	key, err := a.key(r)
	if err != nil {
		return err
	}
	if err := a.Registry.DeleteAPIKey(r.Context(), key.Hash); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func dedupe(scopes []string) []string {
	var out []string
	for _, s := range scopes {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// --- users ---

func (a *API) listUsers(w http.ResponseWriter, r *http.Request) error {
	org, err := a.org(r)
	if err != nil {
		return err
	}
	users, err := a.Registry.Users(r.Context(), org.UUID)
	if err != nil {
		return err
	}
	out := make([]adminUser, len(users))
	for i, u := range users {
		out[i] = adminUser{Org: u.Org, Name: u.Name}
	}
	WriteJSON(w, http.StatusOK, map[string][]adminUser{"users": out})
	return nil
}

func checkPassword(password string) error {
	if len(password) < minPasswordBytes || len(password) > maxPasswordBytes {
		return invalid("password", "a password must have %d to %d bytes", minPasswordBytes, maxPasswordBytes)
	}
	return nil
}

func hashPassword(password string) (string, error) {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return "", herald.Errorf(herald.EINTERNAL, "hash the password: %v", err)
	}
	return string(hash), nil
}

func (a *API) createUser(w http.ResponseWriter, r *http.Request) error {
	org, err := a.org(r)
	if err != nil {
		return err
	}
	var in struct {
		Name     string `json:"name"`
		Password string `json:"password"`
	}
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if err := checkName("name", in.Name, false); err != nil {
		return err
	}
	if strings.Contains(in.Name, "/") {
		// The token endpoint reads "org/user" as a user of that org.
		return invalid("name", "a user's name may not contain '/'")
	}
	if err := checkPassword(in.Password); err != nil {
		return err
	}
	if err := a.absent(r.Context(), "user "+in.Name, func(ctx context.Context) error {
		_, err := a.Registry.User(ctx, org.UUID, in.Name)
		return err
	}); err != nil {
		return err
	}
	hash, err := hashPassword(in.Password)
	if err != nil {
		return err
	}
	if err := a.Registry.PutUser(r.Context(), herald.User{Org: org.UUID, Name: in.Name, PasswordHash: hash}); err != nil {
		return err
	}
	WriteJSON(w, http.StatusCreated, adminUser{Org: org.UUID, Name: in.Name})
	return nil
}

func (a *API) user(r *http.Request) (herald.User, error) {
	org, err := a.org(r)
	if err != nil {
		return herald.User{}, err
	}
	return a.Registry.User(r.Context(), org.UUID, r.PathValue("name"))
}

func (a *API) showUser(w http.ResponseWriter, r *http.Request) error {
	user, err := a.user(r)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, adminUser{Org: user.Org, Name: user.Name})
	return nil
}

// updateUser sets a new password. Connections already open stay: delete
// the user to end them.
func (a *API) updateUser(w http.ResponseWriter, r *http.Request) error {
	user, err := a.user(r)
	if err != nil {
		return err
	}
	var in struct {
		Password *string `json:"password"`
	}
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if in.Password != nil {
		if err := checkPassword(*in.Password); err != nil {
			return err
		}
		if user.PasswordHash, err = hashPassword(*in.Password); err != nil {
			return err
		}
		if err := a.Registry.PutUser(r.Context(), user); err != nil {
			return err
		}
	}
	WriteJSON(w, http.StatusOK, adminUser{Org: user.Org, Name: user.Name})
	return nil
}

func (a *API) deleteUser(w http.ResponseWriter, r *http.Request) error {
	user, err := a.user(r)
	if err != nil {
		return err
	}
	if err := a.Registry.DeleteUser(r.Context(), user.Org, user.Name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// --- devices ---

func (a *API) listDevices(w http.ResponseWriter, r *http.Request) error {
	org, err := a.org(r)
	if err != nil {
		return err
	}
	devices, err := a.Registry.Devices(r.Context(), org.UUID)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, map[string][]herald.Device{"devices": nonNil(devices)})
	return nil
}

func checkDevice(d herald.Device) error {
	if err := checkName("uuid", d.UUID, false); err != nil {
		return err
	}
	if err := checkName("name", d.Name, true); err != nil {
		return err
	}
	if len(d.Kind) > 64 || strings.IndexFunc(d.Kind, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r == '_') }) >= 0 {
		return invalid("kind", "a device's kind is a lower-case word (camera, sensor, door, …) of at most 64 bytes")
	}
	if d.Number < 0 {
		return invalid("number", "a device's number must be positive, or 0 for none")
	}
	return nil
}

func (a *API) createDevice(w http.ResponseWriter, r *http.Request) error {
	org, err := a.org(r)
	if err != nil {
		return err
	}
	var d herald.Device
	if err := readJSON(r, &d); err != nil {
		return err
	}
	if d.Org != "" && !strings.EqualFold(d.Org, org.UUID) {
		return invalid("org", "the device's org must be the path's, or left out")
	}
	d.Org = org.UUID
	if d.Kind == "" {
		d.Kind = "device" // as in the config
	}
	if err := checkDevice(d); err != nil {
		return err
	}
	if err := a.absent(r.Context(), "device "+d.UUID, func(ctx context.Context) error {
		_, err := a.Registry.Device(ctx, org.UUID, d.UUID)
		return err
	}); err != nil {
		return err
	}
	if err := a.Registry.PutDevice(r.Context(), d); err != nil {
		return err
	}
	WriteJSON(w, http.StatusCreated, d)
	return nil
}

func (a *API) device(r *http.Request) (herald.Device, error) {
	org, err := a.org(r)
	if err != nil {
		return herald.Device{}, err
	}
	return a.Registry.Device(r.Context(), org.UUID, r.PathValue("uuid"))
}

func (a *API) showDevice(w http.ResponseWriter, r *http.Request) error {
	d, err := a.device(r)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, d)
	return nil
}

func (a *API) updateDevice(w http.ResponseWriter, r *http.Request) error {
	d, err := a.device(r)
	if err != nil {
		return err
	}
	var in struct {
		Name   *string `json:"name"`
		Kind   *string `json:"kind"`
		Number *int64  `json:"number"`
	}
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if in.Name != nil {
		d.Name = *in.Name
	}
	if in.Kind != nil {
		d.Kind = *in.Kind
	}
	if in.Number != nil {
		d.Number = *in.Number
	}
	if err := checkDevice(d); err != nil {
		return err
	}
	if err := a.Registry.PutDevice(r.Context(), d); err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, d)
	return nil
}

func (a *API) deleteDevice(w http.ResponseWriter, r *http.Request) error {
	d, err := a.device(r)
	if err != nil {
		return err
	}
	if err := a.Registry.DeleteDevice(r.Context(), d.Org, d.UUID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// nonNil makes an empty list encode as [], not null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// NewUUID returns a random (version 4) UUID.
func NewUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// NewAPIKey returns a new random API key: "hk_" and 192 random bits.
func NewAPIKey() string {
	b := make([]byte, 24)
	rand.Read(b)
	return "hk_" + base64.RawURLEncoding.EncodeToString(b)
}
