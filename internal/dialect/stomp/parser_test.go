package stomp

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParserValid(t *testing.T) {
	tests := []struct {
		name    string
		version string // "" leaves the parser's 1.2 default
		in      string
		want    []*Frame
	}{
		{
			name: "send without content-length",
			in:   "SEND\ndestination:/queue/a\n\nhello\x00",
			want: []*Frame{{Command: "SEND", Headers: hdrs("destination", "/queue/a"), Body: []byte("hello")}},
		},
		{
			name: "send with content-length and NUL in body",
			in:   "SEND\ndestination:/queue/a\ncontent-length:5\n\nhe\x00lo\x00",
			want: []*Frame{{Command: "SEND", Headers: hdrs("destination", "/queue/a", "content-length", "5"), Body: []byte("he\x00lo")}},
		},
		{
			name: "content-length zero on a bodiless command",
			in:   "SUBSCRIBE\nid:0\ncontent-length:0\n\n\x00",
			want: []*Frame{{Command: "SUBSCRIBE", Headers: hdrs("id", "0", "content-length", "0")}},
		},
		{
			name: "later content-length duplicates are ignored",
			in:   "SEND\ncontent-length:2\ncontent-length:junk\n\nab\x00",
			want: []*Frame{{Command: "SEND", Headers: hdrs("content-length", "2", "content-length", "junk"), Body: []byte("ab")}},
		},
		{
			name: "CRLF line endings",
			in:   "SEND\r\ndestination:/queue/a\r\nreceipt:r-1\r\n\r\nhi\x00\r\n",
			want: []*Frame{{Command: "SEND", Headers: hdrs("destination", "/queue/a", "receipt", "r-1"), Body: []byte("hi")}},
		},
		{
			name: "repeated headers are all kept in order",
			in:   "MESSAGE\nfoo:first\nbar:x\nfoo:second\n\n\x00",
			want: []*Frame{{Command: "MESSAGE", Headers: hdrs("foo", "first", "bar", "x", "foo", "second")}},
		},
		{
			name: "names and values are not trimmed; colons after the first stay in the value",
			in:   "SEND\n key : a:b \nempty:\n\n\x00",
			want: []*Frame{{Command: "SEND", Headers: hdrs(" key ", " a:b ", "empty", "")}},
		},
		{
			name: "1.2 escapes",
			in:   "SEND\nk\\cx:a\\r\\n\\c\\\\b\n\n\x00",
			want: []*Frame{{Command: "SEND", Headers: hdrs("k:x", "a\r\n:\\b")}},
		},
		{
			name:    "1.1 escapes",
			version: V11,
			in:      "SEND\nk\\cx:a\\n\\c\\\\b\n\n\x00",
			want:    []*Frame{{Command: "SEND", Headers: hdrs("k:x", "a\n:\\b")}},
		},
		{
			name:    "1.0 has no escapes",
			version: V10,
			in:      "SEND\nk:a\\tb\\c\\\n\n\x00",
			want:    []*Frame{{Command: "SEND", Headers: hdrs("k", "a\\tb\\c\\")}},
		},
		{
			name: "CONNECT is never unescaped",
			in:   "CONNECT\nlogin:a\\cb\npasscode:x\\t\\\n\n\x00",
			want: []*Frame{{Command: "CONNECT", Headers: hdrs("login", "a\\cb", "passcode", "x\\t\\")}},
		},
		{
			name:    "STOMP is never unescaped",
			version: V11,
			in:      "STOMP\naccept-version:1.2\nhost:a\\b\n\n\x00",
			want:    []*Frame{{Command: "STOMP", Headers: hdrs("accept-version", "1.2", "host", "a\\b")}},
		},
		{
			name: "CONNECTED is never unescaped",
			in:   "CONNECTED\nversion:1.2\nsession:s\\1\n\n\x00",
			want: []*Frame{{Command: "CONNECTED", Headers: hdrs("version", "1.2", "session", "s\\1")}},
		},
		{
			name: "stompjs CONNECT",
			in:   "CONNECT\naccept-version:1.2,1.1,1.0\nheart-beat:10000,10000\n\n\x00",
			want: []*Frame{{Command: "CONNECT", Headers: hdrs("accept-version", "1.2,1.1,1.0", "heart-beat", "10000,10000")}},
		},
		{
			name: "several frames and heart-beats in one feed",
			in: "\n\r\n\nSEND\ndestination:/a\n\nx\x00\n\n" +
				"SUBSCRIBE\nid:1\ndestination:/b\n\n\x00\r\n\r\n" +
				"ACK\nid:m-1\n\n\x00\n",
			want: []*Frame{
				{Command: "SEND", Headers: hdrs("destination", "/a"), Body: []byte("x")},
				{Command: "SUBSCRIBE", Headers: hdrs("id", "1", "destination", "/b")},
				{Command: "ACK", Headers: hdrs("id", "m-1")},
			},
		},
		{
			name: "only heart-beats",
			in:   "\n\r\n\n\r\n",
		},
		{
			name: "many headers spill out of the inline block",
			in:   "SEND\na:1\nb:2\nc:3\nd:4\ne:5\nf:6\ng:7\nh:8\n\n\x00",
			want: []*Frame{{Command: "SEND", Headers: hdrs("a", "1", "b", "2", "c", "3", "d", "4", "e", "5", "f", "6", "g", "7", "h", "8")}},
		},
		{
			name: "NUL bytes inside a header value",
			in:   "SEND\nk:a\x00b\n\n\x00",
			want: []*Frame{{Command: "SEND", Headers: hdrs("k", "a\x00b")}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			feeds := map[string][][]byte{
				"whole":     {[]byte(tt.in)},
				"bytewise":  bytewise([]byte(tt.in)),
				"two-parts": {[]byte(tt.in[:len(tt.in)/2]), []byte(tt.in[len(tt.in)/2:])},
			}
			for mode, chunks := range feeds {
				p := NewParser(Limits{})
				if tt.version != "" {
					p.SetVersion(tt.version)
				}
				got, err := collect(p, chunks...)
				if err != nil {
					t.Fatalf("%s: unexpected error %v", mode, err)
				}
				checkFrames(t, got, tt.want)
				if n := p.Buffered(); n != 0 {
					t.Fatalf("%s: Buffered() = %d after complete input, want 0", mode, n)
				}
			}
		})
	}
}

