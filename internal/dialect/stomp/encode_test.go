package stomp

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

func TestEscape(t *testing.T) {
	tests := []struct {
		name, version, in, want string
	}{
		{name: "plain 1.2", version: V12, in: "/topic/change/org-1", want: "/topic/change/org-1"},
		{name: "all four in 1.2", version: V12, in: "a\rb\nc:d\\e", want: `a\rb\nc\cd\\e`},
		{name: "1.1 leaves CR", version: V11, in: "a\rb\nc:d\\e", want: "a\rb\\nc\\cd\\\\e"},
		{name: "1.0 leaves all", version: V10, in: "a\rb\nc:d\\e", want: "a\rb\nc:d\\e"},
		{name: "unknown version uses 1.2", version: "9.9", in: "a:b", want: `a\cb`},
		{name: "empty", version: V12, in: "", want: ""},
		{name: "only specials", version: V12, in: "::", want: `\c\c`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Escape(tt.version, tt.in); got != tt.want {
				t.Fatalf("Escape(%q, %q) = %q, want %q", tt.version, tt.in, got, tt.want)
			}
		})
	}
}

// TestUnescapeInvertsEscape checks the two directions agree for every
// version on strings each version can represent.
func TestUnescapeInvertsEscape(t *testing.T) {
	for _, v := range []string{V10, V11, V12} {
		for _, s := range []string{"", "plain", `\`, "::", "\n\\:\r", "a\\cb", `\\\`} {
			if v == V11 && len(s) > 0 && s[len(s)-1] == '\r' {
				continue
			}
			got, ok := unescape(escapingFor(v), Escape(v, s))
			if !ok || got != s {
				t.Fatalf("v%s: unescape(Escape(%q)) = %q, %v", v, s, got, ok)
			}
		}
	}
}

func TestAppendFrame(t *testing.T) {
	tests := []struct {
		name    string
		version string
		command string
		headers []Header
		body    string
		want    string
	}{
		{
			name: "receipt has no content-length", version: V12, command: "RECEIPT",
			headers: hdrs("receipt-id", "7"),
			want:    "RECEIPT\nreceipt-id:7\n\n\x00",
		},
		{
			name: "empty MESSAGE still gets content-length", version: V12, command: "MESSAGE",
			headers: hdrs("destination", "/a"),
			want:    "MESSAGE\ndestination:/a\ncontent-length:0\n\n\x00",
		},
		{
			name: "given content-length is kept, not doubled", version: V12, command: "SEND",
			headers: hdrs("content-length", "2"), body: "hi",
			want: "SEND\ncontent-length:2\n\nhi\x00",
		},
		{
			name: "1.2 escapes names and values", version: V12, command: "RECEIPT",
			headers: hdrs("a:b", "c\nd\re\\"),
			want:    "RECEIPT\na\\cb:c\\nd\\re\\\\\n\n\x00",
		},
		{
			name: "CONNECTED is never escaped", version: V12, command: "CONNECTED",
			headers: hdrs("session", `s\1`),
			want:    "CONNECTED\nsession:s\\1\n\n\x00",
		},
		{
			name: "1.0 is never escaped", version: V10, command: "RECEIPT",
			headers: hdrs("receipt-id", `a:b\`),
			want:    "RECEIPT\nreceipt-id:a:b\\\n\n\x00",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			got := string(AppendFrame(nil, tt.version, tt.command, tt.headers, body))
			if got != tt.want {
				t.Fatalf("AppendFrame() = %q, want %q", got, tt.want)
			}
		})
	}
}

// randomString draws from an alphabet heavy in the bytes escaping is about.
func randomString(r *rand.Rand, alphabet string) string {
	b := make([]byte, r.IntN(8))
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// TestAppendFrameRoundTrip encodes random header sets for every version and
// checks the Parser reads back exactly what was encoded.
func TestAppendFrameRoundTrip(t *testing.T) {
	// What each version can carry: 1.1 cannot escape CR, and 1.0 escapes
	// nothing, so neither can hold a line-ending CR; 1.0 names cannot hold
	// ':' or LF, and its values cannot hold LF.
	alphabets := map[string]struct{ name, value string }{
		V12: {name: "ab:\\\r\n- ", value: "ab:\\\r\n- \x00"},
		V11: {name: "ab:\\\n- ", value: "ab:\\\n- \x00"},
		V10: {name: "ab\\- ", value: "ab:\\- \x00"},
	}
	commands := []string{"SEND", "MESSAGE", "ERROR", "RECEIPT", "SUBSCRIBE", "ACK"}
	r := rand.New(rand.NewPCG(1, 2))
	for _, v := range []string{V10, V11, V12} {
		t.Run("v"+v, func(t *testing.T) {
			for i := 0; i < 500; i++ {
				cmd := commands[r.IntN(len(commands))]
				var headers []Header
				for range r.IntN(5) {
					headers = append(headers, Header{
						Name:  randomString(r, alphabets[v].name),
						Value: randomString(r, alphabets[v].value),
					})
				}
				var body []byte
				if bodyAllowed(cmd) && r.IntN(2) == 0 {
					body = []byte(randomString(r, "xy\x00\n"))
				}
				wire := AppendFrame(nil, v, cmd, headers, body)
				p := NewParser(Limits{})
				p.SetVersion(v)
				got, err := collect(p, wire)
				if err != nil {
					t.Fatalf("parse %q: %v", wire, err)
				}
				want := &Frame{Command: cmd, Headers: headers, Body: body}
				if bodyAllowed(cmd) || len(body) > 0 {
					want.Headers = append(want.Headers[:len(headers):len(headers)],
						Header{Name: "content-length", Value: strconv.Itoa(len(body))})
				}
				checkFrames(t, got, []*Frame{want})
			}
		})
	}
}

// TestMessageParts checks that the three parts the server writes as
// separate buffers form one valid MESSAGE.
func TestMessageParts(t *testing.T) {
	body := []byte(`{"entity":"CAMERA","note":"a\u0000b"}` + "\x00tail")
	tests := []struct {
		name, version, subscription, ack string
		want                             []Header
	}{
		{
			name: "auto ack", version: V12, subscription: "sub-0",
			want: hdrs("destination", "/topic/change/org:1", "message-id", "ev-1",
				"content-type", "application/json", "content-length", strconv.Itoa(len(body)), "subscription", "sub-0"),
		},
		{
			name: "client ack on 1.1 with an escaped subscription id", version: V11, subscription: "s:1\\x", ack: "a-1",
			want: hdrs("destination", "/topic/change/org:1", "message-id", "ev-1",
				"content-type", "application/json", "content-length", strconv.Itoa(len(body)),
				"subscription", "s:1\\x", "ack", "a-1"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head := MessageHead(nil, "/topic/change/org:1", "ev-1", len(body))
			recipient := AppendRecipientHeaders(nil, tt.version, tt.subscription, tt.ack)
			tail := MessageTail(nil, body)
			p := NewParser(Limits{})
			p.SetVersion(tt.version)
			got, err := collect(p, head, recipient, tail)
			if err != nil {
				t.Fatal(err)
			}
			checkFrames(t, got, []*Frame{{Command: "MESSAGE", Headers: tt.want, Body: body}})
		})
	}
}

func TestAppendRecipientHeadersDoesNotAllocate(t *testing.T) {
	dst := make([]byte, 0, 128)
	allocs := testing.AllocsPerRun(100, func() {
		dst = AppendRecipientHeaders(dst[:0], V12, "sub-0", "ack:1")
	})
	if allocs != 0 {
		t.Fatalf("AppendRecipientHeaders allocates %.1f times per call, want 0", allocs)
	}
}
