package e2e

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-gw/herald/internal/engine"
	"github.com/herald-gw/herald/internal/ingest"
)

// HERALD_BENCH_REPLAY_DIR, if set, is a data directory that
// BenchmarkReplaySTOMP keeps between runs: it fills it only if the log
// there is not already n events long, which saves minutes per profile.

// replayEvents is how many events BenchmarkReplaySTOMP stores and
// replays: HERALD_BENCH_REPLAY_EVENTS, default 100k so that a plain
// `go test -bench .` stays short. The documented number uses 1M.
func replayEvents(b *testing.B) int {
	s := os.Getenv("HERALD_BENCH_REPLAY_EVENTS")
	if s == "" {
		return 100_000
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("HERALD_BENCH_REPLAY_EVENTS=%q: want a positive number", s)
	}
	return n
}

// BenchmarkReplaySTOMP measures a resume from the start of a long log: the
// log holds n canonical events (~200 bytes) of one org, and each op is a
// new STOMP client over WebSocket that subscribes with x-herald-after:0
// and reads until it has all n. events/s is the median of the ops' rates
// as seen by the client. The client parses only WebSocket frame headers
// and each message's id (checking order), and allocates nothing per
// message, so the time is the server's.
func BenchmarkReplaySTOMP(b *testing.B) {
	n := replayEvents(b)
	dir := os.Getenv("HERALD_BENCH_REPLAY_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	cfg := testConfig(dir)
	fillReplayLog(b, cfg.DataDir, n)
	ts := startServer(b, cfg)

	var rates []float64
	cpu := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		last := replayAll(b, ts, n)
		rates = append(rates, float64(n)/time.Since(start).Seconds())
		if last != uint64(n) {
			b.Fatalf("last message-id %d, want %d", last, n)
		}
	}
	b.ReportMetric(median(rates), "events/s")
	b.ReportMetric(float64(n*b.N)/(cpuTime()-cpu).Seconds(), "events/cpu-s")
}