// TestParserEveryCommand checks that each client and server command parses,
// and that exactly SEND, MESSAGE and ERROR may carry a body.
func TestParserEveryCommand(t *testing.T) {
	commands := []string{
		"CONNECT", "STOMP", "SEND", "SUBSCRIBE", "UNSUBSCRIBE", "ACK", "NACK", "BEGIN",
		"COMMIT", "ABORT", "DISCONNECT", "CONNECTED", "MESSAGE", "RECEIPT", "ERROR",
	}
	for _, cmd := range commands {
		t.Run(cmd, func(t *testing.T) {
			got, err := collect(NewParser(Limits{}), []byte(cmd+"\nreceipt:r-7\n\n\x00"))
			if err != nil {
				t.Fatal(err)
			}
			checkFrames(t, got, []*Frame{{Command: cmd, Headers: hdrs("receipt", "r-7")}})

			got, err = collect(NewParser(Limits{}), []byte(cmd+"\n\nbody\x00"))
			if bodyAllowed(cmd) {
				if err != nil {
					t.Fatal(err)
				}
				checkFrames(t, got, []*Frame{{Command: cmd, Body: []byte("body")}})
			} else if err == nil || !strings.Contains(err.Error(), "body not allowed on "+cmd) {
				t.Fatalf("body on %s: err = %v, want body not allowed", cmd, err)
			}
		})
	}
}

