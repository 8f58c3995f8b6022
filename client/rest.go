package client

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rest makes a Stream's HTTP requests: the org, tokens, the newest event
// id, device lookups.
type rest struct {
	base *url.URL // http(s)://host[/prefix]
	hc   *http.Client
	o    *options

	mu         sync.Mutex
	orgUUID    string
	orgName    string
	token      string // from the token endpoint
	tokenFresh time.Time
}

func newREST(rawURL string, o *options) (*rest, error) {
	base, found, err := baseURL(rawURL)
	if err != nil {
		return nil, err
	}
	switch {
	case o.dialect == "" && found == "":
		o.dialect = STOMP
	case o.dialect == "":
		o.dialect = found
	case found != "" && found != o.dialect:
		return nil, &Error{Message: "the URL " + rawURL + " is the " + string(found) + " dialect's, but " + string(o.dialect) + " was chosen", Permanent: true}
	}
	if _, err := ParseDialect(string(o.dialect)); err != nil {
		return nil, err
	}
	hc := o.httpClient
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return &rest{base: base, hc: hc, o: o}, nil
}

// url is the HTTP URL of path.
func (r *rest) url(path string) string {
	u := *r.base
	u.Path += path
	return u.String()
}

// wsURL is the WebSocket URL of path (with its query, if any).
func (r *rest) wsURL(path string) string {
	u := *r.base
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	return u.String() + path
}

// do sends a request and decodes a JSON answer into out; a status of 400
// or more is an *Error with the server's message.
func (r *rest) do(ctx context.Context, req *http.Request, out any) error {
	resp, err := r.hc.Do(req.WithContext(ctx))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		return httpError(req.Method+" "+req.URL.Path, resp.StatusCode, body)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return &ProtocolError{Message: req.URL.Path + " answered " + clip(string(body))}
	}
	return nil
}

// httpError is the error of a refused request: permanent for the
// statuses that mean the request itself is wrong.
func httpError(what string, status int, body []byte) *Error {
	msg := serverMessage(body)
	if msg == "" {
		msg = http.StatusText(status)
	}
	return &Error{Status: status, Message: what + ": " + strconv.Itoa(status) + " " + msg,
		Permanent: status == 400 || status == 401 || status == 403 || status == 404 || status == 405}
}

// serverMessage finds the message in any of herald's error shapes.
func serverMessage(body []byte) string {
	var shapes struct {
		Error       json.RawMessage `json:"error"`
		ErrorMsg    string          `json:"errorMsg"`
		Description string          `json:"error_description"`
		Head        struct {
			Errors []string `json:"errors"`
		} `json:"head"`
	}
	if json.Unmarshal(body, &shapes) != nil {
		return strings.TrimSpace(clip(string(body)))
	}
	var herald struct {
		Message string `json:"message"`
	}
	var code string
	switch {
	case json.Unmarshal(shapes.Error, &herald) == nil && herald.Message != "":
		return herald.Message
	case shapes.ErrorMsg != "":
		return shapes.ErrorMsg
	case len(shapes.Head.Errors) > 0:
		return strings.Join(shapes.Head.Errors, "; ")
	case json.Unmarshal(shapes.Error, &code) == nil && code != "":
		return code + ": " + shapes.Description
	}
	return strings.TrimSpace(clip(string(body)))
}

// authorize adds the Stream's REST credential to h: the API key, else a
// bearer token.
func (r *rest) authorize(ctx context.Context, h http.Header) error {
	if r.o.apiKey != "" {
		h.Set("x-auth-apikey", r.o.apiKey)
		return nil
	}
	token, err := r.bearer(ctx, true)
	if err != nil {
		return err
	}
	h.Set("Authorization", "Bearer "+token)
	return nil
}

