package stomp

import (
	"strconv"
	"testing"
)

// validSeeds are real frames as the clients herald serves send them, and
// the server frames it sends back.
var validSeeds = []string{
	// @stomp/stompjs defaults.
	"CONNECT\naccept-version:1.2,1.1,1.0\nheart-beat:10000,10000\n\n\x00",
	// Rhombus Python and Go examples.
	"CONNECT\naccept-version:1.2\nheart-beat:10000,10000\n\n\x00",
	"SUBSCRIBE\nid:sub-0\ndestination:/topic/change/6b1f0c5e-2f1a-4c3e-9d7a-0d1e2f3a4b5c\n\n\x00",
	"DISCONNECT\n\n\x00",
	// stompjs SEND with content-length, ACK of a client-individual message.
	"SEND\ndestination:/queue/a\ncontent-type:application/json\ncontent-length:11\n\n{\"a\":\"b\x00c\"}\x00\n",
	"ACK\nid:ack-17\ntransaction:tx1\n\n\x00",
	"SUBSCRIBE\nid:sub-1\ndestination:/topic/change/org-1\nack:client-individual\nreceipt:r-1\n\n\x00",
	"UNSUBSCRIBE\nid:sub-1\n\n\x00BEGIN\ntransaction:tx1\n\n\x00COMMIT\ntransaction:tx1\n\n\x00",
	// Server frames.
	"CONNECTED\nversion:1.2\nheart-beat:10000,10000\nserver:herald/1.0\nsession:s-1\n\n\x00",
	"MESSAGE\ndestination:/topic/change/org-1\nmessage-id:ev-1\ncontent-type:application/json\ncontent-length:16\nsubscription:sub-0\n\n{\"entity\":\"ORG\"}\x00",
	"RECEIPT\nreceipt-id:r\\c1\n\n\x00",
	"ERROR\nmessage:bad\\nthing\ncontent-type:text/plain\n\noops\x00",
	// Heart-beats, CRLF, escapes.
	"\n",
	"\r\n\n\r\n",
	"SEND\r\ndestination:/a\r\nk\\c:v\\\\\\r\\n\r\n\r\nbody\x00\r\n\n",
}

// brokenSeeds each hold one protocol error.
var brokenSeeds = []string{
	"send\n\n\x00",
	"SEND\nnocolon\n\n\x00",
	"SEND\nk:\\t\n\n\x00",
	"SEND\ncontent-length:-1\n\n\x00",
	"SEND\ncontent-length:3\n\nabcd\x00",
	"SUBSCRIBE\nid:1\n\nbody\x00",
	"GET /websocket HTTP/1.1\r\nHost: x\r\n\r\n",
	"SEND\ndestination:/a\n\nunterminated",
}

// fuzzLimits are small so the fuzzer reaches every limit quickly; the seeds
// fit inside them.
var fuzzLimits = Limits{MaxHeaderLines: 8, MaxHeaderBytes: 200, MaxBodyBytes: 300}

// FuzzParser checks, for every input and every version's escaping, that the
// parser never panics, that its outcome does not depend on how the input is
// split across Feed calls, that it never holds more than the limits allow,
// and that every frame it returns re-encodes to the same frame.
func FuzzParser(f *testing.F) {
	for _, s := range append(validSeeds, brokenSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1024 {
			return // the every-split check is quadratic; long inputs add little
		}
		// Feed's scanning ignores the version (only Next's unescaping uses
		// it), so splitting at every point is checked once per limit set.
		checkParse(t, V12, fuzzLimits, data, true)
		checkParse(t, V12, Limits{}, data, true)
		checkParse(t, V11, fuzzLimits, data, false)
		checkParse(t, V10, fuzzLimits, data, false)
	})
}

func checkParse(t *testing.T, v string, l Limits, data []byte, everySplit bool) {
	t.Helper()
	newParser := func() *Parser {
		p := NewParser(l)
		p.SetVersion(v)
		return p
	}
	whole, wholeErr := collect(newParser(), data)

	for i := 1; everySplit && i < len(data); i++ {
		got, err := collect(newParser(), data[:i], data[i:])
		if !sameFrames(got, whole) || errString(err) != errString(wholeErr) {
			t.Fatalf("v%s split at %d of %q:\n got  %s, err %v\n whole %s, err %v",
				v, i, data, framesString(got), err, framesString(whole), wholeErr)
		}
	}

	// Byte by byte, watching what the parser holds.
	limits := l.withDefaults()
	bound := limits.MaxHeaderBytes + limits.MaxBodyBytes + 2
	p := newParser()
	var got []*Frame
	var err error
	for i := 0; i < len(data) && err == nil; i++ {
		p.Feed(data[i : i+1])
		if n := p.Buffered(); n > bound {
			t.Fatalf("v%s: Buffered() = %d after %d bytes, bound %d", v, n, i+1, bound)
		}
		for {
			var fr *Frame
			fr, err = p.Next()
			if fr == nil {
				break
			}
			got = append(got, fr)
		}
	}
	if !sameFrames(got, whole) || errString(err) != errString(wholeErr) {
		t.Fatalf("v%s bytewise %q:\n got  %s, err %v\n whole %s, err %v",
			v, data, framesString(got), err, framesString(whole), wholeErr)
	}

	for _, fr := range whole {
		checkReencode(t, v, fr)
	}
}

// checkReencode encodes fr with AppendFrame and parses it back.
func checkReencode(t *testing.T, v string, fr *Frame) {
	t.Helper()
	if fr.Command == "CONNECT" || fr.Command == "STOMP" {
		return
	}
	// Without a CR escape, a header value ending in CR cannot be written:
	// the reader takes that CR as part of the line's EOL.
	if rawCommand(fr.Command) || v != V12 {
		for _, h := range fr.Headers {
			if n := len(h.Value); n > 0 && h.Value[n-1] == '\r' {
				return
			}
		}
	}
	wire := AppendFrame(nil, v, fr.Command, fr.Headers, fr.Body)
	roomy := Limits{MaxHeaderLines: 1000, MaxHeaderBytes: 1 << 20, MaxBodyBytes: 1 << 20}
	p := NewParser(roomy)
	p.SetVersion(v)
	got, err := collect(p, wire)
	if err != nil {
		t.Fatalf("v%s: re-parse of %q: %v", v, wire, err)
	}
	want := &Frame{Command: fr.Command, Headers: fr.Headers, Body: fr.Body}
	if _, given := fr.Get("content-length"); !given && (len(fr.Body) > 0 || bodyAllowed(fr.Command)) {
		n := len(fr.Headers)
		want.Headers = append(fr.Headers[:n:n], Header{Name: "content-length", Value: strconv.Itoa(len(fr.Body))})
	}
	if !sameFrames(got, []*Frame{want}) {
		t.Fatalf("v%s: re-encoded %q:\n got  %s\n want %s", v, wire, framesString(got), frameString(want))
	}
}

// TestFuzzSeeds keeps the seeds honest: the valid ones parse within the fuzz
// limits and the broken ones fail.
func TestFuzzSeeds(t *testing.T) {
	for i, s := range validSeeds {
		if _, err := collect(NewParser(fuzzLimits), []byte(s)); err != nil {
			t.Errorf("valid seed %d %q: %v", i, s, err)
		}
	}
	for i, s := range brokenSeeds {
		frames, err := collect(NewParser(fuzzLimits), []byte(s))
		if err == nil && len(frames) > 0 {
			t.Errorf("broken seed %d %q parsed as %s", i, s, framesString(frames))
		}
	}
}