func TestParserInvalid(t *testing.T) {
	small := Limits{MaxHeaderLines: 3, MaxHeaderBytes: 64, MaxBodyBytes: 16}
	tests := []struct {
		name    string
		version string
		limits  Limits
		in      string
		wantErr string
	}{
		{name: "unknown command", in: "FROB\n\n\x00", wantErr: "unknown command"},
		{name: "lower-case command", in: "send\ndestination:/a\n\n\x00", wantErr: "unknown command"},
		{name: "HTTP request", in: "GET / HTTP/1.1\r\nHost: x\r\n\r\n", wantErr: "unknown command"},
		{name: "command with trailing space", in: "SEND \n\n\x00", wantErr: "unknown command"},
		{name: "two CRs before LF", in: "SEND\r\r\n\n\x00", wantErr: "unknown command"},
		{name: "lone CR is not a heart-beat", in: "\r\r\n", wantErr: "unknown command"},
		{name: "header line without colon", in: "SEND\ndestination\n\n\x00", wantErr: "header line without colon"},
		{name: "bad escape \\t", in: "SEND\nk:a\\tb\n\n\x00", wantErr: "invalid escape"},
		{name: "bad escape in name", in: "SEND\nk\\x:v\n\n\x00", wantErr: "invalid escape"},
		{name: "trailing backslash", in: "SEND\nk:ab\\\n\n\x00", wantErr: "invalid escape"},
		{name: "\\r is not a 1.1 escape", version: V11, in: "SEND\nk:a\\rb\n\n\x00", wantErr: "invalid escape"},
		{name: "non-numeric content-length", in: "SEND\ncontent-length:abc\n\n\x00", wantErr: "invalid content-length"},
		{name: "negative content-length", in: "SEND\ncontent-length:-1\n\n\x00", wantErr: "invalid content-length"},
		{name: "signed content-length", in: "SEND\ncontent-length:+1\n\nx\x00", wantErr: "invalid content-length"},
		{name: "empty content-length", in: "SEND\ncontent-length:\n\n\x00", wantErr: "invalid content-length"},
		{name: "padded content-length", in: "SEND\ncontent-length: 1\n\nx\x00", wantErr: "invalid content-length"},
		{name: "content-length not followed by NUL", in: "SEND\ncontent-length:2\n\nabc\x00", wantErr: "not followed by NUL"},
		{name: "content-length zero not followed by NUL", in: "SEND\ncontent-length:0\n\nx\x00", wantErr: "not followed by NUL"},
		{name: "too many header lines", limits: small, in: "SEND\na:1\nb:2\nc:3\nd:4\n\n\x00", wantErr: "too many header lines (limit 3)"},
		{name: "headers too large", limits: small, in: "SEND\nk:" + strings.Repeat("v", 60) + "\n\n\x00", wantErr: "headers too large (limit 64 bytes)"},
		{name: "endless header line", limits: small, in: "SEND\nk:" + strings.Repeat("v", 500), wantErr: "headers too large"},
		{name: "endless command line", limits: small, in: strings.Repeat("S", 500), wantErr: "headers too large"},
		{name: "body too large without content-length", limits: small, in: "SEND\n\n" + strings.Repeat("b", 17) + "\x00", wantErr: "body too large (limit 16 bytes)"},
		{name: "endless body", limits: small, in: "SEND\n\n" + strings.Repeat("b", 500), wantErr: "body too large"},
		{name: "content-length above limit", limits: small, in: "SEND\ncontent-length:17\n\n", wantErr: "body too large (limit 16 bytes)"},
		{name: "huge content-length", in: "SEND\ncontent-length:99999999999999999999999999\n\n", wantErr: "body too large"},
		{name: "body on SUBSCRIBE", in: "SUBSCRIBE\nid:1\ndestination:/a\n\nx\x00", wantErr: "body not allowed on SUBSCRIBE"},
		{name: "content-length body on SUBSCRIBE", in: "SUBSCRIBE\nid:1\ncontent-length:1\n\nx\x00", wantErr: "body not allowed on SUBSCRIBE"},
		{name: "bare CR heart-beat before frame", in: "\rSEND\n\n\x00", wantErr: "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for mode, chunks := range map[string][][]byte{
				"whole":    {[]byte(tt.in)},
				"bytewise": bytewise([]byte(tt.in)),
			} {
				p := NewParser(tt.limits)
				if tt.version != "" {
					p.SetVersion(tt.version)
				}
				_, err := collect(p, chunks...)
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("%s: err = %v, want a *ParseError", mode, err)
				}
				if !strings.Contains(pe.Message, tt.wantErr) {
					t.Fatalf("%s: err = %q, want it to contain %q", mode, pe.Message, tt.wantErr)
				}
				if strings.ContainsAny(pe.Message, "\r\n") {
					t.Fatalf("%s: message %q holds an EOL", mode, pe.Message)
				}
			}
		})
	}
}