// bearer returns a token: the one given, else one from the token
// endpoint for the user's password (or the API key, which the endpoint
// takes as a password). Without jwt, the API key itself will do (ess).
func (r *rest) bearer(ctx context.Context, jwt bool) (string, error) {
	o := r.o
	switch {
	case o.token != "":
		return o.token, nil
	case o.password != "":
		return r.passwordGrant(ctx, o.user, o.password)
	case o.apiKey != "" && !jwt:
		return o.apiKey, nil
	case o.apiKey != "":
		return r.passwordGrant(ctx, "herald-client", o.apiKey)
	}
	return "", &Error{Message: "no credential: give an API key, a token, or a user and password", Permanent: true}
}

// passwordGrant asks the token endpoint for a user's JWT, and reuses it
// until half its lifetime has passed.
func (r *rest) passwordGrant(ctx context.Context, user, password string) (string, error) {
	r.mu.Lock()
	token, fresh := r.token, time.Now().Before(r.tokenFresh)
	r.mu.Unlock()
	if fresh {
		return token, nil
	}
	form := url.Values{"grant_type": {"password"}, "username": {user}, "password": {password}, "client_id": {"herald-client"}}
	req, _ := http.NewRequest("POST", r.url("/API/IDP/connect/token"), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var answer struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := r.do(ctx, req, &answer); err != nil {
		return "", err
	}
	if answer.AccessToken == "" {
		return "", &ProtocolError{Message: "the token endpoint answered without an access_token"}
	}
	r.mu.Lock()
	r.token, r.tokenFresh = answer.AccessToken, time.Now().Add(time.Duration(answer.ExpiresIn)*time.Second/2)
	r.mu.Unlock()
	return answer.AccessToken, nil
}

// newest asks /healthz for the id of the org's newest event.
func (r *rest) newest(ctx context.Context) (uint64, error) {
	req, _ := http.NewRequest("GET", r.url("/healthz"), nil)
	if err := r.authorize(ctx, req.Header); err != nil {
		return 0, err
	}
	var health struct {
		LastEventID string `json:"lastEventId"`
	}
	if err := r.do(ctx, req, &health); err != nil {
		return 0, err
	}
	id, err := strconv.ParseUint(health.LastEventID, 10, 64)
	if err != nil {
		return 0, &ProtocolError{Message: "/healthz gave no lastEventId for the org"}
	}
	return id, nil
}

// org returns the API key's org (Rhombus's getOrgV2), asked once.
func (r *rest) org(ctx context.Context) (uuid, name string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.orgUUID != "" {
		return r.orgUUID, r.orgName, nil
	}
	if r.o.apiKey == "" {
		return "", "", &Error{Message: "the " + string(r.o.dialect) + " dialect needs an API key (or a company)", Permanent: true}
	}
	req, _ := http.NewRequest("POST", r.url("/api/org/getOrgV2"), strings.NewReader("{}"))
	req.Header.Set("x-auth-apikey", r.o.apiKey)
	req.Header.Set("Content-Type", "application/json")
	var answer struct {
		Org struct {
			UUID string `json:"uuid"`
			Name string `json:"name"`
		} `json:"org"`
	}
	if err := r.do(ctx, req, &answer); err != nil {
		return "", "", err
	}
	if answer.Org.UUID == "" {
		return "", "", &ProtocolError{Message: "getOrgV2 answered without an org uuid"}
	}
	r.orgUUID, r.orgName = answer.Org.UUID, answer.Org.Name
	return r.orgUUID, r.orgName, nil
}

// Device is a registered device.
type Device struct {
	UUID   string `json:"uuid"`
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Number int64  `json:"number,omitempty"`
}

// Device looks up a registered device of the Stream's org
// (GET /api/devices/{uuid}); a device number, the channels dialect's
// device id, is found too. An unregistered device is an *Error with
// Status 404.
func (s *Stream) Device(ctx context.Context, uuid string) (Device, error) {
	req, _ := http.NewRequest("GET", s.rest.url("/api/devices/"+url.PathEscape(uuid)), nil)
	if err := s.rest.authorize(ctx, req.Header); err != nil {
		return Device{}, err
	}
	var d Device
	err := s.rest.do(ctx, req, &d)
	return d, err
}
