package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/api"
	"github.com/herald-gw/herald/internal/dialect/streams"
	"github.com/herald-gw/herald/internal/session"
)

// StreamsConfig sets the streams dialect (docs/streams.md).
type StreamsConfig struct {
	// SessionTTL is how long a session id made by POST /session lives
	// without a connection, before its first and after each. Default 60s.
	SessionTTL time.Duration `koanf:"session_ttl"`
}

func (s *Server) streamsConfig() *streams.Config {
	node := *s.node // the same node, but its sessions wait SessionTTL
	node.DetachWindow = s.cfg.Streams.SessionTTL
	if node.DetachWindow <= 0 {
		node.DetachWindow = 60 * time.Second
	}
	cfg := streams.Config{Node: &node, Index: s.streamsIndex, Dir: &streamsDirectory{devices: s.devices},
		MaxSubscriptions: s.cfg.Limits.MaxSubscriptions}.WithDefaults()
	return &cfg
}

// streamsDirectory is the devices and the org names rendering reads; an
// org's name is learned when a session of it connects to this node.
type streamsDirectory struct {
	devices interface {
		Device(org, uuid string) (herald.Device, bool)
	}
	orgs sync.Map // org uuid -> name
}

func (d *streamsDirectory) Device(org, uuid string) (herald.Device, bool) {
	return d.devices.Device(org, uuid)
}

func (d *streamsDirectory) OrgName(org string) string {
	if name, ok := d.orgs.Load(org); ok {
		return name.(string)
	}
	return org
}

// envelope is Octave's answer shape: {"head":{"ok","status","errors"},"body"}.
func writeEnvelope(w http.ResponseWriter, status int, body any, errs ...string) {
	if errs == nil {
		errs = []string{}
	}
	if body == nil {
		body = struct{}{}
	}
	type head struct {
		OK     bool     `json:"ok"`
		Status int      `json:"status"`
		Errors []string `json:"errors"`
	}
	api.WriteJSON(w, status, struct {
		Head head `json:"head"`
		Body any  `json:"body"`
	}{head{status < 300, status, errs}, body})
}

func writeEnvelopeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch herald.ErrorCode(err) {
	case herald.EUNAUTHORIZED:
		status = http.StatusUnauthorized
	case herald.EFORBIDDEN:
		status = http.StatusForbidden
	case herald.ENOTFOUND:
		status = http.StatusNotFound
	case herald.EINVALID:
		status = http.StatusBadRequest
	case herald.EUNAVAILABLE:
		status = http.StatusServiceUnavailable
	}
	writeEnvelope(w, status, nil, herald.ErrorMessage(err))
}

// streamsPrincipal authenticates Octave's headers: X-Auth-Company (the
// org's name or uuid), X-Auth-Token, and X-Auth-User. With a user, the
// token is a JWT of that user in that org (herald token, or the token
// endpoint); without one, an API key of the org (Octave's "restricted
// token"). It returns the principal and the org's name. A company that
// does not exist and one the credential is not for get the same answer.
func (s *Server) streamsPrincipal(r *http.Request) (herald.Principal, string, error) {
	company, token, user := r.Header.Get("X-Auth-Company"), r.Header.Get("X-Auth-Token"), r.Header.Get("X-Auth-User")
	switch {
	case token == "":
		return herald.Principal{}, "", herald.Errorf(herald.EUNAUTHORIZED, "X-Auth-Token is missing")
	case company == "":
		return herald.Principal{}, "", herald.Errorf(herald.EUNAUTHORIZED, "X-Auth-Company is missing: give the company's (org's) name or uuid")
	}
	var p herald.Principal
	var err error
	if user == "" {
		p, err = s.api.Keys.Authenticate(r.Context(), token)
		if herald.ErrorCode(err) == herald.EUNAUTHORIZED {
			err = herald.Errorf(herald.EUNAUTHORIZED, "X-Auth-Token is not an API key of herald's (with X-Auth-User, it must be that user's token)")
		}
	} else {
		p, _, err = s.api.BearerPrincipal(r.Context(), token)
		if err == nil && p.User != user {
			err = herald.Errorf(herald.EUNAUTHORIZED, "X-Auth-Token is not a token of user %q", clipHeader(user))
		}
	}
	if err != nil {
		return p, "", err
	}
	org, err := s.engine.Org(r.Context(), p.Org)
	if err != nil {
		return p, "", err
	}
	if company != org.Name && !strings.EqualFold(company, org.UUID) {
		return p, "", herald.Errorf(herald.EFORBIDDEN, "the token is not valid for company %q", clipHeader(company))
	}
	if !p.Can(herald.ScopeSubscribe) {
		return p, "", herald.Errorf(herald.EFORBIDDEN, "the token lacks the subscribe scope")
	}
	return p, org.Name, nil
}

