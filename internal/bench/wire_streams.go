package bench

import (
	"context"
	"fmt"
	"net/http"
)

// streamsWire is the streams dialect (docs/streams.md): POST /session with
// the org (X-Auth-Company) and the API key (X-Auth-Token) for a session id
// per connection, the upgrade at /session/{id}/ws, then a subscribe to the
// org's path, which covers every stream of the org.
type streamsWire struct{}

func (streamsWire) defaultPath() string                    { return "" }
func (streamsWire) prepare(context.Context, *dialer) error { return nil }
func (streamsWire) scanner() MessageScanner                { return ScanStreams }
func (streamsWire) alertEvents() bool                      { return false }

func (streamsWire) open(ctx context.Context, d *dialer) (string, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.http+"/session", nil)
	if err != nil {
		return "", nil, err
	}
	req.Header.Set("X-Auth-Company", d.org)
	req.Header.Set("X-Auth-Token", d.key)
	var answer struct {
		Body struct {
			ID string `json:"id"`
		} `json:"body"`
	}
	if err := d.do(req, http.StatusCreated, &answer); err != nil {
		return "", nil, err
	}
	if answer.Body.ID == "" {
		return "", nil, fmt.Errorf("POST %s answered without a session id", req.URL)
	}
	return d.wsBase + "/session/" + answer.Body.ID + "/ws", nil, nil
}

func (streamsWire) hello(d *dialer) ([]byte, []byte) {
	return nil, appendClientFrame(nil, `{"msgId":"`+subscriptionID+`","object":"event","type":"subscribe","path":"/`+d.org+`"}`)
}

// ScanStreams reads one streams message: a pushed event (the log sequence
// in its "value" id "e…", the run's stamp in its "elems"), or the
// acknowledgement of the bench's subscribe (CommandReceipt), or a refusal.
func ScanStreams(msg, marker []byte, f *Frame, on func(*Frame)) {
	*f = Frame{Raw: msg, BodyLen: len(msg)}
	if rest, ok := cutPrefix(msg, `{"type":"message","resource":"`); ok {
		f.Command = CommandMessage
		rest, ok = skipString(rest)
		if ok {
			rest, ok = cutPrefix(rest, `,"value":{"id":"e`)
		}
		if ok {
			f.MessageID, _, f.HasID = quotedUint(rest)
		}
		if len(marker) > 0 {
			f.Stamp, f.Stamped = scanStamp(msg, marker)
		}
	} else if rest, ok := cutPrefix(msg, `{"head":{"msgId":`); ok {
		switch {
		case hasPrefix(rest, `"`+subscriptionID+`","ok":true`):
			f.Command = CommandReceipt
		case bytesContains(rest, `"ok":false`):
			f.Command = CommandError
		}
	}
	on(f)
}
