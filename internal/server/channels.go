package server

import (
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/api"
	"github.com/herald-gw/herald/internal/dialect/channels"
)

// ChannelsLimits bound the channels dialect (Valtronics). The defaults
// are the vendor document's numbers except for the two that would cap a
// gateway built for tens of thousands of devices: max_connections (none)
// and connects_per_minute (60). examples/valtronics.yaml sets the doc's.
type ChannelsLimits struct {
	MaxMessageBytes    int           `koanf:"max_message_bytes"`    // inbound message; default 1024
	MessagesPerSecond  int           `koanf:"messages_per_second"`  // inbound, per connection; default 100
	ConnectionsPerUser int           `koanf:"connections_per_user"` // open at once; default 100
	MaxConnections     int           `koanf:"max_connections"`      // channels connections of the node; default 0 = no limit but the open-file limit
	ConnectsPerMinute  int           `koanf:"connects_per_minute"`  // new connections per user and minute; default 60
	AuthTimeout        time.Duration `koanf:"auth_timeout"`         // for the auth message; default 10s
}

func (l *ChannelsLimits) applyDefaults() {
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = 1024
	}
	if l.MessagesPerSecond <= 0 {
		l.MessagesPerSecond = 100
	}
	if l.ConnectionsPerUser <= 0 {
		l.ConnectionsPerUser = 100
	}
	if l.ConnectsPerMinute <= 0 {
		l.ConnectsPerMinute = 60
	}
	if l.AuthTimeout <= 0 {
		l.AuthTimeout = 10 * time.Second
	}
}

// channelsConfig builds the dialect's shared config.
func (s *Server) channelsConfig(tokens channels.TokenVerifier) *channels.Config {
	l := s.cfg.Limits.Channels
	cfg := channels.Config{
		Node:              s.node,
		Tokens:            tokens,
		Devices:           s.devices,
		Status:            s.systemStatus,
		Admit:             s.users.admit,
		AuthTimeout:       l.AuthTimeout,
		MessagesPerSecond: l.MessagesPerSecond,
		MaxMessageBytes:   l.MaxMessageBytes,
	}.WithDefaults()
	return &cfg
}

// serveChannels is GET /ws and /ws/{channel}: the upgrade, then a channels
// session that authenticates in-band.
func (s *Server) serveChannels(w http.ResponseWriter, r *http.Request) {
	channel := strings.ToLower(strings.Trim(strings.TrimPrefix(r.URL.Path, "/ws"), "/"))
	switch channel {
	case "", herald.ChannelTelemetry, herald.ChannelAlerts, herald.ChannelDevices, herald.ChannelSystem:
	default:
		api.WriteError(w, s.logger, herald.Errorf(herald.ENOTFOUND,
			"no channel %q: use /ws, /ws/telemetry, /ws/alerts, /ws/devices or /ws/system", channel))
		return
	}
	// The slot is taken before the upgrade: checking the count first and
	// raising it after would let a burst of connections through together.
	max := s.cfg.Limits.Channels.MaxConnections
	if n := s.channelConns.Add(1); max > 0 && n > int64(max) {
		s.channelConns.Add(-1)
		api.WriteError(w, s.logger, herald.Errorf(herald.EUNAVAILABLE,
			"this node holds its maximum of %d channels connections (limits.channels.max_connections)", max))
		return
	}
	opts := s.connOptions()
	// The connection reads auth messages larger than max_message_bytes;
	// the dialect applies max_message_bytes to the others.
	opts.MaxMessageBytes = s.channels.ReadLimit()
	conn, ended, ok := s.upgrade(w, r, "channels", nil, opts)
	if !ok {
		s.channelConns.Add(-1)
		return
	}
	channels.Serve(conn, s.channels, channel, func() {
		ended()
		s.channelConns.Add(-1)
	})
}

// userLimits counts each user's channels connections, open and recent.
type userLimits struct {
	perUser    int
	perMinute  int
	mu         sync.Mutex
	open       map[string]int         // guarded by mu
	recent     map[string][]time.Time // guarded by mu: connection times within the last minute
	lastPruned time.Time              // guarded by mu
}

func newUserLimits(l ChannelsLimits) *userLimits {
	return &userLimits{perUser: l.ConnectionsPerUser, perMinute: l.ConnectsPerMinute,
		open: make(map[string]int), recent: make(map[string][]time.Time)}
}

// admit implements channels.Config.Admit.
func (u *userLimits) admit(p herald.Principal) (func(), string, string) {
	key := p.Org + "\x00" + p.User
	now := time.Now()
	u.mu.Lock()
	defer u.mu.Unlock()
	if now.Sub(u.lastPruned) > time.Minute {
		for k, times := range u.recent {
			if now.Sub(times[len(times)-1]) > time.Minute {
				delete(u.recent, k)
			}
		}
		u.lastPruned = now
	}
	times := u.recent[key]
	for len(times) > 0 && now.Sub(times[0]) > time.Minute {
		times = times[1:]
	}
	if len(times) >= u.perMinute {
		u.recent[key] = times
		return nil, "rate_limited", "User " + p.User + " opened " + strconv.Itoa(u.perMinute) +
			" connections in the last minute (limits.channels.connects_per_minute); try again later."
	}
	if u.open[key] >= u.perUser {
		return nil, "too_many_connections", "User " + p.User + " already has " + strconv.Itoa(u.perUser) +
			" connections open (limits.channels.connections_per_user)."
	}
	u.recent[key] = append(times, now)
	u.open[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			u.mu.Lock()
			defer u.mu.Unlock()
			if u.open[key]--; u.open[key] <= 0 {
				delete(u.open, key)
			}
		})
	}, "", ""
}

// systemStatus is herald's own status for the system channel, as p may
// see it. An admin sees the node's: CPU use of this process since the
// previous reading (percent of one core), memory (resident, percent of
// the machine's), the data directory's disk use, and every open
// connection. Anyone else sees their org's connections on this node and
// no usage: the node's load is every tenant's traffic, a side channel
// into the others' business.
func (s *Server) systemStatus(p herald.Principal) channels.SystemStatus {
	now := time.Now()
	if !p.Can(herald.ScopeAdmin) {
		return channels.SystemStatus{ActiveConnections: s.gauges.Org(p.Org).Connections, At: now}
	}
	st := channels.SystemStatus{NodeWide: true, ActiveConnections: s.gauges.Connections.Load(), At: now}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		s.statusMu.Lock()
		if !s.statusAt.IsZero() {
			if wall := now.Sub(s.statusAt); wall > 0 {
				st.CPUUsage = round1(100 * float64(cpu-s.statusCPU) / float64(wall))
			}
		}
		s.statusAt, s.statusCPU = now, cpu
		s.statusMu.Unlock()
	}
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) == nil && si.Totalram > 0 {
		if rss := residentBytes(); rss > 0 {
			st.MemoryUsage = round1(100 * float64(rss) / float64(uint64(si.Totalram)*uint64(si.Unit)))
		}
	}
	var fs syscall.Statfs_t
	if syscall.Statfs(s.cfg.DataDir, &fs) == nil && fs.Blocks > 0 {
		st.DiskUsage = round1(100 * float64(fs.Blocks-fs.Bfree) / float64(fs.Blocks))
	}
	return st
}

// residentBytes reads this process's resident set from /proc.
func residentBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(b))
	if len(fields) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(fields[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }
