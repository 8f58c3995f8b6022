package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/auth"
	"github.com/herald-gw/herald/internal/inmem"
)

// adminServer is the API's mux on the in-memory engine with one org and
// an admin key, "admin-key"; every exchange is checked against the
// OpenAPI document.
type adminServer struct {
	t    *testing.T
	eng  *inmem.Engine
	url  string
	spec validator.Validator
}

func newAdminServer(t *testing.T) *adminServer {
	t.Helper()
	ctx := context.Background()
	eng := inmem.New(inmem.Config{})
	if err := eng.PutOrg(ctx, herald.Org{UUID: "org-a", Name: "A"}); err != nil {
		t.Fatal(err)
	}
	for key, scopes := range map[string][]string{"admin-key": {herald.ScopeAdmin}, "sub-key": {herald.ScopeSubscribe}} {
		if err := eng.PutAPIKey(ctx, herald.APIKey{Hash: herald.HashAPIKey(key), Org: "org-a", Name: key, Scopes: scopes}); err != nil {
			t.Fatal(err)
		}
	}
	a := &API{Log: eng, State: eng, Registry: eng, Keys: auth.Keys{Registry: eng}}
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &adminServer{t: t, eng: eng, url: srv.URL, spec: openAPIValidator(t)}
}

func openAPIValidator(t *testing.T) validator.Validator {
	t.Helper()
	doc, err := libopenapi.NewDocument(openAPI)
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return v
}

// do sends the request with key (none if "") and returns the status and
// the decoded JSON body (nil if none). The exchange must match the
// OpenAPI document.
func (s *adminServer) do(method, path, key string, body any) (int, map[string]any) {
	s.t.Helper()
	var raw []byte
	if body != nil {
		if b, ok := body.(string); ok {
			raw = []byte(b)
		} else {
			raw, _ = json.Marshal(body)
		}
	}
	req, err := http.NewRequest(method, s.url+path, bytes.NewReader(raw))
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("x-auth-apikey", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(data) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			s.t.Fatalf("%s %s: %d, body is not JSON: %q", method, path, resp.StatusCode, data)
		}
	}
	// The validator reads both bodies again.
	check, _ := http.NewRequest(method, s.url+path, bytes.NewReader(raw))
	check.Header = req.Header
	resp.Body = io.NopCloser(bytes.NewReader(data))
	wantValid := resp.StatusCode != http.StatusBadRequest // a refused request breaks the schema on purpose
	if ok, errs := s.spec.ValidateHttpResponse(check, resp); !ok {
		s.t.Errorf("%s %s: the %d response does not match the OpenAPI document: %s", method, path, resp.StatusCode, describe(errs))
	}
	if wantValid && key != "" {
		check, _ = http.NewRequest(method, s.url+path, bytes.NewReader(raw))
		check.Header = req.Header
		if ok, errs := s.spec.ValidateHttpRequest(check); !ok {
			s.t.Errorf("%s %s: the request does not match the OpenAPI document: %s", method, path, describe(errs))
		}
	}
	return resp.StatusCode, out
}

func describe[E interface{ Error() string }](errs []E) string {
	var b strings.Builder
	for _, e := range errs {
		b.WriteString("\n  " + e.Error())
	}
	return b.String()
}

func (s *adminServer) want(status int, method, path string, body any) map[string]any {
	s.t.Helper()
	got, out := s.do(method, path, "admin-key", body)
	if got != status {
		s.t.Fatalf("%s %s: %d %v, want %d", method, path, got, out, status)
	}
	return out
}

// wantError checks a refusal: status, herald's code and, if given, field.
func (s *adminServer) wantError(status int, code, field, method, path string, body any) {
	s.t.Helper()
	out := s.want(status, method, path, body)
	e, _ := out["error"].(map[string]any)
	if e["code"] != code || field != "" && e["field"] != field {
		s.t.Fatalf("%s %s: error %v, want code %s field %q", method, path, e, code, field)
	}
}

