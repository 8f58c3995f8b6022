package client

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
)

// essTransport speaks the ess dialect: a bearer token on the upgrade, a
// session that one subscription to every event makes, resumed after a
// drop with startSession{sessionId, eventId}. A Stream without a session
// (a new process, an expired session) starts one after its cursor with
// herald's extension, startSession{"", eventId}. The filter runs here:
// ess filters name sources and type GUIDs, not herald's fields.
type essTransport struct {
	r       *rest
	o       *options
	session string // the session to resume; "" for none
}

func newESS(r *rest, o *options) (transport, error) {
	if o.apiKey == "" && o.token == "" && o.password == "" {
		return nil, &Error{Message: "the ess dialect authenticates with a token, a user and password, or an API key", Permanent: true}
	}
	return &essTransport{r: r, o: o}, nil
}

type essConn struct {
	*wsConn
	nextID  int
	pending []Event
}

func (t *essTransport) connect(ctx context.Context, after *uint64) (connection, error) {
	if t.session != "" {
		c, status, err := t.start(ctx, t.session, after)
		if err != nil || status == 200 {
			return c, err
		}
		// 201: the session was gone, and a new one would start from now.
		c.close()
		t.session = ""
	}
	c, _, err := t.start(ctx, "", after)
	if err != nil {
		return nil, err
	}
	reply, err := c.command(ctx, map[string]any{"command": "addSubscription", "filters": []map[string]any{{"modifier": "include"}}})
	if err == nil {
		err = reply.err("addSubscription")
	}
	if err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// start connects and starts (or resumes) a session; status is the
// startSession reply's, 200 for a resumed session, 201 for a new one.
func (t *essTransport) start(ctx context.Context, session string, after *uint64) (*essConn, int, error) {
	token, err := t.r.bearer(ctx, false)
	if err != nil {
		return nil, 0, err
	}
	ws, err := dialWS(ctx, t.r, t.r.wsURL("/api/ws/events/v1"), http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		return nil, 0, err
	}
	c := &essConn{wsConn: keepAlive(ws, t.o.heartbeat, nil)}
	eventID := ""
	if after != nil {
		eventID = strconv.FormatUint(*after, 10)
	}
	reply, err := c.command(ctx, map[string]any{"command": "startSession", "sessionId": session, "eventId": eventID})
	if err == nil {
		err = reply.err("startSession")
	}
	if err != nil {
		c.close()
		return nil, 0, err
	}
	t.session = reply.SessionID
	return c, reply.Status, nil
}

type essReply struct {
	CommandID *int   `json:"commandId"`
	Status    int    `json:"status"`
	SessionID string `json:"sessionId"`
	Error     struct {
		Text string `json:"errorText"`
	} `json:"error"`
	Events []json.RawMessage `json:"events"`
}

// err is the reply's failure: 410 is ErrEventsLost; a refusal the same
// command would get again is permanent.
func (r *essReply) err(command string) error {
	switch {
	case r.Status >= 200 && r.Status < 300:
		return nil
	case r.Status == 410:
		return ErrEventsLost
	}
	return &Error{Status: r.Status, Message: "ess " + command + ": " + strconv.Itoa(r.Status) + " " + r.Error.Text,
		Permanent: r.Status >= 400 && r.Status < 500}
}

// command sends cmd and reads up to its reply, keeping the events pushed
// meanwhile.
func (c *essConn) command(ctx context.Context, cmd map[string]any) (essReply, error) {
	c.nextID++
	id := c.nextID
	cmd["commandId"] = id
	data, _ := json.Marshal(cmd)
	if err := c.write(ctx, data); err != nil {
		return essReply{}, err
	}
	for {
		m, err := c.message(ctx)
		if err != nil {
			return m, err
		}
		if m.CommandID != nil && *m.CommandID == id {
			return m, nil
		}
	}
}

func (c *essConn) read(ctx context.Context) ([]Event, error) {
	for len(c.pending) == 0 {
		if _, err := c.message(ctx); err != nil {
			return nil, err
		}
	}
	events := c.pending
	c.pending = nil
	return events, nil
}

// message reads the next message, keeping its events in pending.
func (c *essConn) message(ctx context.Context) (essReply, error) {
	data, err := c.readText(ctx)
	if err != nil {
		return essReply{}, err
	}
	m, events, err := essDecode(data)
	c.pending = append(c.pending, events...)
	return m, err
}

// essDecode decodes a message and the events it pushes.
func essDecode(data []byte) (essReply, []Event, error) {
	var m essReply
	if json.Unmarshal(data, &m) != nil {
		return m, nil, &ProtocolError{Message: "a message that is not JSON: " + clip(string(data))}
	}
	var events []Event
	for _, raw := range m.Events {
		var pushed struct {
			ID   string          `json:"id"`
			Data json.RawMessage `json:"data"`
		}
		if json.Unmarshal(raw, &pushed) != nil {
			return m, nil, &ProtocolError{Message: "an event that is not an object: " + clip(string(raw))}
		}
		e, err := decodeCanonical(pushed.Data)
		if err != nil {
			return m, nil, err
		}
		if strconv.FormatUint(e.ID, 10) != pushed.ID {
			return m, nil, &ProtocolError{Message: "event " + pushed.ID + " carries the data of event " + strconv.FormatUint(e.ID, 10)}
		}
		events = append(events, e)
	}
	return m, events, nil
}
