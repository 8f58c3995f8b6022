package client

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/coder/websocket"
)

// stompTransport speaks the stomp dialect: STOMP 1.2 over WebSocket, one
// subscription to the org's change topic, the filter in herald's
// x-herald-* headers, resume with x-herald-after.
type stompTransport struct {
	r *rest
	o *options
}

func newSTOMP(r *rest, o *options) (transport, error) {
	if o.apiKey == "" {
		return nil, &Error{Message: "the stomp dialect authenticates with an API key", Permanent: true}
	}
	return &stompTransport{r: r, o: o}, nil
}

type stompConn struct {
	*wsConn
	pending []Event
}

func (t *stompTransport) connect(ctx context.Context, after *uint64) (connection, error) {
	org, _, err := t.r.org(ctx)
	if err != nil {
		return nil, err
	}
	ws, err := dialWS(ctx, t.r, t.r.wsURL("/websocket?x-auth-scheme=api-token"), http.Header{"x-auth-apikey": {t.o.apiKey}})
	if err != nil {
		return nil, err
	}
	beat := []byte("\n")
	c := &stompConn{wsConn: keepAlive(ws, t.o.heartbeat, func(ctx context.Context) error {
		return ws.Write(ctx, websocket.MessageText, beat)
	})}
	if err := c.handshake(ctx, t.r.base.Host, org, after, t.o); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func (c *stompConn) handshake(ctx context.Context, host, org string, after *uint64, o *options) error {
	ms := strconv.FormatInt(o.heartbeat.Milliseconds(), 10)
	if err := c.write(ctx, stompFrame("CONNECT", "accept-version", "1.2", "host", host, "heart-beat", ms+","+ms)); err != nil {
		return err
	}
	f, err := c.frame(ctx)
	if err != nil {
		return err
	}
	if f.command != "CONNECTED" {
		return &Error{Message: "STOMP CONNECT refused: " + f.header("message"), Permanent: true}
	}
	headers := []string{"id", "0", "destination", "/topic/change/" + org, "ack", "auto", "receipt", "subscribed"}
	for _, h := range []struct {
		name   string
		values []string
	}{
		{"x-herald-entity", o.filter.Entities}, {"x-herald-type", o.filter.Types},
		{"x-herald-device", o.filter.Devices}, {"x-herald-trigger", o.filter.Triggers},
	} {
		if len(h.values) > 0 {
			headers = append(headers, h.name, strings.Join(h.values, ","))
		}
	}
	if after != nil {
		headers = append(headers, "x-herald-after", strconv.FormatUint(*after, 10))
	}
	if err := c.write(ctx, stompFrame("SUBSCRIBE", headers...)); err != nil {
		return err
	}
	for {
		f, err := c.frame(ctx)
		if err != nil {
			return err
		}
		switch f.command {
		case "RECEIPT":
			return nil
		case "MESSAGE":
			e, err := f.event()
			if err != nil {
				return err
			}
			c.pending = append(c.pending, e)
		}
	}
}

func (c *stompConn) read(ctx context.Context) ([]Event, error) {
	if len(c.pending) > 0 {
		events := c.pending
		c.pending = nil
		return events, nil
	}
	for {
		f, err := c.frame(ctx)
		if err != nil {
			return nil, err
		}
		if f.command == "MESSAGE" {
			e, err := f.event()
			if err != nil {
				return nil, err
			}
			return []Event{e}, nil
		}
	}
}

// frame reads the next frame that is not a heart-beat; an ERROR frame is
// an error: ErrEventsLost, or the server's refusal of the subscription.
func (c *stompConn) frame(ctx context.Context) (stompReceived, error) {
	for {
		data, err := c.readText(ctx)
		if err != nil {
			return stompReceived{}, err
		}
		f, ok := parseSTOMP(string(data))
		if !ok {
			continue // a heart-beat
		}
		if f.command == "ERROR" {
			msg := f.header("message")
			if strings.Contains(msg, "events lost") {
				return f, ErrEventsLost
			}
			text := msg
			if body := strings.TrimSpace(f.body); body != "" {
				text += ": " + clip(body)
			}
			// The server closes after an ERROR; a refused header or
			// subscription will be refused again.
			return f, &Error{Message: "STOMP ERROR " + text, Permanent: msg != "catch-up failed"}
		}
		return f, nil
	}
}

type stompReceived struct {
	command string
	headers []string // name, value, …
	body    string
}

func (f stompReceived) header(name string) string {
	for i := 0; i+1 < len(f.headers); i += 2 {
		if f.headers[i] == name {
			return f.headers[i+1]
		}
	}
	return ""
}

func (f stompReceived) event() (Event, error) {
	e, err := decodeCanonical([]byte(f.body))
	if err != nil {
		return e, err
	}
	if id := f.header("message-id"); id != strconv.FormatUint(e.ID, 10) {
		return e, &ProtocolError{Message: "MESSAGE message-id " + id + " is not its event's id " + strconv.FormatUint(e.ID, 10)}
	}
	return e, nil
}

// parseSTOMP parses a frame; ok is false for a heart-beat.
func parseSTOMP(data string) (stompReceived, bool) {
	data = strings.TrimLeft(data, "\r\n")
	if data == "" {
		return stompReceived{}, false
	}
	head, body, _ := strings.Cut(data, "\n\n")
	body, _, _ = strings.Cut(body, "\x00")
	lines := strings.Split(strings.ReplaceAll(head, "\r\n", "\n"), "\n")
	f := stompReceived{command: lines[0], body: body}
	for _, line := range lines[1:] {
		name, value, _ := strings.Cut(line, ":")
		f.headers = append(f.headers, stompUnescape(name), stompUnescape(value))
	}
	return f, true
}

var (
	stompEscaper   = strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\r", `\r`, ":", `\c`)
	stompUnescaper = strings.NewReplacer(`\\`, `\`, `\n`, "\n", `\r`, "\r", `\c`, ":")
)

func stompUnescape(s string) string { return stompUnescaper.Replace(s) }

// stompFrame renders a frame without a body; headers are name, value, ….
// CONNECT's headers are not escaped (STOMP 1.2).
func stompFrame(command string, headers ...string) []byte {
	escape := stompEscaper.Replace
	if command == "CONNECT" {
		escape = func(s string) string { return s }
	}
	var b strings.Builder
	b.WriteString(command)
	b.WriteByte('\n')
	for i := 0; i+1 < len(headers); i += 2 {
		b.WriteString(escape(headers[i]))
		b.WriteByte(':')
		b.WriteString(escape(headers[i+1]))
		b.WriteByte('\n')
	}
	b.WriteString("\n\x00")
	return []byte(b.String())
}
