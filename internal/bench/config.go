package bench

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Hard bounds of a run, whatever the flags say.
const (
	maxConns     = 200_000
	maxDuration  = time.Hour
	maxWarmup    = 10 * time.Minute
	maxEventsCap = 100_000_000
	maxSize      = 60_000 // under herald's 64 KiB STOMP body limit
	maxBatch     = 1000   // herald's limits.max_batch default
	maxRate      = 10_000_000
	maxWorkers   = 64
)

// Config is one bench run. Zero fields take the defaults noted, applied in
// withDefaults.
type Config struct {
	// URL is the WebSocket URL of the dialect's endpoint (required); with
	// no path, the dialect's: /websocket?x-auth-scheme=api-token (stomp),
	// /ws (channels), /api/ws/events/v1 (ess); streams takes only its host
	// (its path is /session/{id}/ws).
	URL        string
	HTTP       string  // ingest base URL; default: URL's scheme made http(s), same host
	Dialect    string  // stomp (default), channels, ess or streams
	Key        string  // API key to subscribe with (and publish, unless PublishKey)
	PublishKey string  // API key to publish with; default Key
	Org        string  // org uuid; default: asked with POST /api/org/getOrgV2
	Conns      int     // connections; default 1000
	Rate       float64 // events per second; 0 = as fast as the server acknowledges
	Batch      int     // events per ingest request; default: 1 up to 500/s, then rate/500, 100 for max
	Publishers int     // concurrent ingest requests; default 4
	Size       int     // MESSAGE frame bytes, roughly; default 200
	// Duration is the measured publishing time (default 20s); Warmup is
	// publishing before it (default 2s), delivered and checked but left out
	// of the latency and rate figures.
	Duration time.Duration
	Warmup   time.Duration
	// MaxEvents caps the events published, warm-up included (default 2,000,000).
	MaxEvents int64
	// ServerPID is the server's process id, for RSS and CPU from /proc;
	// 0: not measured.
	ServerPID       int
	Settle          time.Duration // idle time before the after-connect RSS; default 1s
	DialConcurrency int           // connections being set up at once; default 64
	ConnectTimeout  time.Duration // per connection: dial, upgrade, RECEIPT; default 10s
	// DrainTimeout ends the wait for deliveries after publishing when no
	// delivery arrived for this long (default 10s).
	DrainTimeout time.Duration
	// SlowConns of the connections read at most SlowRate bytes per second
	// each, with a small socket receive buffer, to show that slow clients
	// do not hold the others back. Their latency and counts are reported
	// apart (Result.Slow); the drain does not wait for them.
	SlowConns int
	SlowRate  int       // bytes per second per slow connection; default 10 KB/s
	Label     string    // names the run in reports; default "herald"
	Progress  io.Writer // a terminal for the progress line; nil for none
}

// withDefaults applies the defaults and checks the bounds.
func (c Config) withDefaults() (Config, error) {
	if c.URL == "" {
		return c, errors.New("a WebSocket URL is required (--url)")
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return c, fmt.Errorf("--url %q: want ws://host:port/path", c.URL)
	}
	if c.HTTP == "" {
		scheme := "http"
		if u.Scheme == "wss" {
			scheme = "https"
		}
		c.HTTP = scheme + "://" + u.Host
	}
	if c.Dialect == "" {
		c.Dialect = "stomp"
	}
	w, err := wireOf(c.Dialect)
	if err != nil {
		return c, err
	}
	if u.Path == "" || u.Path == "/" {
		u.Path, u.RawQuery = "", ""
		c.URL = u.String() + w.defaultPath()
	}
	if h, err := url.Parse(c.HTTP); err != nil || (h.Scheme != "http" && h.Scheme != "https") || h.Host == "" {
		return c, fmt.Errorf("--http %q: want http://host:port", c.HTTP)
	}
	if c.Key == "" {
		return c, errors.New("an API key is required (--key)")
	}
	if c.PublishKey == "" {
		c.PublishKey = c.Key
	}
	c.Conns = cmpOr(c.Conns, 1000)
	c.Size = cmpOr(c.Size, 200)
	c.Publishers = cmpOr(c.Publishers, 4)
	c.Duration = cmpOr(c.Duration, 20*time.Second)
	c.MaxEvents = cmpOr(c.MaxEvents, 2_000_000)
	c.Settle = cmpOr(c.Settle, time.Second)
	c.DialConcurrency = cmpOr(c.DialConcurrency, 64)
	c.ConnectTimeout = cmpOr(c.ConnectTimeout, 10*time.Second)
	c.DrainTimeout = cmpOr(c.DrainTimeout, 10*time.Second)
	c.Label = cmpOr(c.Label, "herald")
	c.SlowRate = cmpOr(c.SlowRate, 10_000)
	if c.Batch == 0 {
		switch {
		case c.Rate == 0:
			c.Batch = 100
		default:
			c.Batch = int(math.Max(1, math.Min(maxBatch, math.Ceil(c.Rate/500))))
		}
	}
	switch {
	case c.Conns < 1 || c.Conns > maxConns:
		return c, fmt.Errorf("--conns %d: want 1 to %d", c.Conns, maxConns)
	case c.Rate < 0 || c.Rate > maxRate || math.IsNaN(c.Rate):
		return c, fmt.Errorf("--rate %v: want up to %d/s or max", c.Rate, maxRate)
	case c.Batch < 1 || c.Batch > maxBatch:
		return c, fmt.Errorf("--batch %d: want 1 to %d", c.Batch, maxBatch)
	case c.Publishers < 1 || c.Publishers > maxWorkers:
		return c, fmt.Errorf("--publishers %d: want 1 to %d", c.Publishers, maxWorkers)
	case c.Size < 1 || c.Size > maxSize:
		return c, fmt.Errorf("--size %d: want 1 to %d", c.Size, maxSize)
	case c.Duration < 0 || c.Duration > maxDuration:
		return c, fmt.Errorf("--duration %v: want at most %v", c.Duration, maxDuration)
	case c.Warmup < 0 || c.Warmup > maxWarmup:
		return c, fmt.Errorf("--warmup %v: want at most %v", c.Warmup, maxWarmup)
	case c.MaxEvents < 1 || c.MaxEvents > maxEventsCap:
		return c, fmt.Errorf("--max-events %d: want 1 to %d", c.MaxEvents, maxEventsCap)
	case c.SlowConns < 0 || c.SlowConns >= c.Conns:
		return c, fmt.Errorf("--slow %d: want fewer than --conns (%d)", c.SlowConns, c.Conns)
	case c.SlowRate < 100:
		return c, fmt.Errorf("--slow-rate %d: want at least 100 bytes/s", c.SlowRate)
	case c.ServerPID < 0:
		return c, fmt.Errorf("--server-pid %d: want a process id", c.ServerPID)
	}
	return c, nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// ParseRate reads a --rate value: "max", "200", "200/s", "10k/s", "1.5m/s".
// It returns 0 for max.
func ParseRate(s string) (float64, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "max" {
		return 0, nil
	}
	s = strings.TrimSuffix(s, "/s")
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1e3, s[:len(s)-1]
	case strings.HasSuffix(s, "m"):
		mult, s = 1e6, s[:len(s)-1]
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("rate %q: want events per second such as 200/s, 10k/s, or max", s)
	}
	return v * mult, nil
}