// fillReplayLog appends n events of orgA through the engine itself,
// normalized as ingest does, and waits until the state view has copied
// them, so that the server started on dataDir afterwards does nothing but
// the replay.
func fillReplayLog(b *testing.B, dataDir string, n int) {
	b.Helper()
	ctx := b.Context()
	eng, err := engine.Open(ctx, engine.Config{DataDir: dataDir})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	last, err := eng.LastID(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if last == uint64(n) {
		return // a kept HERALD_BENCH_REPLAY_DIR
	}
	if last != 0 {
		b.Fatalf("%s holds %d events, want 0 or %d", dataDir, last, n)
	}
	const batch = 1000
	events := make([]map[string]any, batch)
	now := time.Now().UnixMilli()
	for done := 0; done < n; {
		size := min(batch, n-done)
		for i := range size {
			events[i] = alert(fmt.Sprintf("replay-%d", done+i), camA)
		}
		body, _ := json.Marshal(events[:size])
		records, err := ingest.Parse(body, orgA, now, ingest.Limits{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := eng.Append(ctx, records); err != nil {
			b.Fatal(err)
		}
		done += size
	}
	waitFor(b, 5*time.Minute, "the state view to copy the log", func() bool {
		lag, err := eng.StateLag(ctx)
		return err == nil && lag == 0
	})
}

// replayAll connects, subscribes to orgA from the start and reads n
// MESSAGE frames; it returns the last message-id.
func replayAll(b *testing.B, ts *testServer, n int) uint64 {
	b.Helper()
	c := dialRawTCP(b, ts, keyA)
	defer c.Close()
	c.send("CONNECT\naccept-version:1.2\nheart-beat:0,0\n\n\x00")
	if got := c.frames(1); got != 1 {
		b.Fatalf("no CONNECTED: %d frames", got)
	}
	c.send("SUBSCRIBE\nid:s\ndestination:/topic/change/" + orgA + "\nx-herald-after:0\n\n\x00")
	if got := c.frames(n); got != n {
		b.Fatalf("read %d messages, want %d", got, n)
	}
	return c.lastID
}

// wsClient is a minimal WebSocket client over TCP: it reads server frames
// in large chunks and looks only at their headers, the STOMP frame ends
// and the message-id of each frame.
type wsClient struct {
	b      *testing.B
	conn   net.Conn
	r      *bufio.Reader
	buf    []byte
	lastID uint64

	// The frame being read.
	left   int      // payload bytes still to come
	head   [96]byte // the payload's first bytes, where message-id is
	headN  int
	header [14]byte // a frame header split between two reads
	hdrN   int
}

func dialRawTCP(b *testing.B, ts *testServer, key string) *wsClient {
	b.Helper()
	addr := strings.TrimPrefix(ts.base, "http://")
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /websocket?x-auth-scheme=api-token HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nx-auth-apikey: %s\r\n\r\n", addr, key)
	r := bufio.NewReaderSize(conn, 4096)
	status, err := r.ReadString('\n')
	if err != nil || !strings.Contains(status, " 101 ") {
		b.Fatalf("upgrade: %q %v", status, err)
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			b.Fatalf("upgrade: %v", err)
		}
		if line == "\r\n" {
			break
		}
	}
	return &wsClient{b: b, conn: conn, r: r, buf: make([]byte, 256<<10)}
}

func (c *wsClient) Close() error { return c.conn.Close() }

// send writes one masked text frame (a zero mask: the payload goes as is).
func (c *wsClient) send(payload string) {
	c.b.Helper()
	frame := []byte{0x81}
	if len(payload) < 126 {
		frame = append(frame, 0x80|byte(len(payload)))
	} else {
		frame = append(frame, 0x80|126)
		frame = binary.BigEndian.AppendUint16(frame, uint16(len(payload)))
	}
	frame = append(frame, 0, 0, 0, 0)
	frame = append(frame, payload...)
	if _, err := c.conn.Write(frame); err != nil {
		c.b.Fatal(err)
	}
}

// frames reads until want STOMP frames (NUL-terminated payloads) have
// ended, or the connection fails, and returns how many ended.
func (c *wsClient) frames(want int) int {
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Minute))
	got := 0
	for got < want {
		m, err := c.r.Read(c.buf)
		if err != nil {
			if err != io.EOF {
				c.b.Logf("read: %v", err)
			}
			return got
		}
		data := c.buf[:m]
		for len(data) > 0 {
			if c.left == 0 {
				var ok bool
				if data, ok = c.readHeader(data); !ok {
					break
				}
				continue
			}
			k := min(c.left, len(data))
			payload := data[:k]
			if c.headN < len(c.head) {
				c.headN += copy(c.head[c.headN:], payload)
			}
			c.left -= k
			data = data[k:]
			if c.left == 0 && payload[len(payload)-1] == 0 {
				got++
				c.checkID()
			}
		}
	}
	return got
}

// readHeader consumes a frame header from data, possibly completing one
// split across reads; ok is false if data ended inside the header.
func (c *wsClient) readHeader(data []byte) (rest []byte, ok bool) {
	need := 2
	for {
		for c.hdrN < need && len(data) > 0 {
			c.header[c.hdrN] = data[0]
			c.hdrN++
			data = data[1:]
		}
		if c.hdrN < need {
			return data, false
		}
		switch size := c.header[1] & 0x7f; {
		case size == 126 && need == 2:
			need = 4
			continue
		case size == 127 && need == 2:
			need = 10
			continue
		case size == 126:
			c.left = int(binary.BigEndian.Uint16(c.header[2:4]))
		case size == 127:
			c.left = int(binary.BigEndian.Uint64(c.header[2:10]))
		default:
			c.left = int(size)
		}
		c.hdrN, c.headN = 0, 0
		return data, true
	}
}

// checkID reads the message-id of the frame just ended and checks that
// ids increase.
func (c *wsClient) checkID() {
	head := c.head[:c.headN]
	if !bytes.HasPrefix(head, []byte("MESSAGE\n")) {
		return
	}
	i := bytes.Index(head, []byte("\nmessage-id:"))
	if i < 0 {
		c.b.Fatalf("no message-id in %q", head)
	}
	var id uint64
	for _, ch := range head[i+len("\nmessage-id:"):] {
		if ch < '0' || ch > '9' {
			break
		}
		id = id*10 + uint64(ch-'0')
	}
	if id <= c.lastID {
		c.b.Fatalf("message-id %d after %d", id, c.lastID)
	}
	c.lastID = id
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// cpuTime is the CPU the process (server and client) has used.
func cpuTime() time.Duration {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}
