package bench

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/herald-gw/herald/internal/server"
	"github.com/herald-gw/herald/internal/server/servertest"
)

const (
	testOrg = "5f0c6b2e-4d2a-4c1e-9b7a-2a9d8e4f1c30"
	testKey = "bench-key-1"
)

// dialects are the bench's dialects, each tested against herald and the
// baseline.
var dialects = []string{"stomp", "channels", "ess", "streams"}

// startBaseline serves a baseline of a dialect on a random loopback port.
func startBaseline(t *testing.T, dialect string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBaseline(testOrg, testKey, dialect)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Serve(ln) }()
	t.Cleanup(func() {
		b.Close()
		if err := <-done; err != nil {
			t.Errorf("baseline: %v", err)
		}
	})
	return ln.Addr().String()
}

// startHerald runs a real herald server in-process with one org and key,
// and a JWT secret for the channels dialect's tokens, whose per-user
// connection limits are raised: every bench connection is the same user.
func startHerald(t *testing.T) string {
	t.Helper()
	return servertest.Start(t, server.Config{
		Listen:  "127.0.0.1:0",
		DataDir: t.TempDir(),
		Auth:    server.AuthConfig{JWTSecret: "bench-test-secret-0123456789abcdef0123"},
		Limits: server.LimitsConfig{Channels: server.ChannelsLimits{
			ConnectionsPerUser: 1000, ConnectsPerMinute: 1000}},
		Orgs: []server.OrgConfig{{UUID: testOrg, Name: "acme",
			APIKeys: []server.APIKeyConfig{{Key: testKey, Scopes: []string{"subscribe", "publish"}}}}},
	}).Addr()
}

// smallRun is a short run of 50 connections of a dialect at its default
// path; the org is learned with getOrgV2 and the server's own process
// measured.
func smallRun(addr, label, dialect string) Config {
	return Config{
		URL:       "ws://" + addr,
		Dialect:   dialect,
		Key:       testKey,
		Conns:     50,
		Rate:      500,
		Batch:     5,
		Size:      400,
		Warmup:    200 * time.Millisecond,
		Duration:  time.Second,
		Settle:    10 * time.Millisecond,
		Label:     label,
		ServerPID: os.Getpid(),
	}
}

func checkRun(t *testing.T, res *Result) {
	t.Helper()
	if testing.Verbose() {
		var b strings.Builder
		WriteTable(&b, res)
		t.Log("\n" + b.String())
	}
	if !res.OK() || res.Received != res.Expected || res.Extra != 0 || res.PublishErrors != 0 {
		var b strings.Builder
		WriteTable(&b, res)
		t.Fatalf("run not clean:\n%s", b.String())
	}
	if res.Org != testOrg {
		t.Errorf("org = %q", res.Org)
	}
	// 500/s for 1.2s: about 600 events on an idle machine. The pacing
	// never runs ahead of the rate, so more is a bug; fewer is what a
	// loaded machine, where the in-process server answers slowly, gives.
	// That the publishing went on for the whole 1.2s is checked instead.
	if res.Published == 0 || res.Published > 700 {
		t.Errorf("published %d events, want some and at most about 600", res.Published)
	}
	if res.PublishSeconds < 1.2 {
		t.Errorf("published for %.2fs, want the 1.2s of warm-up and measurement", res.PublishSeconds)
	}
	if res.Deliveries == 0 || res.Deliveries > res.Received || res.DeliveriesPerSec <= 0 {
		t.Errorf("deliveries %d of %d received, %.0f/s", res.Deliveries, res.Received, res.DeliveriesPerSec)
	}
	if res.Latency.P50 <= 0 || res.Latency.P50 > res.Latency.P99 || res.Latency.P99 > res.Latency.Max {
		t.Errorf("latency %+v", res.Latency)
	}
	switch res.Dialect {
	case "stomp":
		if diff := res.BodyBytes - float64(res.BodyBytesTarget); diff < -8 || diff > 8 {
			t.Errorf("bodies of %.1f bytes, padded for %d", res.BodyBytes, res.BodyBytesTarget)
		}
		if res.FrameBytes < res.BodyBytes+100 {
			t.Errorf("frames of %.1f bytes for bodies of %.1f", res.FrameBytes, res.BodyBytes)
		}
	default:
		// The JSON dialects' messages hold the event, padded like STOMP's
		// body, in their own envelope.
		if res.FrameBytes < float64(res.BodyBytesTarget)-150 || res.FrameBytes > float64(res.BodyBytesTarget)+400 {
			t.Errorf("messages of %.1f bytes for events padded to a %d-byte STOMP body", res.FrameBytes, res.BodyBytesTarget)
		}
	}
	if res.Server == nil || res.Server.RSSAfterBytes <= 0 || res.Server.CPUSeconds < 0 {
		t.Errorf("server stats %+v", res.Server)
	}
}

