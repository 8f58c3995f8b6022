package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// sendAllowingClose writes one text message and returns the error: the server may
// close the connection while a large message is still going out.
func (r *rawConn) sendAllowingClose(data string) error {
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	return r.c.Write(ctx, websocket.MessageText, []byte(data))
}

// TestBadFrames sends malformed and forbidden input, each on its own
// connection: the server must answer with one ERROR frame (a message
// header, the receipt-id of the offending frame when it had a receipt) and
// then close the connection. Meanwhile a healthy connection opened before
// them keeps its subscription, and new connections are served.
func TestBadFrames(t *testing.T) {
	ts := startServer(t, testConfig(t.TempDir()))
	dest := "/topic/change/" + orgA

	healthy := dialRaw(t, ts.wsURL(), keyA)
	healthy.connect()
	healthy.send("SUBSCRIBE\nid:healthy\ndestination:" + dest + "\nreceipt:ok\n\n\x00")
	healthy.expect("RECEIPT\nreceipt-id:ok\n")

	// frame builds a frame from a command, header lines and a body.
	frame := func(command string, headers []string, body string) string {
		var b strings.Builder
		b.WriteString(command + "\n")
		for _, h := range headers {
			b.WriteString(h + "\n")
		}
		b.WriteString("\n" + body + "\x00")
		return b.String()
	}
	subscribeTo := func(d string, extra ...string) string {
		return frame("SUBSCRIBE", append([]string{"id:s-1", "destination:" + d}, extra...), "")
	}
	manyHeaders := []string{"id:s-1", "destination:" + dest}
	for i := range 70 {
		manyHeaders = append(manyHeaders, fmt.Sprintf("x-h%d:%d", i, i))
	}
	endlessLine := "SUBSCRIBE\nid:s-1\nx-endless:" + strings.Repeat("a", 9<<10)
	bigBody := strings.Repeat("b", 70<<10)

	cases := []struct {
		name    string
		connect bool              // send CONNECT first and expect CONNECTED
		send    []string          // WebSocket messages, in order
		before  []string          // frames (prefixes) that must come before the ERROR
		receipt string            // receipt-id the ERROR must carry
		want    string            // text in the ERROR's message header or body, lower case
		headers map[string]string // more headers the ERROR must carry
	}{
		// Frame syntax.
		{name: "unknown command", send: []string{"FOO\n\n\x00"}, want: "unknown command"},
		{name: "unknown command after CONNECT", connect: true, send: []string{"FOO\nreceipt:r\n\n\x00"}, want: "unknown command"},
		{name: "lower-case command", send: []string{"connect\naccept-version:1.2\n\n\x00"}, want: "unknown command"},
		{name: "server frame from the client", connect: true, send: []string{frame("MESSAGE", []string{"destination:" + dest, "receipt:r-msg"}, "")},
			receipt: "r-msg"},
		{name: "header without colon", connect: true, send: []string{frame("SUBSCRIBE", []string{"id:s-1", "destination " + dest}, "")}, want: "colon"},
		{name: "bad escape in a header", connect: true,
			send: []string{frame("SUBSCRIBE", []string{"id:s\\t1", "destination:" + dest}, "")}, want: "escape"},
		// docs/stomp.md: receipt-id "if the offending frame had a receipt".
		{name: "bad escape in a header with a receipt", connect: true,
			send: []string{frame("SUBSCRIBE", []string{"id:s\\t1", "destination:" + dest, "receipt:r-esc"}, "")}, want: "escape", receipt: "r-esc"},
		{name: "endless header line in one message", connect: true, send: []string{endlessLine}, want: "headers too large"},
		{name: "endless header line over many messages", connect: true,
			send: []string{"SUBSCRIBE\nid:s-1\nx-endless:", strings.Repeat("a", 3000), strings.Repeat("a", 3000), strings.Repeat("a", 3000)},
			want: "headers too large"},
		{name: "unfinished frame then header lines past 8 KiB", connect: true,
			send: []string{"SUBSCRIBE\nid:s-1\n", strings.Repeat("x-pad:"+strings.Repeat("p", 1000)+"\n", 12)}, want: "headers too large"},
		{name: "too many header lines", connect: true, send: []string{frame("SUBSCRIBE", manyHeaders, "")}, want: "too many header lines"},
		{name: "body above 64 KiB with content-length", connect: true,
			send: []string{frame("SEND", []string{"destination:" + dest, fmt.Sprintf("content-length:%d", len(bigBody))}, bigBody)}, want: "body too large"},
		{name: "body above 64 KiB without content-length", connect: true,
			send: []string{frame("SEND", []string{"destination:" + dest}, bigBody)}, want: "body too large"},
		{name: "body above 64 KiB over several messages", connect: true,
			send: []string{"SEND\ndestination:" + dest + "\n\n", bigBody[:40<<10], bigBody[40<<10:]}, want: "body too large"},
		{name: "WebSocket message above 80 KiB", connect: true,
			send: []string{frame("SEND", []string{"destination:" + dest}, strings.Repeat("c", 81<<10))}, want: "too large"},
		{name: "body on SUBSCRIBE", connect: true, send: []string{frame("SUBSCRIBE", []string{"id:s-1", "destination:" + dest}, "junk")}, want: "body"},
		{name: "body on SUBSCRIBE with content-length", connect: true,
			send: []string{frame("SUBSCRIBE", []string{"id:s-1", "destination:" + dest, "content-length:4"}, "junk")}, want: "body"},
		{name: "no NUL after content-length body", connect: true,
			send: []string{"SEND\ndestination:" + dest + "\ncontent-length:2\n\nabc\x00"}, want: "nul"},
		{name: "non-numeric content-length", connect: true,
			send: []string{frame("SEND", []string{"destination:" + dest, "content-length:ten"}, "0123456789")}, want: "content-length"},

		// Session state.
		{name: "SUBSCRIBE before CONNECT", send: []string{subscribeTo(dest, "receipt:r-early")}, receipt: "r-early", want: "connect"},
		{name: "second CONNECT", connect: true, send: []string{"CONNECT\naccept-version:1.2\n\n\x00"}, want: "connected"},
		{name: "unsupported accept-version", send: []string{"CONNECT\naccept-version:3.0\n\n\x00"},
			want: "version", headers: map[string]string{"version": "1.2,1.1,1.0"}},
		{name: "empty accept-version", send: []string{"CONNECT\naccept-version:\n\n\x00"}, want: "version"},
		{name: "bad heart-beat", send: []string{"CONNECT\naccept-version:1.2\nheart-beat:x,y\n\n\x00"}, want: "heart-beat"},
		{name: "heart-beat with one number", send: []string{"CONNECT\naccept-version:1.2\nheart-beat:1000\n\n\x00"}, want: "heart-beat"},
		{name: "SEND is not supported", connect: true,
			send:    []string{frame("SEND", []string{"destination:" + dest, "receipt:r-send", "content-type:application/json"}, "{}")},
			receipt: "r-send", want: "send"},

		// SUBSCRIBE.
		{name: "SUBSCRIBE without id", connect: true,
			send: []string{frame("SUBSCRIBE", []string{"destination:" + dest, "receipt:r-noid"}, "")}, receipt: "r-noid", want: "id"},
		{name: "duplicate subscription id", connect: true,
			send:   []string{subscribeTo(dest, "receipt:r-1"), subscribeTo(dest, "receipt:r-2")},
			before: []string{"RECEIPT\nreceipt-id:r-1\n"}, receipt: "r-2", want: "duplicate"},
		{name: "another org's topic", connect: true, send: []string{subscribeTo("/topic/change/"+orgB, "receipt:r-b")}, receipt: "r-b", want: "denied"},
		{name: "no destination", connect: true, send: []string{frame("SUBSCRIBE", []string{"id:s-1", "receipt:r-nodest"}, "")},
			receipt: "r-nodest", want: "destination"},
		{name: "destination /queue/foo", connect: true, send: []string{subscribeTo("/queue/foo", "receipt:r-q")}, receipt: "r-q", want: "destination"},
		{name: "destination /topic/change/", connect: true, send: []string{subscribeTo("/topic/change/", "receipt:r-e")}, receipt: "r-e", want: "destination"},
		{name: "destination /topic/change/x/y", connect: true, send: []string{subscribeTo("/topic/change/x/y", "receipt:r-xy")}, receipt: "r-xy", want: "destination"},
		{name: "destination with a wildcard", connect: true, send: []string{subscribeTo("/topic/change/*", "receipt:r-w")}, receipt: "r-w", want: "destination"},
		{name: "bad ack mode", connect: true, send: []string{subscribeTo(dest, "ack:sometimes", "receipt:r-ack")}, receipt: "r-ack", want: "ack"},
		{name: "x-herald-after not a number", connect: true, send: []string{subscribeTo(dest, "x-herald-after:latest", "receipt:r-a")}, receipt: "r-a", want: "x-herald-after"},
		{name: "x-herald-after negative", connect: true, send: []string{subscribeTo(dest, "x-herald-after:-1", "receipt:r-n")}, receipt: "r-n", want: "x-herald-after"},

		// UNSUBSCRIBE, ACK and transactions.
		{name: "UNSUBSCRIBE unknown id", connect: true, send: []string{frame("UNSUBSCRIBE", []string{"id:nope", "receipt:r-u"}, "")}, receipt: "r-u", want: "subscription"},
		{name: "UNSUBSCRIBE twice", connect: true,
			send:   []string{subscribeTo(dest), frame("UNSUBSCRIBE", []string{"id:s-1", "receipt:r-u1"}, ""), frame("UNSUBSCRIBE", []string{"id:s-1", "receipt:r-u2"}, "")},
			before: []string{"RECEIPT\nreceipt-id:r-u1\n"}, receipt: "r-u2", want: "subscription"},
		{name: "ACK unknown id", connect: true, send: []string{frame("ACK", []string{"id:0.99", "receipt:r-k"}, "")}, receipt: "r-k", want: "ack"},
		{name: "ACK garbage id", connect: true, send: []string{subscribeTo(dest, "ack:client"), frame("ACK", []string{"id:what", "receipt:r-g"}, "")},
			receipt: "r-g", want: "ack"},
		{name: "ACK without id", connect: true, send: []string{frame("ACK", []string{"receipt:r-ni"}, "")}, receipt: "r-ni", want: "ack"},
		{name: "NACK unknown id", connect: true, send: []string{frame("NACK", []string{"id:0.1", "receipt:r-nk"}, "")}, receipt: "r-nk", want: "ack"},
		{name: "ACK in an unknown transaction", connect: true,
			send: []string{frame("ACK", []string{"id:0.1", "transaction:t-none", "receipt:r-at"}, "")}, receipt: "r-at", want: "transaction"},
		{name: "COMMIT unknown transaction", connect: true, send: []string{frame("COMMIT", []string{"transaction:t-none", "receipt:r-c"}, "")},
			receipt: "r-c", want: "transaction"},
		{name: "ABORT unknown transaction", connect: true, send: []string{frame("ABORT", []string{"transaction:t-none", "receipt:r-ab"}, "")},
			receipt: "r-ab", want: "transaction"},
		{name: "BEGIN twice", connect: true,
			send:   []string{frame("BEGIN", []string{"transaction:t-1", "receipt:r-b1"}, ""), frame("BEGIN", []string{"transaction:t-1", "receipt:r-b2"}, "")},
			before: []string{"RECEIPT\nreceipt-id:r-b1\n"}, receipt: "r-b2", want: "transaction"},
		{name: "BEGIN without transaction", connect: true, send: []string{frame("BEGIN", []string{"receipt:r-bt"}, "")}, receipt: "r-bt", want: "transaction"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, ts.wsURL(), keyA)
			if tc.connect {
				r.connect()
			}
			for i, m := range tc.send {
				if err := r.sendAllowingClose(m); err != nil {
					t.Logf("message %d of %d not written: %v", i+1, len(tc.send), err)
					break
				}
			}
			for _, prefix := range tc.before {
				r.expect(prefix)
			}
			msg, err := r.next(patience)
			if err != nil {
				t.Fatalf("no ERROR frame: %v", err)
			}
			if !strings.HasPrefix(msg, "ERROR\n") {
				t.Fatalf("got %q, want an ERROR frame", msg)
			}
			message := frameHeader(msg, "message")
			if message == "" {
				t.Errorf("ERROR without a message header: %q", msg)
			}
			if text := strings.ToLower(message + "\n" + frameBody(msg)); !strings.Contains(text, tc.want) {
				t.Errorf("ERROR %q does not mention %q", msg, tc.want)
			}
			if got := frameHeader(msg, "receipt-id"); got != tc.receipt {
				t.Errorf("ERROR receipt-id %q, want %q: %q", got, tc.receipt, msg)
			}
			for k, v := range tc.headers {
				if got := frameHeader(msg, k); got != v {
					t.Errorf("ERROR header %s=%q, want %q", k, got, v)
				}
			}
			if err := r.expectClosed(); websocket.CloseStatus(err) == -1 {
				t.Errorf("connection ended without a WebSocket close frame: %v", err)
			}
		})
	}

	// The healthy connection still has its subscription and gets new events;
	// a new connection is served; the closed ones are gone from the gauges.
	fresh := dialRaw(t, ts.wsURL(), keyA)
	fresh.connect()
	fresh.send("SUBSCRIBE\nid:fresh\ndestination:" + dest + "\nreceipt:ok\n\n\x00")
	fresh.expect("RECEIPT\nreceipt-id:ok\n")
	waitFor(t, patience, "only the two good connections left", func() bool {
		h := ts.health()
		return h["connections"] == float64(2) && h["subscriptions"] == float64(2)
	})
	id := ts.publish(keyA, alert("after-bad-frames", camA))[0]
	for name, c := range map[string]*rawConn{"healthy": healthy, "fresh": fresh} {
		msg := c.expect("MESSAGE\n")
		if frameHeader(msg, "message-id") != id || frameHeader(msg, "subscription") != name {
			t.Errorf("%s connection got %q, want event %s", name, msg, id)
		}
	}
}

