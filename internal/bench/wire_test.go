package bench

import (
	"bytes"
	"strings"
	"testing"
)

// Messages as herald renders them (internal/dialect/*/render.go, push.go),
// carrying a bench marker of run "r1".
const (
	channelsPush = `{"type":"alert","channel":"alerts","event_id":"42","alert_id":42,"timestamp":"2026-12-04T02:15:39.759Z",` +
		`"metadata":{"bench":"r1.1795437209759000123","pad":"xx"}}`
	essPush = `{"events":[{"id":"42","time":"2026-12-04T02:15:39.759Z","type":"6c3f3c1e-6d0a-5c55-9a43-0d4c8b7e0f11",` +
		`"source":"hardware/","datatype":"BENCH","data":{"id":"42","bench":"r1.1795437209759000123","channel":"events",` +
		`"entity":"BENCH","org":"5f0c6b2e-4d2a-4c1e-9b7a-2a9d8e4f1c30","pad":"x]},{x","timestampMs":1795437209759},"specversion":"1.0"},` +
		`{"id":"43","time":"2026-12-04T02:15:39.759Z","type":"6c3f3c1e-6d0a-5c55-9a43-0d4c8b7e0f11","source":"hardware/",` +
		`"datatype":"BENCH","data":{"id":"43","bench":"r1.1795437209759000124","channel":"events","entity":"BENCH",` +
		`"org":"5f0c6b2e-4d2a-4c1e-9b7a-2a9d8e4f1c30","pad":"\"x\\","timestampMs":1795437209759},"specversion":"1.0"}]}`
	streamsPush = `{"type":"message","resource":"s6f1d0c3a9b2e4f5a6b7c8d9e","value":{"id":"e42","streamId":"s6f1d0c3a9b2e4f5a6b7c8d9e",` +
		`"path":"/acme/org/events","creationDate":1795437209759,"generatedDate":1795437209759,"creatorId":"i0a1b2c3d4e5f60718293a4b5",` +
		`"lastEditDate":1795437209759,"lastEditorId":"i0a1b2c3d4e5f60718293a4b5","elems":{"id":"42","bench":"r1.1795437209759000123",` +
		`"channel":"events","entity":"BENCH","org":"5f0c6b2e-4d2a-4c1e-9b7a-2a9d8e4f1c30","timestampMs":1795437209759},` +
		`"metadata":{},"location":null,"hash":null,"tags":{}}}`
)

// scanners are the JSON dialects' scanners by name.
var scanners = map[string]MessageScanner{"channels": ScanChannels, "ess": ScanESS, "streams": ScanStreams}

