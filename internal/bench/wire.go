package bench

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// wire is one WebSocket dialect as the bench client speaks it: how a
// connection is opened, what it sends to authenticate and subscribe to
// every event of the org, and how the server's messages are read. The run's
// accounting (latency, loss, duplicates, order) is the same for every
// dialect; only this differs.
type wire interface {
	// defaultPath is the WebSocket path used when --url gives none.
	defaultPath() string
	// prepare runs once before the connections are opened (a token to
	// fetch) and keeps what they share in d.
	prepare(ctx context.Context, d *dialer) error
	// open returns the URL and headers of one connection's upgrade.
	open(ctx context.Context, d *dialer) (url string, header http.Header, err error)
	// hello returns the client frames (masked WebSocket frames) sent after
	// the upgrade and, apart, those sent once the server answered them
	// with a CommandConnected frame. A nil hello means connected at once.
	hello(d *dialer) (hello, subscribe []byte)
	// scanner reads the server's messages; nil for STOMP, whose frames
	// form a byte stream (Stream's own decoder).
	scanner() MessageScanner
	// alertEvents reports whether the published events must go on the
	// alerts channel (the channels dialect pushes nothing else).
	alertEvents() bool
}

// wires are the dialects of --dialect.
var wires = map[string]wire{
	"stomp":    stompWire{},
	"channels": channelsWire{},
	"ess":      essWire{},
	"streams":  streamsWire{},
}

func wireOf(dialect string) (wire, error) {
	w, ok := wires[dialect]
	if !ok {
		names := make([]string, 0, len(wires))
		for n := range wires {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("--dialect %q: want one of %s", dialect, strings.Join(names, ", "))
	}
	return w, nil
}

// stompWire is the stomp dialect: x-auth-apikey on the upgrade, CONNECT
// and SUBSCRIBE to /topic/change/{org} with a receipt, sent at once.
type stompWire struct{}

func (stompWire) defaultPath() string                    { return "/websocket?x-auth-scheme=api-token" }
func (stompWire) prepare(context.Context, *dialer) error { return nil }
func (stompWire) scanner() MessageScanner                { return nil }
func (stompWire) alertEvents() bool                      { return false }
func (stompWire) open(_ context.Context, d *dialer) (string, http.Header, error) {
	return d.url, http.Header{"x-auth-apikey": {d.key}}, nil
}

func (stompWire) hello(d *dialer) ([]byte, []byte) {
	var out []byte
	out = appendClientFrame(out, "CONNECT\naccept-version:1.2\nheart-beat:0,0\n\n\x00")
	out = appendClientFrame(out, "SUBSCRIBE\nid:"+subscriptionID+"\ndestination:/topic/change/"+d.org+
		"\nack:auto\nreceipt:"+subscriptionID+"\n\n\x00")
	return out, nil
}