func TestAdminNeedsTheAdminScope(t *testing.T) {
	s := newAdminServer(t)
	if got, _ := s.do("GET", "/api/admin/orgs", "", nil); got != http.StatusUnauthorized {
		t.Fatalf("no key: %d, want 401", got)
	}
	if got, _ := s.do("GET", "/api/admin/orgs", "nope", nil); got != http.StatusUnauthorized {
		t.Fatalf("unknown key: %d, want 401", got)
	}
	if got, _ := s.do("GET", "/api/admin/orgs", "sub-key", nil); got != http.StatusForbidden {
		t.Fatalf("subscribe key: %d, want 403", got)
	}
}

func TestAdminOrgs(t *testing.T) {
	s := newAdminServer(t)
	created := s.want(http.StatusCreated, "POST", "/api/admin/orgs", map[string]any{"name": "Acme"})
	uuid, _ := created["uuid"].(string)
	if len(uuid) != 36 || created["name"] != "Acme" {
		t.Fatalf("created %v", created)
	}
	s.want(http.StatusCreated, "POST", "/api/admin/orgs", map[string]any{"uuid": "Org-Z", "name": "Z"})
	s.wantError(http.StatusConflict, herald.ECONFLICT, "", "POST", "/api/admin/orgs", map[string]any{"uuid": "org-z", "name": "again"})
	s.wantError(http.StatusBadRequest, herald.EINVALID, "name", "POST", "/api/admin/orgs", map[string]any{"uuid": "x"})
	s.wantError(http.StatusBadRequest, herald.EINVALID, "uuid", "POST", "/api/admin/orgs", map[string]any{"uuid": "a.b", "name": "n"})
	s.wantError(http.StatusBadRequest, herald.EINVALID, "", "POST", "/api/admin/orgs", map[string]any{"name": "n", "colour": "red"})
	s.wantError(http.StatusBadRequest, herald.EINVALID, "", "POST", "/api/admin/orgs", `{"name":`)

	list := s.want(http.StatusOK, "GET", "/api/admin/orgs", nil)
	if n := len(list["orgs"].([]any)); n != 3 {
		t.Fatalf("%d orgs listed, want 3: %v", n, list)
	}
	if got := s.want(http.StatusOK, "GET", "/api/admin/orgs/ORG-Z", nil); got["name"] != "Z" {
		t.Fatalf("show: %v", got)
	}
	if got := s.want(http.StatusOK, "PATCH", "/api/admin/orgs/org-z", map[string]any{"name": "Zed"}); got["name"] != "Zed" {
		t.Fatalf("update: %v", got)
	}
	s.wantError(http.StatusNotFound, herald.ENOTFOUND, "", "GET", "/api/admin/orgs/nope", nil)
	s.wantError(http.StatusNotFound, herald.ENOTFOUND, "", "PATCH", "/api/admin/orgs/nope", map[string]any{"name": "x"})

	// Deleting an org deletes its keys, users and devices too.
	s.want(http.StatusCreated, "POST", "/api/admin/orgs/org-z/keys", map[string]any{"name": "k"})
	s.want(http.StatusCreated, "POST", "/api/admin/orgs/org-z/users", map[string]any{"name": "u", "password": "password1"})
	s.want(http.StatusCreated, "POST", "/api/admin/orgs/org-z/devices", map[string]any{"uuid": "d"})
	s.want(http.StatusNoContent, "DELETE", "/api/admin/orgs/org-z", nil)
	s.wantError(http.StatusNotFound, herald.ENOTFOUND, "", "GET", "/api/admin/orgs/org-z", nil)
	ctx := context.Background()
	keys, _ := s.eng.APIKeys(ctx, "org-z")
	users, _ := s.eng.Users(ctx, "org-z")
	devices, _ := s.eng.Devices(ctx, "org-z")
	if len(keys)+len(users)+len(devices) != 0 {
		t.Fatalf("the deleted org left %v %v %v", keys, users, devices)
	}
	s.wantError(http.StatusNotFound, herald.ENOTFOUND, "", "DELETE", "/api/admin/orgs/org-z", nil)
}

func TestAdminKeys(t *testing.T) {
	s := newAdminServer(t)
	created := s.want(http.StatusCreated, "POST", "/api/admin/orgs/org-a/keys", map[string]any{"name": "cams", "scopes": []string{"subscribe", "publish", "subscribe"}})
	key, _ := created["key"].(string)
	id, _ := created["id"].(string)
	if !strings.HasPrefix(key, "hk_") || id != herald.HashAPIKey(key) {
		t.Fatalf("created %v", created)
	}
	if scopes := created["scopes"].([]any); len(scopes) != 2 {
		t.Fatalf("scopes %v, want subscribe and publish once each", scopes)
	}
	// The key works, and is never shown again.
	p, err := (auth.Keys{Registry: s.eng}).Authenticate(context.Background(), key)
	if err != nil || p.Org != "org-a" || !p.Can(herald.ScopePublish) {
		t.Fatalf("the new key authenticates as %v, %v", p, err)
	}
	shown := s.want(http.StatusOK, "GET", "/api/admin/orgs/org-a/keys/"+id, nil)
	if _, ok := shown["key"]; ok || shown["name"] != "cams" {
		t.Fatalf("show: %v", shown)
	}
	list := s.want(http.StatusOK, "GET", "/api/admin/orgs/org-a/keys", nil)
	var names []string
	for _, k := range list["keys"].([]any) {
		k := k.(map[string]any)
		if _, ok := k["key"]; ok {
			t.Fatalf("list shows a key: %v", k)
		}
		names = append(names, k["name"].(string))
	}
	if !slices.Equal(names, []string{"admin-key", "cams", "sub-key"}) {
		t.Fatalf("listed %v", names)
	}
	if got := s.want(http.StatusCreated, "POST", "/api/admin/orgs/org-a/keys", map[string]any{}); got["scopes"].([]any)[0] != "subscribe" {
		t.Fatalf("default scopes: %v", got)
	}
	s.wantError(http.StatusBadRequest, herald.EINVALID, "scopes", "POST", "/api/admin/orgs/org-a/keys", map[string]any{"scopes": []string{"root"}})
	s.wantError(http.StatusBadRequest, herald.EINVALID, "scopes", "POST", "/api/admin/orgs/org-a/keys", map[string]any{"scopes": []string{}})
	s.wantError(http.StatusNotFound, herald.ENOTFOUND, "", "POST", "/api/admin/orgs/nope/keys", map[string]any{})

	updated := s.want(http.StatusOK, "PATCH", "/api/admin/orgs/org-a/keys/"+id, map[string]any{"name": "cameras", "scopes": []string{"publish"}})
	if updated["name"] != "cameras" || len(updated["scopes"].([]any)) != 1 {
		t.Fatalf("update: %v", updated)
	}
	// Another org's path does not reach the key.
	s.want(http.StatusCreated, "POST", "/api/admin/orgs", map[string]any{"uuid": "org-b", "name": "B"})
	s.wantError(http.StatusNotFound, herald.ENOTFOUND, "", "GET", "/api/admin/orgs/org-b/keys/"+id, nil)
	s.wantError(http.StatusNotFound, herald.ENOTFOUND, "", "DELETE", "/api/admin/orgs/org-b/keys/"+id, nil)

	s.want(http.StatusNoContent, "DELETE", "/api/admin/orgs/org-a/keys/"+id, nil)
	if _, err := (auth.Keys{Registry: s.eng}).Authenticate(context.Background(), key); herald.ErrorCode(err) != herald.EUNAUTHORIZED {
		t.Fatalf("a deleted key authenticates: %v", err)
	}
	s.wantError(http.StatusNotFound, herald.ENOTFOUND, "", "GET", "/api/admin/orgs/org-a/keys/"+id, nil)
	s.wantError(http.StatusNotFound, herald.ENOTFOUND, "", "GET", "/api/admin/orgs/org-a/keys/not-hex", nil)
}