func TestRunAgainstBaseline(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			res, err := Run(context.Background(), smallRun(startBaseline(t, dialect), "baseline", dialect))
			if err != nil {
				t.Fatal(err)
			}
			checkRun(t, res)
		})
	}
}

func TestRunAgainstHerald(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a herald server")
	}
	addr := startHerald(t) // one server: each run has its own marker
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			res, err := Run(context.Background(), smallRun(addr, "herald", dialect))
			if err != nil {
				t.Fatal(err)
			}
			checkRun(t, res)
			if res.Foreign != 0 && dialect != "channels" {
				t.Logf("%d events of earlier runs", res.Foreign)
			}
		})
	}
}

// TestRunWithSlowConnections: two of 50 connections read at 2 KB/s; the
// run ends without waiting for them, they are reported apart, and the
// other 48 received everything.
func TestRunWithSlowConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a herald server")
	}
	cfg := smallRun(startHerald(t), "herald", "stomp")
	cfg.SlowConns, cfg.SlowRate = 2, 2000
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkRun(t, res)
	if res.Slow == nil || res.Slow.Conns != 2 || res.Slow.Received == 0 || res.Slow.Behind == 0 {
		t.Fatalf("slow stats %+v: want 2 connections that received some events and are behind", res.Slow)
	}
	if res.Expected != res.Published*48 {
		t.Errorf("expected %d deliveries, want %d × 48", res.Expected, res.Published)
	}
	// 2 KB/s for about 4 s of run, frames of ~550 bytes: roughly 15 each.
	if per := res.Slow.Received / 2; per > res.Published/2 {
		t.Errorf("slow connections received %d events each of %d: not throttled", per, res.Published)
	}
}

func TestParseShareAndBytes(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want int
	}{{"", 100, 0}, {"3", 100, 3}, {"1%", 10000, 100}, {"1%", 50, 1}, {"0%", 50, 0}, {"50%", 10, 5}} {
		if got, err := ParseShare(tt.in, tt.n); err != nil || got != tt.want {
			t.Errorf("ParseShare(%q, %d) = %d, %v; want %d", tt.in, tt.n, got, err, tt.want)
		}
	}
	for _, bad := range []string{"x", "-1", "101%", "1.5"} {
		if _, err := ParseShare(bad, 100); err == nil {
			t.Errorf("ParseShare(%q) accepted", bad)
		}
	}
	for in, want := range map[string]int{"10KB": 10000, "10kb/s": 10000, "1.5MB": 1500000, "512": 512, "512B": 512, "2k": 2000} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "KB", "-5KB", "x", "1GB"} {
		if _, err := ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q) accepted", bad)
		}
	}
}

// TestRunRefusedKey: a key the server refuses fails the run at the
// dialect's first step, saying which.
func TestRunRefusedKey(t *testing.T) {
	want := map[string]string{
		"stomp":    "WebSocket handshake",
		"channels": "a token for the channels dialect",
		"ess":      "WebSocket handshake",
		"streams":  "/session",
	}
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			cfg := smallRun(startBaseline(t, dialect), "baseline", dialect)
			cfg.Org, cfg.Key, cfg.Conns = testOrg, "wrong-key", 3
			_, err := Run(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), want[dialect]) {
				t.Fatalf("err = %v, want one naming %q", err, want[dialect])
			}
		})
	}
}

// TestRunChannelsUserLimit: herald's per-user channels limits (60 new
// connections a minute, 100 at once by default) refuse a bench of 101
// connections, all one user, and the run says which limit.
func TestRunChannelsUserLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a herald server")
	}
	addr := servertest.Start(t, server.Config{
		Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Auth: server.AuthConfig{JWTSecret: "bench-test-secret-0123456789abcdef0123"},
		Orgs: []server.OrgConfig{{UUID: testOrg, Name: "acme",
			APIKeys: []server.APIKeyConfig{{Key: testKey, Scopes: []string{"subscribe", "publish"}}}}},
	}).Addr()
	cfg := smallRun(addr, "herald", "channels")
	cfg.Conns = 101
	_, err := Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "auth_response") || !strings.Contains(err.Error(), "limits.channels.") {
		t.Fatalf("err = %v, want the auth_response naming the limit", err)
	}
}
