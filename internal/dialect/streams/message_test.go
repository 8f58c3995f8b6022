package streams

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Message
	}{
		{`{"msgId":"my-request","object":"event","type":"subscribe","streamId":"s5b7310ba0d3e5a0c7e3a1f2b"}`,
			Message{MsgID: "my-request", Object: "event", Type: TypeSubscribe, StreamID: "s5b7310ba0d3e5a0c7e3a1f2b"}},
		{`{"msgId":"my-path-request","object":"event","type":"subscribe","path":"/acme/devices/boiler/telemetry"}`,
			Message{MsgID: "my-path-request", Object: "event", Type: TypeSubscribe, Path: "/acme/devices/boiler/telemetry"}},
		{`{"msgId":"u","object":"event","type":"unsubscribe","path":"/acme","streamId":null,"extra":[1,2]}`,
			Message{MsgID: "u", Object: "event", Type: TypeUnsubscribe, Path: "/acme"}},
		{` {"type":"subscribe","path":"/acme/org","object":"event","msgId":"order does not matter"} `,
			Message{MsgID: "order does not matter", Object: "event", Type: TypeSubscribe, Path: "/acme/org"}},
		// Bytes that are not UTF-8 become U+FFFD, as encoding/json reads them.
		{"{\"msgId\":\"a\",\"object\":\"event\",\"type\":\"subscribe\",\"path\":\"/\xff\"}",
			Message{MsgID: "a", Object: "event", Type: TypeSubscribe, Path: "/\uFFFD"}},
	} {
		got, err := Decode([]byte(tc.in))
		if err != nil || got != tc.want {
			t.Errorf("Decode(%s) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestDecodeRefuses(t *testing.T) {
	long := strings.Repeat("x", MaxPathBytes+1)
	for _, tc := range []struct {
		in, msgID, reason string
	}{
		{`not json`, "", "the message is not JSON"},
		{`[1]`, "", "a request must be a JSON object"},
		{`null`, "", "a request must be a JSON object"},
		{`{"object":"event","type":"subscribe","path":"/acme"}`, "", `the request has no "msgId"`},
		{`{"msgId":"","object":"event","type":"subscribe","path":"/acme"}`, "", `the request has no "msgId"`},
		{`{"msgId":7,"object":"event","type":"subscribe","path":"/acme"}`, "", `"msgId" must be a string`},
		{`{"msgId":"` + strings.Repeat("m", MaxMsgIDBytes+1) + `"}`, "", `"msgId" is longer than 256 bytes`},
		{`{"msgId":"a","type":"subscribe","path":"/acme"}`, "a", `"object" must be "event", not ""`},
		{`{"msgId":"a","object":"device","type":"subscribe","path":"/acme"}`, "a", `"object" must be "event", not "device"`},
		{`{"msgId":"a","object":"event","type":"watch","path":"/acme"}`, "a", `"type" must be "subscribe" or "unsubscribe", not "watch"`},
		{`{"msgId":"a","object":"event","type":"subscribe"}`, "a", `a subscribe needs a "streamId" or a "path"`},
		{`{"msgId":"a","object":"event","type":"subscribe","path":"/acme","streamId":"s1"}`, "a", `give a "streamId" or a "path", not both`},
		{`{"msgId":"a","object":"event","type":"subscribe","path":{"p":1}}`, "a", `"path" must be a string`},
		{`{"msgId":"a","object":"event","type":"subscribe","path":"` + long + `"}`, "a", `"path" is longer than 1024 bytes`},
		{`{"msgId":"a","object":"event","type":"subscribe","streamId":"` + strings.Repeat("s", 65) + `"}`, "a", `"streamId" is longer than 64 bytes`},
	} {
		_, err := Decode([]byte(tc.in))
		var bad *BadMessage
		if !errors.As(err, &bad) {
			t.Errorf("Decode(%.60s) = %v, want a *BadMessage", tc.in, err)
			continue
		}
		if bad.MsgID != tc.msgID || !strings.HasPrefix(bad.Reason, tc.reason) {
			t.Errorf("Decode(%.60s) = msgId %q, %q; want %q, %q", tc.in, bad.MsgID, bad.Reason, tc.msgID, tc.reason)
		}
	}
}

// FuzzDecode checks that no input panics the decoder, that every refusal
// is a BadMessage with a reason whose ack is valid JSON, and that what it
// accepts is complete and within bounds.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"msgId":"my-request","object":"event","type":"subscribe","streamId":"s5b7310ba0d3e5a0c7e3a1f2b"}`,
		`{"msgId":"my-path-request","object":"event","type":"subscribe","path":"/acme/devices/boiler/telemetry"}`,
		`{"msgId":"u","object":"event","type":"unsubscribe","path":"/acme/"}`,
		`{"msgId":"a","object":"event","type":"subscribe","path":"/acme","streamId":"s1"}`,
		`{"msgId":7}`, `[]`, `null`, `{"msgId":"\u00e9\ud800"}`, "{\"msgId\":\"\xff\"}", `{"msgId":"a","object":"event"`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			var bad *BadMessage
			if !errors.As(err, &bad) || bad.Reason == "" {
				t.Fatalf("error %v (%T) is not a *BadMessage with a reason", err, err)
			}
			if ack := appendAck(nil, bad.MsgID, bad.Reason); !json.Valid(ack) {
				t.Fatalf("the ack of a refusal is not JSON: %s", ack)
			}
			return
		}
		if m.MsgID == "" || m.Object != "event" || m.Type != TypeSubscribe && m.Type != TypeUnsubscribe || (m.StreamID == "") == (m.Path == "") {
			t.Fatalf("Decode accepted an incomplete request %+v", m)
		}
		if len(m.MsgID) > MaxMsgIDBytes || len(m.Path) > MaxPathBytes || len(m.StreamID) > MaxStreamIDBytes {
			t.Fatalf("Decode accepted a request past its bounds %+v", m)
		}
		for _, s := range []string{m.MsgID, m.Path, m.StreamID} {
			if !utf8.ValidString(s) {
				t.Fatalf("Decode accepted a field that is not UTF-8: %q", s)
			}
		}
		if ack := appendAck(nil, m.MsgID, ""); !json.Valid(ack) {
			t.Fatalf("the ack is not JSON: %s", ack)
		}
	})
}

func TestAppendAck(t *testing.T) {
	for _, tc := range []struct {
		msgID, errText string
		notes          []string
		want           string
	}{
		{"my-request", "", nil, `{"head":{"msgId":"my-request","ok":true,"errors":[],"messages":["Your request has been processed successfully."]},"body":{}}`},
		{"p", "", []string{"a note"}, `{"head":{"msgId":"p","ok":true,"errors":[],"messages":["Your request has been processed successfully.","a note"]},"body":{}}`},
		{"", "the message is not JSON", nil, `{"head":{"msgId":null,"ok":false,"errors":["the message is not JSON"],"messages":[]},"body":{}}`},
		{`"q"`, `no stream has the id "x"`, nil, `{"head":{"msgId":"\"q\"","ok":false,"errors":["no stream has the id \"x\""],"messages":[]},"body":{}}`},
	} {
		if got := string(appendAck(nil, tc.msgID, tc.errText, tc.notes...)); got != tc.want {
			t.Errorf("appendAck(%q, %q) =\n%s\nwant\n%s", tc.msgID, tc.errText, got, tc.want)
		}
	}
}