func TestAdminUsers(t *testing.T) {
	s := newAdminServer(t)
	if got := s.want(http.StatusCreated, "POST", "/api/admin/orgs/org-a/users", map[string]any{"name": "ann", "password": "correct horse"}); got["name"] != "ann" || got["passwordHash"] != nil {
		t.Fatalf("created %v", got)
	}
	s.wantError(http.StatusConflict, herald.ECONFLICT, "", "POST", "/api/admin/orgs/org-a/users", map[string]any{"name": "ann", "password": "another one"})
	s.wantError(http.StatusBadRequest, herald.EINVALID, "password", "POST", "/api/admin/orgs/org-a/users", map[string]any{"name": "bob", "password": "short"})
	s.wantError(http.StatusBadRequest, herald.EINVALID, "name", "POST", "/api/admin/orgs/org-a/users", map[string]any{"name": "a/b", "password": "long enough"})
	s.wantError(http.StatusBadRequest, herald.EINVALID, "name", "POST", "/api/admin/orgs/org-a/users", map[string]any{"name": "a\x00b", "password": "long enough"})
	stored, err := s.eng.User(context.Background(), "org-a", "ann")
	if err != nil || stored.PasswordHash == "" || strings.Contains(stored.PasswordHash, "horse") {
		t.Fatalf("stored %v, %v", stored, err)
	}
	if got := s.want(http.StatusOK, "GET", "/api/admin/orgs/org-a/users/ann", nil); got["name"] != "ann" || len(got) != 2 {
		t.Fatalf("show: %v", got)
	}
	s.want(http.StatusOK, "PATCH", "/api/admin/orgs/org-a/users/ann", map[string]any{"password": "battery staple"})
	if again, _ := s.eng.User(context.Background(), "org-a", "ann"); again.PasswordHash == stored.PasswordHash {
		t.Fatal("the password did not change")
	}
	if got := s.want(http.StatusOK, "GET", "/api/admin/orgs/org-a/users", nil); len(got["users"].([]any)) != 1 {
		t.Fatalf("list: %v", got)
	}
	s.want(http.StatusNoContent, "DELETE", "/api/admin/orgs/org-a/users/ann", nil)
	s.wantError(http.StatusNotFound, herald.ENOTFOUND, "", "GET", "/api/admin/orgs/org-a/users/ann", nil)
	s.wantError(http.StatusNotFound, herald.ENOTFOUND, "", "DELETE", "/api/admin/orgs/org-a/users/ann", nil)
}

func TestAdminDevices(t *testing.T) {
	s := newAdminServer(t)
	created := s.want(http.StatusCreated, "POST", "/api/admin/orgs/org-a/devices", map[string]any{"uuid": "cam-1", "name": "Lobby", "kind": "camera", "number": 7})
	if created["org"] != "org-a" || created["number"] != float64(7) {
		t.Fatalf("created %v", created)
	}
	s.wantError(http.StatusConflict, herald.ECONFLICT, "", "POST", "/api/admin/orgs/org-a/devices", map[string]any{"uuid": "cam-1"})
	s.wantError(http.StatusBadRequest, herald.EINVALID, "uuid", "POST", "/api/admin/orgs/org-a/devices", map[string]any{"name": "x"})
	s.wantError(http.StatusBadRequest, herald.EINVALID, "kind", "POST", "/api/admin/orgs/org-a/devices", map[string]any{"uuid": "d", "kind": "Cam era"})
	s.wantError(http.StatusBadRequest, herald.EINVALID, "number", "POST", "/api/admin/orgs/org-a/devices", map[string]any{"uuid": "d", "number": -1})
	s.wantError(http.StatusBadRequest, herald.EINVALID, "org", "POST", "/api/admin/orgs/org-a/devices", map[string]any{"uuid": "d", "org": "org-b"})
	if got := s.want(http.StatusOK, "PATCH", "/api/admin/orgs/org-a/devices/cam-1", map[string]any{"name": "Front door"}); got["name"] != "Front door" || got["kind"] != "camera" {
		t.Fatalf("update: %v", got)
	}
	if got := s.want(http.StatusOK, "GET", "/api/admin/orgs/org-a/devices/cam-1", nil); got["name"] != "Front door" {
		t.Fatalf("show: %v", got)
	}
	if got := s.want(http.StatusOK, "GET", "/api/admin/orgs/org-a/devices", nil); len(got["devices"].([]any)) != 1 {
		t.Fatalf("list: %v", got)
	}
	s.want(http.StatusNoContent, "DELETE", "/api/admin/orgs/org-a/devices/cam-1", nil)
	s.wantError(http.StatusNotFound, herald.ENOTFOUND, "", "GET", "/api/admin/orgs/org-a/devices/cam-1", nil)
}