// ParseShare reads a --slow value: a count ("100") or a share of n
// ("1%", at least one connection when the share is not zero). Empty is 0.
func ParseShare(s string, n int) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if pct, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(pct, 64)
		if err != nil || v < 0 || v > 100 {
			return 0, fmt.Errorf("%q: want a count or a percentage such as 1%%", s)
		}
		k := int(math.Round(v / 100 * float64(n)))
		if k == 0 && v > 0 {
			k = 1
		}
		return k, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q: want a count or a percentage such as 1%%", s)
	}
	return v, nil
}

// ParseBytes reads a byte count: "10000", "10KB", "1.5MB" (decimal: KB =
// 1000 bytes, like the 10 KB/s), with an optional "/s".
func ParseBytes(s string) (int, error) {
	t := strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "/S")
	mult := 1.0
	for suffix, m := range map[string]float64{"KB": 1e3, "MB": 1e6, "K": 1e3, "M": 1e6, "B": 1} {
		if rest, ok := strings.CutSuffix(t, suffix); ok && len(rest) > 0 && (rest[len(rest)-1] >= '0' && rest[len(rest)-1] <= '9' || rest[len(rest)-1] == '.') {
			mult, t = m, rest
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 || v*mult > math.MaxInt32 || math.IsNaN(v) {
		return 0, fmt.Errorf("%q: want bytes such as 10KB or 1MB", s)
	}
	return int(v * mult), nil
}

// FormatRate is ParseRate's inverse for reports.
func FormatRate(r float64) string {
	if r == 0 {
		return "max"
	}
	return strconv.FormatFloat(r, 'f', -1, 64) + "/s"
}

// sourceAddresses returns the local addresses to spread n connections
// over, and how many go on each: none (the kernel chooses) up to
// spreadAbove connections or when the target is not IPv4 loopback, else
// 127.0.0.1, 127.0.0.2, … with perSourceIP each, since one source address
// has only ~28k ephemeral ports towards one server port.
func sourceAddresses(target string, n int) ([]net.IP, int, error) {
	const spreadAbove, perSourceIP = 25_000, 20_000
	if n <= spreadAbove {
		return nil, 0, nil
	}
	u, err := url.Parse(target)
	if err != nil {
		return nil, 0, err
	}
	host := u.Hostname()
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() || ip.To4() == nil {
		return nil, 0, fmt.Errorf("--conns %d: more than %d connections need several source addresses, "+
			"which the bench only spreads over 127.0.0.x towards an IPv4 loopback server (not %s)", n, spreadAbove, host)
	}
	count := (n + perSourceIP - 1) / perSourceIP
	ips := make([]net.IP, count)
	for i := range ips {
		ips[i] = net.IPv4(127, 0, 0, byte(1+i))
	}
	return ips, perSourceIP, nil
}
