package bench

import (
	"context"
	"net/http"
)

// essWire is the ess dialect (docs/ess.md): the API key as the bearer
// token on the upgrade, startSession, then one addSubscription whose
// filter includes everything.
type essWire struct{}

// The commandIds of the bench's two commands.
const (
	essStartID     = 1
	essSubscribeID = 2
)

func (essWire) defaultPath() string                    { return "/api/ws/events/v1" }
func (essWire) prepare(context.Context, *dialer) error { return nil }
func (essWire) scanner() MessageScanner                { return ScanESS }
func (essWire) alertEvents() bool                      { return false }

func (essWire) open(_ context.Context, d *dialer) (string, http.Header, error) {
	return d.url, http.Header{"Authorization": {"Bearer " + d.key}}, nil
}

func (essWire) hello(*dialer) ([]byte, []byte) {
	return appendClientFrame(nil, `{"command":"startSession","commandId":1,"sessionId":"","eventId":""}`),
		appendClientFrame(nil, `{"command":"addSubscription","commandId":2,"filters":[`+
			`{"modifier":"include","resourceTypes":["*"],"sourceIds":["*"],"eventTypes":["*"]}]}`)
}

// ScanESS reads one ess message: each event of an {"events":[…]} push (its
// "id" and the run's stamp in its "data"), or the reply to startSession
// (CommandConnected) or addSubscription (CommandReceipt), or a refusal.
func ScanESS(msg, marker []byte, f *Frame, on func(*Frame)) {
	if rest, ok := cutPrefix(msg, `{"events":[`); ok {
		for ev, rest, ok := nextElement(rest); ok; ev, rest, ok = nextElement(rest) {
			*f = Frame{Command: CommandMessage, Raw: ev, BodyLen: len(ev)}
			if id, ok := cutPrefix(ev, `{"id":"`); ok {
				f.MessageID, _, f.HasID = quotedUint(id)
			}
			if len(marker) > 0 {
				f.Stamp, f.Stamped = scanStamp(ev, marker)
			}
			on(f)
		}
		return
	}
	*f = Frame{Raw: msg, BodyLen: len(msg)}
	rest, ok := cutPrefix(msg, `{"commandId":`)
	var id, status uint64
	if ok {
		id, rest, ok = leadingInt(rest)
	}
	if ok {
		rest, ok = cutPrefix(rest, `,"status":`)
	}
	if ok {
		status, _, ok = leadingInt(rest)
	}
	switch {
	case !ok:
	case status < 200 || status > 299:
		f.Command = CommandError
	case id == essStartID:
		f.Command = CommandConnected
	case id == essSubscribeID:
		f.Command = CommandReceipt
	}
	on(f)
}
