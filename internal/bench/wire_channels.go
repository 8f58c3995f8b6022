package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// channelsWire is the channels dialect (docs/channels.md): a JWT from the
// token endpoint (the API key as the password), {"type":"auth"} as the
// first message, then a subscribe to the alerts channel, the one the
// bench publishes on (the dialect pushes only its four channels).
type channelsWire struct{}

func (channelsWire) defaultPath() string     { return "/ws" }
func (channelsWire) scanner() MessageScanner { return ScanChannels }
func (channelsWire) alertEvents() bool       { return true }

// prepare fetches one token for every connection.
func (channelsWire) prepare(ctx context.Context, d *dialer) error {
	form := url.Values{"grant_type": {"password"}, "username": {"herald-bench"}, "password": {d.key}, "client_id": {"herald-bench"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.http+"/API/IDP/connect/token", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var answer struct {
		AccessToken string `json:"access_token"`
	}
	if err := d.do(req, http.StatusOK, &answer); err != nil {
		return fmt.Errorf("a token for the channels dialect: %w", err)
	}
	if answer.AccessToken == "" {
		return fmt.Errorf("a token for the channels dialect: %s answered without an access_token", req.URL)
	}
	d.token = answer.AccessToken
	return nil
}

func (channelsWire) open(_ context.Context, d *dialer) (string, http.Header, error) {
	return d.url, nil, nil
}

func (channelsWire) hello(d *dialer) ([]byte, []byte) {
	auth, _ := json.Marshal(map[string]string{"type": "auth", "token": d.token})
	return appendClientFrameOp(nil, opText, auth),
		appendClientFrame(nil, `{"type":"subscribe","channel":"alerts"}`)
}

// ScanChannels reads one channels message: a push (its "event_id" and the
// run's stamp, which the bench's alerts carry in "metadata"), the
// auth_response, the subscribed answer, or an error.
func ScanChannels(msg, marker []byte, f *Frame, on func(*Frame)) {
	*f = Frame{Raw: msg, BodyLen: len(msg)}
	switch {
	case hasPrefix(msg, `{"type":"auth_response","success":true`):
		f.Command = CommandConnected
	case hasPrefix(msg, `{"type":"subscribed"`):
		f.Command = CommandReceipt
	case hasPrefix(msg, `{"type":"auth_response"`), hasPrefix(msg, `{"type":"error"`),
		hasPrefix(msg, `{"type":"token_expired"`), hasPrefix(msg, `{"type":"auth_failed"`):
		f.Command = CommandError
	default:
		// A push opens {"type":T,"channel":C,"event_id":"N".
		rest, ok := cutPrefix(msg, `{"type":"`)
		if ok {
			rest, ok = skipString(rest)
		}
		if ok {
			rest, ok = cutPrefix(rest, `,"channel":"`)
		}
		if ok {
			rest, ok = skipString(rest)
		}
		if ok {
			rest, ok = cutPrefix(rest, `,"event_id":"`)
		}
		if !ok {
			break
		}
		f.Command = CommandMessage
		f.MessageID, _, f.HasID = quotedUint(rest)
		if len(marker) > 0 {
			f.Stamp, f.Stamped = scanStamp(msg, marker)
		}
	}
	on(f)
}

func hasPrefix(b []byte, prefix string) bool {
	_, ok := cutPrefix(b, prefix)
	return ok
}

// do sends req and decodes a JSON answer of status want into v.
func (d *dialer) do(req *http.Request, want int, v any) error {
	resp, err := d.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL, resp.Status, strings.TrimSpace(string(raw)))
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s %s: %w", req.Method, req.URL, err)
	}
	return nil
}