func TestScanJSONDialects(t *testing.T) {
	tests := []struct {
		dialect, name, in string
		want              []string
	}{
		{"channels", "push", channelsPush, []string{"message id=42 stamp=1795437209759000123"}},
		{"channels", "auth ok", `{"type":"auth_response","success":true,"user":"key:bench","org":"o","expires_at":"2026-12-04T03:15:39Z"}`, []string{"connected"}},
		{"channels", "auth refused", `{"type":"auth_response","success":false,"error":"too_many_connections","message":"…"}`, []string{"error"}},
		{"channels", "subscribed", `{"type":"subscribed","channel":"alerts","filters":{}}`, []string{"receipt"}},
		{"channels", "error", `{"type":"error","error":"rate_limited","message":"…"}`, []string{"error"}},
		{"channels", "system status has no id", `{"type":"system_status_update","channel":"system","metrics":{},"timestamp":"x"}`, []string{"other"}},
		{"channels", "other run", strings.Replace(channelsPush, `"r1.`, `"r2.`, 1), []string{"message id=42"}},
		{"channels", "bad id", `{"type":"alert","channel":"alerts","event_id":"4x2"}`, []string{"message"}},
		{"channels", "empty", ``, []string{"other"}},
		{"ess", "two events", essPush, []string{"message id=42 stamp=1795437209759000123", "message id=43 stamp=1795437209759000124"}},
		{"ess", "started", `{"commandId":1,"status":201,"sessionId":"5c1e"}`, []string{"connected"}},
		{"ess", "subscribed", `{"commandId":2,"status":200,"subscriptionId":"a7f"}`, []string{"receipt"}},
		{"ess", "refused", `{"commandId":2,"status":400,"error":{"errorText":"bad filter"}}`, []string{"error"}},
		{"ess", "another command", `{"commandId":7,"status":200}`, []string{"other"}},
		{"ess", "not a reply", `{"commandId":"1","status":200}`, []string{"other"}},
		{"ess", "empty events", `{"events":[]}`, nil},
		{"ess", "unclosed events", `{"events":[{"id":"5"`, nil},
		{"streams", "push", streamsPush, []string{"message id=42 stamp=1795437209759000123"}},
		{"streams", "ack", `{"head":{"msgId":"sub-0","ok":true,"errors":[],"messages":["Your request has been processed successfully."]},"body":{}}`, []string{"receipt"}},
		{"streams", "refused", `{"head":{"msgId":"sub-0","ok":false,"errors":["no stream has the path \"/x\""],"messages":[]},"body":{}}`, []string{"error"}},
		{"streams", "too large", `{"head":{"msgId":null,"ok":false,"errors":["the message is larger than 4096 bytes"],"messages":[]},"body":{}}`, []string{"error"}},
		{"streams", "another ack", `{"head":{"msgId":"sub-01","ok":true,"errors":[],"messages":[]},"body":{}}`, []string{"other"}},
	}
	for _, tt := range tests {
		t.Run(tt.dialect+"/"+tt.name, func(t *testing.T) {
			var got []string
			scanners[tt.dialect]([]byte(tt.in), Marker("r1"), new(Frame), func(f *Frame) { got = append(got, brief(f)) })
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// brief describes a frame without its bytes.
func brief(f *Frame) string {
	d := describe(f)
	return strings.TrimSuffix(d[:strings.Index(d, " raw=")], " ")
}

func TestScanESSElements(t *testing.T) {
	var raws []string
	ScanESS([]byte(essPush), nil, new(Frame), func(f *Frame) { raws = append(raws, string(f.Raw)) })
	if len(raws) != 2 || !strings.HasPrefix(raws[0], `{"id":"42"`) || !strings.HasSuffix(raws[0], `"specversion":"1.0"}`) ||
		!strings.HasPrefix(raws[1], `{"id":"43"`) || !strings.HasSuffix(raws[1], `"specversion":"1.0"}`) {
		t.Fatalf("elements %q", raws)
	}
}

// jsonWire is a server's output in a JSON dialect: replies and pushes, one
// push split over continuation frames with a ping between them.
func jsonWire(msgs ...string) []byte {
	var wire []byte
	for _, m := range msgs {
		wire = append(wire, serverFrame(opText, m)...)
	}
	last := msgs[len(msgs)-1]
	first := serverFrame(opText, last[:20])
	first[0] &^= 0x80 // not final
	wire = append(wire, first...)
	wire = append(wire, serverFrame(opPing, "p")...)
	mid := serverFrame(opContinuation, last[20:40])
	mid[0] &^= 0x80
	wire = append(wire, mid...)
	return append(wire, serverFrame(opContinuation, last[40:])...)
}

// collectJSON feeds the chunks to a fresh stream with scan.
func collectJSON(scan MessageScanner, chunks ...[]byte) ([]string, error) {
	s := &Stream{Marker: Marker("r1"), MaxFrame: 4096, Scan: scan}
	var out []string
	for _, c := range chunks {
		if err := s.Feed(c, func(f *Frame) { out = append(out, describe(f)) }); err != nil {
			return out, err
		}
	}
	return out, nil
}

func TestStreamMessagesSplitAnywhere(t *testing.T) {
	for name, in := range map[string]struct {
		scan MessageScanner
		wire []byte
		n    int
	}{
		"channels": {ScanChannels, jsonWire(`{"type":"auth_response","success":true}`, `{"type":"subscribed","channel":"alerts"}`, channelsPush), 5},
		"ess":      {ScanESS, jsonWire(`{"commandId":1,"status":201,"sessionId":"s"}`, essPush), 6},
		"streams":  {ScanStreams, jsonWire(`{"head":{"msgId":"sub-0","ok":true,"errors":[]},"body":{}}`, streamsPush), 4},
	} {
		t.Run(name, func(t *testing.T) {
			want, err := collectJSON(in.scan, in.wire)
			if err != nil {
				t.Fatal(err)
			}
			if len(want) != in.n {
				t.Fatalf("got %d frames: %q", len(want), want)
			}
			for i := 0; i <= len(in.wire); i++ {
				for j := i; j <= len(in.wire); j += 11 {
					got, err := collectJSON(in.scan, clone(in.wire[:i]), clone(in.wire[i:j]), clone(in.wire[j:]))
					if err != nil {
						t.Fatalf("split %d,%d: %v", i, j, err)
					}
					if strings.Join(got, "|") != strings.Join(want, "|") {
						t.Fatalf("split %d,%d:\n got %q\nwant %q", i, j, got, want)
					}
				}
			}
		})
	}
}

func TestStreamMessageTooLarge(t *testing.T) {
	first := serverFrame(opText, strings.Repeat("a", 3000))
	first[0] &^= 0x80
	wire := append(first, serverFrame(opContinuation, strings.Repeat("a", 3000))...)
	if _, err := collectJSON(ScanChannels, wire); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("err = %v", err)
	}
}

func TestScanJSONDoesNotAllocate(t *testing.T) {
	for name, in := range map[string]struct {
		scan MessageScanner
		msg  string
	}{"channels": {ScanChannels, channelsPush}, "ess": {ScanESS, essPush}, "streams": {ScanStreams, streamsPush}} {
		wire := serverFrame(opText, in.msg)
		s := &Stream{Marker: Marker("r1"), Scan: in.scan}
		var last uint64
		on := func(f *Frame) { last = f.MessageID }
		n := testing.AllocsPerRun(1000, func() {
			if err := s.Feed(bytes.Clone(wire), on); err != nil {
				t.Fatal(err)
			}
		})
		// bytes.Clone is the one allocation: the stream must unmask in place.
		if n > 1 || last == 0 {
			t.Errorf("%s: %v allocations per message (last id %d)", name, n, last)
		}
	}
}

func TestNextElement(t *testing.T) {
	for in, want := range map[string][]string{
		`]`:                                     nil,
		` 1 , "a,]" ,{"b":[1,"\\"]}]}`:          {`1`, `"a,]"`, `{"b":[1,"\\"]}`},
		`"x\"],", [[]], {} ]`:                   {`"x\"],"`, `[[]]`, `{}`},
		`{"unclosed":"\\\"]`:                    nil,
		`{"a":1}`:                               nil, // no closing bracket yet
		`,]`:                                    nil,
		`{"k":"v\\\\"},{"k":"\\\\\"\\\\"}]rest`: {`{"k":"v\\\\"}`, `{"k":"\\\\\"\\\\"}`},
	} {
		var got []string
		rest := []byte(in)
		for el, r, ok := nextElement(rest); ok; el, r, ok = nextElement(r) {
			got = append(got, string(el))
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("nextElement(%s): got %q, want %q", in, got, want)
		}
	}
}

func BenchmarkScanESS(b *testing.B) {
	msg := []byte(essPush)
	var f Frame
	on := func(*Frame) {}
	b.SetBytes(int64(len(msg)))
	for range b.N {
		ScanESS(msg, Marker("r1"), &f, on)
	}
}
