package stomp

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/dialect/dialecttest"
	"github.com/herald-gw/herald/internal/wsconn"
)

// renderSeeds are producer bodies and stored events: the usual shapes,
// and text that is not UTF-8 or holds escaped surrogates.
var renderSeeds = []string{
	`{"entity":"POLICY_ALERT","type":"CREATE","entityUuid":"a1","deviceUuid":"d1","durationSec":5.2,"policyAlertTriggers":["MOTION_HUMAN"],"textDescription":"Person detected"}`,
	`[{"entity":"TELEMETRY","telemetry":{"temperature":{"value":23.5,"unit":"°C"}}},{"entity":"DEVICE_STATUS","status":"offline"}]`,
	`{"entity":"A","textDescription":"café ☕ 😀","metadata":{"名前":"値","k":"\u00e9\ud83d\ude00"}}`,
	"{\"entity\":\"A\",\"textDescription\":\"caf\xe9 \xff\"}",
	"{\"channel\":\"alerts\",\"entity\":\"POLICY_ALERT\",\"org\":\"" + dialecttest.Org + "\",\"textDescription\":\"caf\xe9 \xff\",\"timestampMs\":1}",
	"{\"entity\":\"A\",\"n\xffte\":{\"k\xc3\":[\"\xed\xa0\x80\"]},\"policyAlertTriggers\":[\"M\xff\"]}",
	`{"entity":"A","title":"\ud800","x":"\\ud800"}`,
}

// FuzzRenderIngested feeds arbitrary bodies through ingest's parser and
// every event it accepts through the MESSAGE rendering: what goes out in
// a WebSocket text frame must be UTF-8 (issue 9).
func FuzzRenderIngested(f *testing.F) {
	for _, s := range renderSeeds {
		f.Add([]byte(s), "sub-0")
	}
	f.Fuzz(func(t *testing.T, body []byte, subID string) {
		dialecttest.Ingested(t, body, func(e *herald.Event) { checkMessageText(t, e, subID) })
	})
}

// FuzzRenderStored feeds arbitrary stored records (old data dirs may hold
// text that is not UTF-8, stored before ingest refused it) through
// DecodeEvent and the MESSAGE rendering: the frame must still be UTF-8.
func FuzzRenderStored(f *testing.F) {
	for _, s := range renderSeeds {
		f.Add([]byte(s), "sub-0")
	}
	f.Fuzz(func(t *testing.T, data []byte, subID string) {
		e, err := herald.DecodeEvent(7, data)
		if err != nil {
			return
		}
		checkMessageText(t, e, subID)
	})
}

// checkMessageText renders e as AppendEvents does for a subscription
// subID and checks that the frame is UTF-8, with the body as its
// content-length says. A subscription id comes from the client's own
// text frame; one that is not UTF-8 is not ours to check.
func checkMessageText(t *testing.T, e *herald.Event, subID string) {
	t.Helper()
	if subID == "" || !utf8.ValidString(subID) {
		subID = "sub-0"
	}
	c := &conn{version: V12}
	sub := newSubscription(c, subID, "auto")
	parts, _, n := c.AppendEvents(nil, nil, []wsconn.Message{{Event: e, Sub: sub}})
	if n != 1 {
		t.Fatalf("AppendEvents took %d events, want 1", n)
	}
	frame := bytes.Join(parts, nil)
	checkFramed(t, c, e, sub, frame)
	if !utf8.Valid(frame) {
		t.Fatalf("MESSAGE of %q is not UTF-8: %q", e.Body, frame)
	}
	head, body, ok := bytes.Cut(frame, []byte("\n\n"))
	if !ok || !bytes.HasSuffix(body, []byte{0}) {
		t.Fatalf("MESSAGE frame %q", frame)
	}
	body = body[:len(body)-1]
	if !bytes.Contains(head, []byte("\ncontent-length:"+strconv.Itoa(len(body))+"\n")) {
		t.Fatalf("content-length does not match the body %q in %q", body, head)
	}
	if json.Valid(e.Body) && !json.Valid(body) {
		t.Fatalf("body %q is not JSON", body)
	}
}

// checkFramed checks that the whole frame AppendFramed gives a shared
// subscription is the WebSocket frame of what AppendEvents renders, and
// that it gives none for a subscription that is not shared.
func checkFramed(t *testing.T, c *conn, e *herald.Event, sub *subscription, payload []byte) {
	t.Helper()
	parts, n := c.AppendFramed(nil, []wsconn.Message{{Event: e, Sub: sub}})
	if !sub.shared {
		if n != 0 || len(parts) != 0 {
			t.Fatalf("AppendFramed framed %d events for subscription %q, which is not shared", n, sub.id)
		}
		return
	}
	if n != 1 || len(parts) != 1 {
		t.Fatalf("AppendFramed framed %d events in %d parts, want 1 in 1", n, len(parts))
	}
	if want := append(wsconn.AppendTextHeader(nil, len(payload)), payload...); !bytes.Equal(parts[0], want) {
		t.Fatalf("AppendFramed gave\n%q\nwant\n%q", parts[0], want)
	}
}

// TestAppendFramed: whole frames for every size of WebSocket header; a
// subscription that acknowledges or whose id needs escaping is rendered
// per recipient; a second id on the same event is too, not given the
// first one's frame.
func TestAppendFramed(t *testing.T) {
	for _, size := range []int{10, 200, 70000} {
		body := `{"entity":"A","textDescription":"` + strings.Repeat("x", size) + `"}`
		e, err := herald.DecodeEvent(uint64(size), []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		c := &conn{version: V12}
		for _, sub := range []*subscription{newSubscription(c, "sub-0", "auto"), newSubscription(c, "a:b", "auto")} {
			parts, _, _ := c.AppendEvents(nil, nil, []wsconn.Message{{Event: e, Sub: sub}})
			checkFramed(t, c, e, sub, bytes.Join(parts, nil))
		}
		if _, n := c.AppendFramed(nil, []wsconn.Message{{Event: e, Sub: newSubscription(c, "sub-1", "auto")}}); n != 0 {
			t.Fatalf("a second id got the first one's frame")
		}
		if _, n := c.AppendFramed(nil, []wsconn.Message{{Event: e, Sub: newSubscription(c, "sub-0", "client")}}); n != 0 {
			t.Fatalf("a subscription that acknowledges got a shared frame")
		}
	}
}