// TestWebSocketHandshake checks authentication before the upgrade (HTTP
// 401/403, never an upgrade) and the choice of STOMP sub-protocol.
func TestWebSocketHandshake(t *testing.T) {
	ts := startServer(t, testConfig(t.TempDir()))
	base := strings.Replace(ts.base, "http", "ws", 1) + "/websocket"

	t.Run("auth", func(t *testing.T) {
		cases := []struct {
			name   string
			url    string
			key    string // x-auth-apikey header; none when empty
			status int    // 0: the upgrade must succeed
		}{
			{name: "no key", url: ts.wsURL(), status: http.StatusUnauthorized},
			{name: "unknown key", url: ts.wsURL(), key: "not-a-key", status: http.StatusUnauthorized},
			{name: "key of the wrong case", url: ts.wsURL(), key: strings.ToUpper(keyA), status: http.StatusUnauthorized},
			{name: "publish-only key", url: ts.wsURL(), key: keyAPub, status: http.StatusForbidden},
			{name: "unknown auth scheme", url: base + "?x-auth-scheme=foo", key: keyA, status: http.StatusUnauthorized},
			{name: "partner scheme", url: base + "?x-auth-scheme=partner-api-token", key: keyA, status: http.StatusUnauthorized},
			{name: "subscribe-only key", url: ts.wsURL(), key: keyASub},
			{name: "no auth scheme", url: base, key: keyA},
			{name: "key in the query", url: ts.wsURL() + "&x-auth-apikey=" + keyA},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), patience)
				defer cancel()
				header := http.Header{}
				if tc.key != "" {
					header.Set("x-auth-apikey", tc.key)
				}
				c, resp, err := websocket.Dial(ctx, tc.url, &websocket.DialOptions{HTTPHeader: header, Subprotocols: []string{"v12.stomp"}})
				if tc.status == 0 {
					if err != nil {
						t.Fatalf("dial: %v", err)
					}
					defer c.CloseNow()
					r := &rawConn{t: t, c: c}
					r.connect()
					return
				}
				if err == nil {
					c.CloseNow()
					t.Fatalf("upgraded; want HTTP %d", tc.status)
				}
				if resp == nil || resp.StatusCode != tc.status {
					t.Fatalf("dial: %v (response %v); want HTTP %d", err, resp, tc.status)
				}
				body, _ := io.ReadAll(resp.Body)
				var answer map[string]any
				if json.Unmarshal(body, &answer) != nil || answer["error"] == nil || answer["error"] == false {
					t.Errorf("HTTP %d body %q, want a JSON error", resp.StatusCode, body)
				}
			})
		}
	})

	// A plain GET with the upgrade headers gets the same HTTP answer, and
	// no 101, when authentication fails.
	t.Run("plain upgrade request without key", func(t *testing.T) {
		req, _ := http.NewRequest("GET", ts.base+"/websocket?x-auth-scheme=api-token", nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		req.Header.Set("Sec-WebSocket-Protocol", "v12.stomp")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Upgrade") != "" {
			t.Fatalf("HTTP %d, Upgrade %q; want 401 and no upgrade", resp.StatusCode, resp.Header.Get("Upgrade"))
		}
	})

	t.Run("sub-protocol", func(t *testing.T) {
		cases := []struct {
			offer []string
			want  string
		}{
			{offer: []string{"v10.stomp", "v12.stomp"}, want: "v12.stomp"},
			{offer: []string{"v12.stomp", "v11.stomp", "v10.stomp"}, want: "v12.stomp"}, // stompjs
			{offer: []string{"v10.stomp", "v11.stomp"}, want: "v11.stomp"},
			{offer: []string{"v10.stomp"}, want: "v10.stomp"},
			{offer: []string{"mqtt", "v12.stomp"}, want: "v12.stomp"},
			{offer: []string{"mqtt"}, want: ""},
			{offer: nil, want: ""},
		}
		for _, tc := range cases {
			t.Run(fmt.Sprintf("offer %q", tc.offer), func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), patience)
				defer cancel()
				c, _, err := websocket.Dial(ctx, ts.wsURL(), &websocket.DialOptions{
					HTTPHeader:   http.Header{"x-auth-apikey": {keyA}},
					Subprotocols: tc.offer,
				})
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				defer c.CloseNow()
				if got := c.Subprotocol(); got != tc.want {
					t.Fatalf("sub-protocol %q, want %q", got, tc.want)
				}
				// The session works whatever was selected, as for the vendor's
				// clients, which offer none.
				r := &rawConn{t: t, c: c}
				r.connect()
			})
		}
	})
}