func clipHeader(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// postSession is POST /session: a session id, unguessable and bound to
// the org, waiting SessionTTL for its connection.
func (s *Server) postSession(w http.ResponseWriter, r *http.Request) {
	p, _, err := s.streamsPrincipal(r)
	if err != nil {
		writeEnvelopeError(w, err)
		return
	}
	d := herald.DetachedSession{ID: session.NewID(), Org: p.Org, Dialect: streams.Name, Credential: p.Credential, After: s.node.Acked(),
		State: []byte("[]"), Expires: time.Now().Add(s.streams.Node.DetachWindow)}
	if err := s.engine.SaveSession(r.Context(), d); err != nil {
		s.logger.Warn("streams: a session could not be stored", "org", p.Org, "err", err)
		writeEnvelopeError(w, herald.Errorf(herald.EUNAVAILABLE, "the session could not be stored; try again"))
		return
	}
	writeEnvelope(w, http.StatusCreated, map[string]string{"id": d.ID})
}

// getStreams is GET /api/streams: the org's streams, with Octave's headers.
func (s *Server) getStreams(w http.ResponseWriter, r *http.Request) {
	p, orgName, err := s.streamsPrincipal(r)
	if err != nil {
		writeEnvelopeError(w, err)
		return
	}
	devices, err := s.engine.Devices(r.Context(), p.Org)
	if err != nil {
		writeEnvelopeError(w, herald.Errorf(herald.EUNAVAILABLE, "the devices cannot be read now; try again"))
		return
	}
	writeEnvelope(w, http.StatusOK, streams.StreamsOf(orgName, p.Org, devices))
}

// serveStreams is GET /session/{id}/ws: the session is taken from the
// store before the upgrade (an unknown, expired or connected one gets
// 404 as an HTTP envelope), then served.
func (s *Server) serveStreams(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var after *uint64
	if v := r.URL.Query().Get("after"); v != "" {
		n, err := strconv.ParseUint(strings.TrimPrefix(v, "e"), 10, 64)
		if err != nil {
			writeEnvelope(w, http.StatusBadRequest, nil, "after must be an event id, as e42 or 42, not "+strconv.Quote(clipHeader(v)))
			return
		}
		after = &n
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	d, err := s.engine.TakeSession(ctx, id)
	if err == nil && d.Dialect != streams.Name {
		s.putBack(d)
		err = herald.Errorf(herald.ENOTFOUND, "not a streams session")
	}
	if err != nil {
		if herald.ErrorCode(err) != herald.ENOTFOUND {
			writeEnvelopeError(w, herald.Errorf(herald.EUNAVAILABLE, "the session cannot be looked up now; try again"))
			return
		}
		writeEnvelope(w, http.StatusNotFound, nil, "no session "+strconv.Quote(clipHeader(id))+
			": it is unknown, expired, or connected already; POST /session for a new one")
		return
	}
	valid, err := s.credentialValid(ctx, herald.Revocation{Org: d.Org, Credential: d.Credential})
	if err != nil {
		s.putBack(d)
		writeEnvelopeError(w, herald.Errorf(herald.EUNAVAILABLE, "the session's credential cannot be checked now; try again"))
		return
	}
	if !valid { // revoked: the session goes with it
		writeEnvelope(w, http.StatusUnauthorized, nil, "the credential session "+strconv.Quote(clipHeader(id))+
			" was opened with was revoked; POST /session with a valid one")
		return
	}
	org, err := s.engine.Org(ctx, d.Org)
	if err != nil {
		s.putBack(d)
		writeEnvelopeError(w, herald.Errorf(herald.EUNAVAILABLE, "the session's company cannot be read now; try again"))
		return
	}
	s.streams.Dir.(*streamsDirectory).orgs.Store(org.UUID, org.Name)
	opts := s.connOptions()
	opts.MaxMessageBytes = s.streams.MaxMessageBytes
	conn, ended, ok := s.upgrade(w, r, "streams", nil, opts)
	if !ok {
		s.putBack(d)
		return
	}
	streams.Serve(conn, s.streams, d, org.Name, after, ended)
}

// putBack stores a session taken by mistake again.
func (s *Server) putBack(d herald.DetachedSession) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.engine.SaveSession(ctx, d); err != nil && !errors.Is(err, context.Canceled) {
		s.logger.Warn("streams: a session taken by mistake could not be put back", "err", err)
	}
}
