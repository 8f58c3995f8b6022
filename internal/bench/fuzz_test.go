package bench

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// seedWire is real server output: herald's replies and a MESSAGE, framed
// as herald's writer frames them.
func seedWire() [][]byte {
	return [][]byte{
		serverFrame(opText, "CONNECTED\nversion:1.2\nheart-beat:0,0\nsession:f799a998c2c07d31b4475b2a\nserver:herald/0.1.0-dev\n\n\x00"),
		serverFrame(opText, "RECEIPT\nreceipt-id:sub-0\n\n\x00"),
		serverFrame(opText, heraldMessage),
		append(serverFrame(opText, "\n"), serverFrame(opPing, "")...),
		serverFrame(opText, "ERROR\nmessage:access denied\ncontent-type:text/plain\nreceipt-id:77\ncontent-length:5\n\nnope.\x00"),
		append(serverFrame(opText, heraldMessage[:90]), serverFrame(opContinuation, heraldMessage[90:])...),
		serverFrame(opClose, "\x03\xf0policy"),
	}
}

// FuzzStream checks that the decoder never panics, emits only frames that
// end in NUL, and that splitting the input anywhere changes nothing.
func FuzzStream(f *testing.F) {
	for i, w := range seedWire() {
		f.Add(w, uint16(i*13))
	}
	f.Add(bytes.Join(seedWire(), nil), uint16(300))
	f.Fuzz(func(t *testing.T, wire []byte, at uint16) {
		whole, errWhole := collect(clone(wire))
		split := int(at) % (len(wire) + 1)
		parts, errParts := collect(clone(wire[:split]), clone(wire[split:]))
		if (errWhole == nil) != (errParts == nil) {
			t.Fatalf("whole: %v, split at %d: %v", errWhole, split, errParts)
		}
		var ce1, ce2 *CloseError
		if errors.As(errWhole, &ce1) != errors.As(errParts, &ce2) {
			t.Fatalf("close differs: %v vs %v", errWhole, errParts)
		}
		if strings.Join(whole, "|") != strings.Join(parts, "|") {
			t.Fatalf("split at %d:\n got %q\nwant %q", split, parts, whole)
		}
		for _, d := range whole {
			if !strings.HasPrefix(d, "ping") && !strings.HasSuffix(d, "^@") {
				t.Fatalf("frame without NUL: %q", d)
			}
		}
	})
}

// FuzzScanFrame checks ScanFrame's bounds and that a MESSAGE's fields come
// from where they should.
func FuzzScanFrame(f *testing.F) {
	f.Add([]byte(heraldMessage))
	f.Add([]byte("RECEIPT\r\nreceipt-id:1\r\n\r\n\x00"))
	f.Add([]byte("MESSAGE\nmessage-id:18446744073709551615\n\n{\"bench\":\"r1.1\"}\x00"))
	f.Add([]byte("\n\n\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, n, ok := ScanFrame(b, Marker("r1"))
		if !ok {
			if bytes.IndexByte(b, 0) >= 0 || n != 0 {
				t.Fatalf("not ok with a NUL present (n=%d)", n)
			}
			return
		}
		if n < 1 || n > len(b) || b[n-1] != 0 || bytes.IndexByte(b[:n-1], 0) >= 0 {
			t.Fatalf("n=%d does not end at the first NUL", n)
		}
		if fr.Stamped {
			if fr.Command != CommandMessage || fr.Stamp < 0 || !bytes.Contains(fr.Body(), Marker("r1")) {
				t.Fatalf("stamp %d from outside a MESSAGE body", fr.Stamp)
			}
		}
		_ = fr.Header("message-id")
	})
}

// jsonSeeds are real messages of the JSON dialects, replies and pushes.
func jsonSeeds() []string {
	return []string{channelsPush, essPush, streamsPush,
		`{"type":"auth_response","success":true}`, `{"type":"subscribed","channel":"alerts","filters":{}}`,
		`{"commandId":1,"status":201,"sessionId":"5c1e"}`, `{"commandId":2,"status":400,"error":{"errorText":"x"}}`,
		`{"head":{"msgId":"sub-0","ok":true,"errors":[],"messages":[]},"body":{}}`,
		`{"events":[{"id":"1","data":"]"},{"id":"2"},[1,{"a":"\"]"}]]}`}
}

// FuzzScanJSON checks the JSON dialects' scanners: no panic, every frame's
// bytes within the message, a stamp only from bytes holding the marker,
// and an event id only on events.
func FuzzScanJSON(f *testing.F) {
	for _, s := range jsonSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		for name, scan := range scanners {
			scan(msg, Marker("r1"), new(Frame), func(fr *Frame) {
				if len(fr.Raw) > len(msg) || (len(fr.Raw) > 0 && !bytes.Contains(msg, fr.Raw)) {
					t.Fatalf("%s: frame bytes %q not from the message", name, fr.Raw)
				}
				if fr.Stamped && (fr.Command != CommandMessage || fr.Stamp < 0 || !bytes.Contains(fr.Raw, Marker("r1"))) {
					t.Fatalf("%s: stamp %d from %q", name, fr.Stamp, fr.Raw)
				}
				if fr.HasID && fr.Command != CommandMessage {
					t.Fatalf("%s: an id on a %v frame", name, fr.Command)
				}
			})
		}
	})
}

// FuzzStreamMessages checks that a stream reading a JSON dialect gives the
// same frames however its input is split.
func FuzzStreamMessages(f *testing.F) {
	for i, s := range jsonSeeds() {
		f.Add(serverFrame(opText, s), uint16(i*17))
	}
	f.Add(jsonWire(`{"commandId":1,"status":201}`, essPush), uint16(200))
	f.Fuzz(func(t *testing.T, wire []byte, at uint16) {
		split := int(at) % (len(wire) + 1)
		for name, scan := range scanners {
			whole, errWhole := collectJSON(scan, clone(wire))
			parts, errParts := collectJSON(scan, clone(wire[:split]), clone(wire[split:]))
			if (errWhole == nil) != (errParts == nil) {
				t.Fatalf("%s: whole: %v, split at %d: %v", name, errWhole, split, errParts)
			}
			if strings.Join(whole, "|") != strings.Join(parts, "|") {
				t.Fatalf("%s: split at %d:\n got %q\nwant %q", name, split, parts, whole)
			}
		}
	})
}
