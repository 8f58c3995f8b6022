package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// streamsTransport speaks the streams dialect: a session id from
// POST /session, a connection to /session/{id}/ws, subscriptions by path
// (the org, or each device of the filter). After a drop it connects to
// the same session with ?after=, which restores the subscriptions; when
// the session is gone it makes a new one, connected with ?after= so that
// its first subscription replays after the cursor.
type streamsTransport struct {
	r       *rest
	o       *options
	session string
}

// maxStreamsPaths is how many device paths a Stream subscribes to before
// it subscribes to the whole org instead (the server's default limit is
// 100 subscriptions per session).
const maxStreamsPaths = 50

func newStreams(r *rest, o *options) (transport, error) {
	switch {
	case o.apiKey == "" && o.token == "" && o.password == "":
		return nil, &Error{Message: "the streams dialect authenticates with an API key, or a user's token or password", Permanent: true}
	case o.company == "" && o.apiKey == "":
		return nil, &Error{Message: "the streams dialect needs the company (the org's name or uuid) with a user's credentials", Permanent: true}
	case o.token != "" && o.user == "":
		return nil, &Error{Message: "the streams dialect needs the user name with a user's token", Permanent: true}
	}
	return &streamsTransport{r: r, o: o}, nil
}

type streamsConn struct {
	*wsConn
	pending []Event
}

func (t *streamsTransport) connect(ctx context.Context, after *uint64) (connection, error) {
	if t.session != "" {
		c, err := t.open(ctx, after)
		var refused *Error
		if err == nil || !asError(err, &refused) || refused.Status != http.StatusNotFound {
			return c, err
		}
		t.session = "" // expired, or the server has not seen the drop yet
	}
	company, err := t.company(ctx)
	if err != nil {
		return nil, err
	}
	if err := t.newSession(ctx, company); err != nil {
		return nil, err
	}
	c, err := t.open(ctx, after)
	if err != nil {
		return nil, err
	}
	for i, path := range t.paths(company) {
		if err := c.request(ctx, map[string]any{"msgId": strconv.Itoa(i), "object": "event", "type": "subscribe", "path": path}); err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

func (t *streamsTransport) company(ctx context.Context) (string, error) {
	if t.o.company != "" {
		return t.o.company, nil
	}
	_, name, err := t.r.org(ctx)
	return name, err
}

// paths are the subscriptions of a new session.
func (t *streamsTransport) paths(company string) []string {
	org := "/" + url.PathEscape(company)
	devices := t.o.filter.Devices
	if len(devices) == 0 || len(devices) > maxStreamsPaths {
		return []string{org}
	}
	paths := make([]string, len(devices))
	for i, d := range devices {
		paths[i] = org + "/devices/" + url.PathEscape(d)
	}
	return paths
}

// headers are Octave's credentials: the company, and an API key or a
// user's token.
func (t *streamsTransport) headers(ctx context.Context, company string) (http.Header, error) {
	h := http.Header{"X-Auth-Company": {company}}
	switch {
	case t.o.token != "" || t.o.password != "":
		token, err := t.r.bearer(ctx, true)
		if err != nil {
			return nil, err
		}
		h.Set("X-Auth-User", t.o.user)
		h.Set("X-Auth-Token", token)
	default:
		h.Set("X-Auth-Token", t.o.apiKey)
	}
	return h, nil
}

func (t *streamsTransport) newSession(ctx context.Context, company string) error {
	h, err := t.headers(ctx, company)
	if err != nil {
		return err
	}
	req, _ := http.NewRequest("POST", t.r.url("/session"), nil)
	req.Header = h
	var answer struct {
		Body struct {
			ID string `json:"id"`
		} `json:"body"`
	}
	if err := t.r.do(ctx, req, &answer); err != nil {
		return err
	}
	if answer.Body.ID == "" {
		return &ProtocolError{Message: "POST /session answered without a session id"}
	}
	t.session = answer.Body.ID
	return nil
}

func (t *streamsTransport) open(ctx context.Context, after *uint64) (*streamsConn, error) {
	path := "/session/" + t.session + "/ws"
	if after != nil {
		path += "?after=e" + strconv.FormatUint(*after, 10)
	}
	ws, err := dialWS(ctx, t.r, t.r.wsURL(path), nil)
	if err != nil {
		return nil, err
	}
	return &streamsConn{wsConn: keepAlive(ws, t.o.heartbeat, nil)}, nil
}

type streamsMessage struct {
	Type  string `json:"type"`
	Value struct {
		ID    string          `json:"id"`
		Elems json.RawMessage `json:"elems"`
	} `json:"value"`
	Head *struct {
		MsgID  *string  `json:"msgId"`
		OK     bool     `json:"ok"`
		Errors []string `json:"errors"`
	} `json:"head"`
}

// request sends a subscribe and reads up to its ack.
func (c *streamsConn) request(ctx context.Context, msg map[string]any) error {
	data, _ := json.Marshal(msg)
	if err := c.write(ctx, data); err != nil {
		return err
	}
	for {
		m, err := c.message(ctx)
		if err != nil {
			return err
		}
		if m.Head == nil || m.Head.MsgID == nil || *m.Head.MsgID != msg["msgId"] {
			continue
		}
		if !m.Head.OK {
			return &Error{Message: "streams subscribe to " + msg["path"].(string) + " refused: " + strings.Join(m.Head.Errors, "; "), Permanent: true}
		}
		return nil
	}
}

func (c *streamsConn) read(ctx context.Context) ([]Event, error) {
	for len(c.pending) == 0 {
		if _, err := c.message(ctx); err != nil {
			return nil, err
		}
	}
	events := c.pending
	c.pending = nil
	return events, nil
}

// message reads the next message, keeping a pushed event in pending.
func (c *streamsConn) message(ctx context.Context) (streamsMessage, error) {
	data, err := c.readText(ctx)
	if err != nil {
		return streamsMessage{}, err
	}
	m, e, err := streamsDecode(data)
	if e != nil {
		c.pending = append(c.pending, *e)
	}
	return m, err
}

// streamsDecode decodes a message and the event it pushes, if any.
func streamsDecode(data []byte) (streamsMessage, *Event, error) {
	var m streamsMessage
	if json.Unmarshal(data, &m) != nil {
		return m, nil, &ProtocolError{Message: "a message that is not JSON: " + clip(string(data))}
	}
	if m.Type != "message" {
		return m, nil, nil
	}
	e, err := decodeCanonical(m.Value.Elems)
	if err != nil {
		return m, nil, err
	}
	if "e"+strconv.FormatUint(e.ID, 10) != m.Value.ID {
		return m, nil, &ProtocolError{Message: "event " + m.Value.ID + " carries the elems of event " + strconv.FormatUint(e.ID, 10)}
	}
	return m, &e, nil
}