// Every deletion that revokes a credential reaches a revocation watch.
func TestAdminRevokes(t *testing.T) {
	s := newAdminServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan herald.Revocation, 16)
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.eng.WatchRevocations(ctx, func(r herald.Revocation) { got <- r }, func() { close(ready) })
	}()
	defer func() { cancel(); <-done }()
	<-ready
	expect := func(want herald.Revocation) {
		t.Helper()
		select {
		case r := <-got:
			if r != want {
				t.Fatalf("revocation %v, want %v", r, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no revocation, want %v", want)
		}
	}
	id := s.want(http.StatusCreated, "POST", "/api/admin/orgs/org-a/keys", map[string]any{"scopes": []string{"subscribe"}})["id"].(string)
	s.want(http.StatusOK, "PATCH", "/api/admin/orgs/org-a/keys/"+id, map[string]any{"scopes": []string{"publish"}})
	expect(herald.Revocation{Credential: herald.KeyCredential(id)})
	s.want(http.StatusNoContent, "DELETE", "/api/admin/orgs/org-a/keys/"+id, nil)
	expect(herald.Revocation{Credential: herald.KeyCredential(id)})
	s.want(http.StatusCreated, "POST", "/api/admin/orgs/org-a/users", map[string]any{"name": "ann", "password": "long enough"})
	s.want(http.StatusNoContent, "DELETE", "/api/admin/orgs/org-a/users/ann", nil)
	expect(herald.Revocation{Org: "org-a", Credential: herald.UserCredential("ann")})
}

// routeRecorder is a Mux that keeps the patterns mounted on it.
type routeRecorder struct{ patterns []string }

func (r *routeRecorder) Handle(pattern string, _ http.Handler) {
	r.patterns = append(r.patterns, pattern)
}
func (r *routeRecorder) HandleFunc(pattern string, _ func(http.ResponseWriter, *http.Request)) {
	r.patterns = append(r.patterns, pattern)
}

// The document is valid OpenAPI 3.1 and names exactly the admin routes
// Register mounts, and the document's own route.
func TestOpenAPI(t *testing.T) {
	doc, err := libopenapi.NewDocument(openAPI)
	if err != nil {
		t.Fatal(err)
	}
	if v := doc.GetVersion(); v != "3.1.0" {
		t.Fatalf("openapi %s, want 3.1.0", v)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if ok, errs := v.ValidateDocument(); !ok {
		t.Fatalf("the document is not valid OpenAPI:%s", describe(errs))
	}

	var rec routeRecorder
	(&API{}).Register(&rec)
	var mounted []string
	for _, p := range rec.patterns {
		method, path, _ := strings.Cut(p, " ")
		if strings.HasPrefix(path, "/api/admin/") || path == "/api/openapi.json" {
			mounted = append(mounted, method+" "+path)
		}
	}
	var spec struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &spec); err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, ops := range spec.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(mounted)
	slices.Sort(documented)
	if !slices.Equal(mounted, documented) {
		t.Fatalf("routes and document differ:\nmounted    %v\ndocumented %v", mounted, documented)
	}

	// Served as it is, without a credential.
	mux := http.NewServeMux()
	(&API{}).Register(mux)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/api/openapi.json", nil))
	if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), openAPI) || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET /api/openapi.json: %d %s", w.Code, w.Header())
	}
}