func TestParserIncomplete(t *testing.T) {
	in := []byte("SEND\ndestination:/a\n\nhello")
	p := NewParser(Limits{})
	p.Feed(in)
	f, err := p.Next()
	if f != nil || err != nil {
		t.Fatalf("Next() = %v, %v; want nil, nil while the NUL is missing", frameString(f), err)
	}
	if n := p.Buffered(); n != len(in) {
		t.Fatalf("Buffered() = %d, want %d", n, len(in))
	}
	p.Feed([]byte(" world\x00"))
	got, err := collect(p)
	if err != nil {
		t.Fatal(err)
	}
	checkFrames(t, got, []*Frame{{Command: "SEND", Headers: hdrs("destination", "/a"), Body: []byte("hello world")}})
}

// TestParserLimitWhileWaiting checks that input withheld at a limit is
// refused as soon as it crosses it, and that the parser never holds much
// more than the limits allow however the input is chunked.
func TestParserLimitWhileWaiting(t *testing.T) {
	l := Limits{MaxHeaderLines: 4, MaxHeaderBytes: 128, MaxBodyBytes: 256}
	tests := []struct {
		name    string
		prefix  string
		filler  byte
		wantErr string
	}{
		{name: "head", prefix: "SEND\nk:", filler: 'h', wantErr: "headers too large"},
		{name: "body", prefix: "SEND\n\n", filler: 'b', wantErr: "body too large"},
		{name: "content-length body", prefix: "SEND\ncontent-length:256\n\n", filler: 'c', wantErr: "not followed by NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewParser(l)
			p.Feed([]byte(tt.prefix))
			chunk := bytes.Repeat([]byte{tt.filler}, 7)
			for i := 0; i < 1000; i++ {
				p.Feed(chunk)
				if n := p.Buffered(); n > l.MaxHeaderBytes+l.MaxBodyBytes+1 {
					t.Fatalf("Buffered() = %d after %d chunks: holding too much", n, i+1)
				}
				f, err := p.Next()
				if f != nil {
					t.Fatalf("unexpected frame %s", frameString(f))
				}
				if err != nil {
					if !strings.Contains(err.Error(), tt.wantErr) {
						t.Fatalf("err = %v, want %q", err, tt.wantErr)
					}
					return
				}
			}
			t.Fatal("no error after 7000 bytes")
		})
	}
}

func TestParserStickyError(t *testing.T) {
	p := NewParser(Limits{})
	p.Feed([]byte("SEND\n\nok\x00BOGUS\n\n\x00SEND\n\nlater\x00"))
	f, err := p.Next()
	if err != nil || f == nil || string(f.Body) != "ok" {
		t.Fatalf("first Next() = %s, %v; want the frame before the error", frameString(f), err)
	}
	_, err1 := p.Next()
	if err1 == nil {
		t.Fatal("want an error for the unknown command")
	}
	p.Feed([]byte("SEND\n\nagain\x00"))
	for i := 0; i < 3; i++ {
		f, err := p.Next()
		if f != nil || err != err1 {
			t.Fatalf("Next() after error = %s, %v; want nil, %v", frameString(f), err, err1)
		}
	}
	if n := p.Buffered(); n != 0 {
		t.Fatalf("Buffered() = %d on a broken parser, want 0", n)
	}
}

// TestParserSetVersionAfterConnect checks that frames fed together with the
// CONNECT are unescaped under the version chosen after it.
func TestParserSetVersionAfterConnect(t *testing.T) {
	in := []byte("CONNECT\naccept-version:1.0\n\n\x00SEND\nk:a\\tb\n\n\x00")
	p := NewParser(Limits{})
	p.Feed(in)
	f, err := p.Next()
	if err != nil || f.Command != "CONNECT" {
		t.Fatalf("Next() = %s, %v", frameString(f), err)
	}
	p.SetVersion(V10)
	got, err := collect(p)
	if err != nil {
		t.Fatalf("under 1.0 the backslash is literal, got %v", err)
	}
	checkFrames(t, got, []*Frame{{Command: "SEND", Headers: hdrs("k", "a\\tb")}})

	p = NewParser(Limits{})
	p.Feed(in)
	if _, err := p.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Next(); err == nil {
		t.Fatal("under the default 1.2 rules \\t must be an error")
	}
}

// TestParserFrameOwnsMemory checks that a returned Frame does not alias the
// caller's input or the parser's buffers.
func TestParserFrameOwnsMemory(t *testing.T) {
	in := []byte("SEND\ndestination:/a\nk:v\\cw\n\nbody\x00SEND\ndestination:/b\n\npartial")
	p := NewParser(Limits{})
	p.Feed(in)
	f1, err := p.Next()
	if err != nil || f1 == nil {
		t.Fatalf("Next() = %s, %v", frameString(f1), err)
	}
	for i := range in {
		in[i] = 'X'
	}
	p.Feed([]byte(" rest\x00"))
	f2, err := p.Next()
	if err != nil || f2 == nil {
		t.Fatalf("Next() = %s, %v", frameString(f2), err)
	}
	checkFrames(t, []*Frame{f1, f2}, []*Frame{
		{Command: "SEND", Headers: hdrs("destination", "/a", "k", "v:w"), Body: []byte("body")},
		{Command: "SEND", Headers: hdrs("destination", "/b"), Body: []byte("partial rest")},
	})
	if _, ok := f1.Get("destination"); !ok {
		t.Fatal("Get(destination) not found")
	}
}

func TestFrameGet(t *testing.T) {
	f := &Frame{Command: "MESSAGE", Headers: hdrs("a", "1", "b", "", "a", "2")}
	tests := []struct {
		name, header, want string
		ok                 bool
	}{
		{name: "first occurrence wins", header: "a", want: "1", ok: true},
		{name: "empty value is present", header: "b", want: "", ok: true},
		{name: "missing", header: "c", ok: false},
		{name: "case-sensitive", header: "A", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := f.Get(tt.header)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("Get(%q) = %q, %v; want %q, %v", tt.header, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestLimitsDefaults(t *testing.T) {
	got := Limits{MaxHeaderLines: -1, MaxBodyBytes: 10}.withDefaults()
	want := Limits{MaxHeaderLines: DefaultMaxHeaderLines, MaxHeaderBytes: DefaultMaxHeaderBytes, MaxBodyBytes: 10}
	if got != want {
		t.Fatalf("withDefaults() = %+v, want %+v", got, want)
	}
}

// TestParserLimitBoundaries pins the exact edges: a head of exactly
// MaxHeaderBytes, exactly MaxHeaderLines lines and a body of exactly
// MaxBodyBytes are accepted.
func TestParserLimitBoundaries(t *testing.T) {
	l := Limits{MaxHeaderLines: 2, MaxHeaderBytes: 24, MaxBodyBytes: 4}
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{name: "head at limit", in: "SEND\nk:" + strings.Repeat("v", 16) + "\n\n\x00", ok: true},
		{name: "head one over", in: "SEND\nk:" + strings.Repeat("v", 17) + "\n\n\x00"},
		{name: "lines at limit", in: "SEND\na:1\nb:2\n\n\x00", ok: true},
		{name: "lines one over", in: "SEND\na:1\nb:2\nc:3\n\n\x00"},
		{name: "body at limit", in: "SEND\n\nabcd\x00", ok: true},
		{name: "body one over", in: "SEND\n\nabcde\x00"},
		{name: "content-length at limit", in: "SEND\ncontent-length:4\n\nab\x00d\x00", ok: true},
		{name: "content-length one over", in: "SEND\ncontent-length:5\n\nab\x00de\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, chunks := range [][][]byte{{[]byte(tt.in)}, bytewise([]byte(tt.in))} {
				_, err := collect(NewParser(l), chunks...)
				if (err == nil) != tt.ok {
					t.Fatalf("err = %v, want ok=%v", err, tt.ok)
				}
			}
		})
	}
}
