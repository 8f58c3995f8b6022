// Package server is herald's composition root: it reads the config, opens
// the engine, applies declared orgs, and serves HTTP and WebSocket.
package server

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/auth"
	"github.com/herald-gw/herald/internal/engine"
)

// Config is herald serve's configuration. Each field's comment gives its
// default, applied in ApplyDefaults.
type Config struct {
	Listen  string   `koanf:"listen"`   // default 127.0.0.1:8080
	DataDir string   `koanf:"data_dir"` // default ./herald-data
	NATS    []string `koanf:"nats"`     // external NATS URLs; default none (embedded engine)
	// NATSAuth is how herald authenticates to the external cluster and
	// trusts its certificate.
	NATSAuth NATSAuthConfig `koanf:"nats_auth"`
	// Sync is the durability setting: "interval" (default; acknowledged
	// events survive kill -9 of herald) or "always" (fsync before every
	// acknowledgement; survives power loss too).
	Sync      string          `koanf:"sync"`
	Replicas  int             `koanf:"replicas"`  // stream replicas with external NATS; default 1
	Retention RetentionConfig `koanf:"retention"` // default: keep everything
	State     StateConfig     `koanf:"state"`     // default: the newest event of every subject forever
	Auth      AuthConfig      `koanf:"auth"`
	HTTP      HTTPConfig      `koanf:"http"`
	Limits    LimitsConfig    `koanf:"limits"`
	Sessions  SessionsConfig  `koanf:"sessions"`
	ESS       ESSConfig       `koanf:"ess"`
	Streams   StreamsConfig   `koanf:"streams"`
	Orgs      []OrgConfig     `koanf:"orgs"`
	Metrics   MetricsConfig   `koanf:"metrics"`
	TLS       TLSConfig       `koanf:"tls"`
	Readiness ReadinessConfig `koanf:"readiness"`
	LogLevel  string          `koanf:"log_level"` // debug | info (default) | warn | error
	// AcceptDataLoss lets the embedded engine start on a damaged log by
	// emptying it and continuing after the last acknowledged id (see
	// engine.Config.AcceptDataLoss). Only the --accept-data-loss flag sets
	// it: a one-off recovery, never a standing setting.
	AcceptDataLoss bool `koanf:"-"`
}

// RetentionConfig bounds the event log. The latest event per device and
// kind is kept beyond it.
type RetentionConfig struct {
	MaxAge   time.Duration `koanf:"max_age"`   // 0 = forever
	MaxBytes int64         `koanf:"max_bytes"` // 0 = unlimited
}

// StateConfig bounds the state view (the newest event per device and
// kind, kept beyond the log's retention; see engine.StateLimits). Past a
// limit the entries updated least recently are forgotten first; a query
// for one that the log no longer holds either answers "not found".
type StateConfig struct {
	MaxEntries int64         `koanf:"max_entries"` // 0 = unlimited
	MaxBytes   int64         `koanf:"max_bytes"`   // 0 = unlimited, else at least 1 MiB
	MaxAge     time.Duration `koanf:"max_age"`     // 0 = forever, else at least 1s
}

// validate names the first state limit the engine would refuse.
func (s StateConfig) validate() error {
	switch {
	case s.MaxEntries < 0:
		return fmt.Errorf("config: state.max_entries must not be negative, not %d (0 = unlimited)", s.MaxEntries)
	case s.MaxBytes < 0:
		return fmt.Errorf("config: state.max_bytes must not be negative, not %d (0 = unlimited)", s.MaxBytes)
	case s.MaxAge < 0:
		return fmt.Errorf("config: state.max_age must not be negative, not %v (0 = forever)", s.MaxAge)
	case s.MaxBytes > 0 && s.MaxBytes < engine.MinStateBytes:
		return fmt.Errorf("config: state.max_bytes must be at least %d (1 MiB, the largest event), not %d", engine.MinStateBytes, s.MaxBytes)
	case s.MaxAge > 0 && s.MaxAge < engine.MinStateAge:
		return fmt.Errorf("config: state.max_age must be at least %v, not %v", engine.MinStateAge, s.MaxAge)
	}
	return nil
}

// limits returns the engine's form of s.
func (s StateConfig) limits() engine.StateLimits {
	return engine.StateLimits{MaxEntries: s.MaxEntries, MaxBytes: s.MaxBytes, MaxAge: s.MaxAge}
}

// MetricsConfig places GET /metrics (Prometheus).
type MetricsConfig struct {
	// Listen, if set, serves /metrics alone on this address, with no
	// credential (bind it to a private interface). Unset (the default),
	// /metrics is on the main listener and needs an admin credential.
	Listen string `koanf:"listen"`
}

// NATSAuthConfig are the external cluster's connection options: at most
// one credential, and TLS files.
type NATSAuthConfig struct {
	User         string `koanf:"user"`
	Password     string `koanf:"password"`
	Token        string `koanf:"token"`
	NKeySeedFile string `koanf:"nkey_seed_file"`
	CredsFile    string `koanf:"creds_file"`
	CAFile       string `koanf:"ca_file"`
	CertFile     string `koanf:"cert_file"`
	KeyFile      string `koanf:"key_file"`
}

// TLSConfig turns the main listener into https and wss: every endpoint,
// every dialect. The files are read at start and again on SIGHUP
// (Server.ReloadTLS); connections made before keep their session.
type TLSConfig struct {
	CertFile string `koanf:"cert_file"` // PEM: the certificate, then the chain
	KeyFile  string `koanf:"key_file"`  // PEM: its private key
}

// ReadinessConfig is when GET /readyz answers 503 besides start and
// shutdown: the engine has not answered for a while, or the node's
// follower is far behind the log.
type ReadinessConfig struct {
	MaxLag      uint64        `koanf:"max_lag"`      // events the follower may be behind the log's head; default 10000
	EngineGrace time.Duration `koanf:"engine_grace"` // how long the engine may go unanswered; default 5s
	// DrainDelay is how long a node that is asked to stop keeps serving
	// with /readyz answering 503, so that a load balancer stops sending it
	// clients before it closes; default 0 (stop at once).
	DrainDelay time.Duration `koanf:"drain_delay"`
}

func (r *ReadinessConfig) applyDefaults() {
	if r.MaxLag == 0 {
		r.MaxLag = 10_000
	}
	if r.EngineGrace <= 0 {
		r.EngineGrace = 5 * time.Second
	}
}

// HTTPConfig bounds HTTP connections until they are upgraded: the API,
// /healthz and WebSocket handshakes. An upgraded WebSocket leaves these
// limits (its own are in LimitsConfig).
type HTTPConfig struct {
	ReadHeaderTimeout time.Duration `koanf:"read_header_timeout"` // for a request's headers; default 10s
	ReadTimeout       time.Duration `koanf:"read_timeout"`        // for a whole request, body included; default 30s
	IdleTimeout       time.Duration `koanf:"idle_timeout"`        // a keep-alive connection between requests; default 30s
	// MaxConnsPerIP caps one remote IP's (IPv6: one /64's) connections that are not
	// upgraded WebSockets (idle keep-alive ones included); one more is
	// closed at once. Default 256; -1 = no cap (behind a proxy every
	// client has the proxy's IP).
	MaxConnsPerIP int `koanf:"max_conns_per_ip"`
}

func (h *HTTPConfig) applyDefaults() {
	if h.ReadHeaderTimeout <= 0 {
		h.ReadHeaderTimeout = 10 * time.Second
	}
	if h.ReadTimeout <= 0 {
		h.ReadTimeout = 30 * time.Second
	}
	if h.IdleTimeout <= 0 {
		h.IdleTimeout = 30 * time.Second
	}
	if h.MaxConnsPerIP == 0 {
		h.MaxConnsPerIP = 256
	}
}

// SessionsConfig sets how long a resumable session (a dialect's session
// that outlives its connection) waits for its client to come back.
type SessionsConfig struct {
	DetachWindow time.Duration `koanf:"detach_window"` // default 30s
}

// AuthConfig holds authentication settings. The JWT settings are
// optional: with no key set, herald serve signs and checks tokens with a
// secret it generates once and keeps in the engine (jwtsecret.go).
type AuthConfig struct {
	JWTSecret    string `koanf:"jwt_secret"`     // HS256 secret, at least 32 bytes; default none
	JWTPublicKey string `koanf:"jwt_public_key"` // PEM text or file of RSA/EC/Ed25519 public keys; default none
	JWKSURL      string `koanf:"jwks_url"`       // JWKS endpoint, keys selected by kid; default none
	// JWTAlgorithms are the allowed algs; default HS256 with a secret,
	// plus RS256 and ES256 with a public key or JWKS. "none" is refused.
	JWTAlgorithms []string `koanf:"jwt_algorithms"`
	JWTIssuer     string   `koanf:"jwt_issuer"`   // if set, tokens' iss must equal it
	JWTAudience   string   `koanf:"jwt_audience"` // if set, tokens' aud must contain it
	// TokenTTL is the lifetime of the tokens POST /API/IDP/connect/token
	// issues; default 1h, at most 8760h.
	TokenTTL time.Duration `koanf:"token_ttl"`
	// CORSOrigins are the browser origins that may call the token
	// endpoint; default ["*"]: any, as it uses no cookies.
	CORSOrigins []string `koanf:"cors_origins"`
}

// JWTEnabled reports whether any JWT key is configured.
func (a AuthConfig) JWTEnabled() bool {
	return a.JWTSecret != "" || a.JWTPublicKey != "" || a.JWKSURL != ""
}

// JWT returns the settings of the token verifier (auth.NewVerifier).
func (a AuthConfig) JWT() auth.JWTConfig {
	return auth.JWTConfig{
		Secret:     a.JWTSecret,
		PublicKey:  a.JWTPublicKey,
		JWKSURL:    a.JWKSURL,
		Algorithms: slices.Clone(a.JWTAlgorithms),
		Issuer:     a.JWTIssuer,
		Audience:   a.JWTAudience,
	}
}

// validate checks the JWT settings when any is given.
func (a AuthConfig) validate() error {
	if !a.JWTEnabled() && len(a.JWTAlgorithms) == 0 && a.JWTIssuer == "" && a.JWTAudience == "" {
		return nil
	}
	if err := a.JWT().Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// checkTokenSettings checks the token endpoint's settings.
func (a AuthConfig) checkTokenSettings() error {
	if a.TokenTTL < 0 || a.TokenTTL > 365*24*time.Hour {
		return fmt.Errorf("config: auth.token_ttl must be between 0 (the default, 1h) and 8760h, not %s", a.TokenTTL)
	}
	for _, o := range a.CORSOrigins {
		if o != "*" && !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			return fmt.Errorf("config: auth.cors_origins: %q is neither \"*\" nor an origin such as https://example.com", o)
		}
	}
	return nil
}

// LimitsConfig bounds inputs and queues.
type LimitsConfig struct {
	MaxBodyBytes     int64          `koanf:"max_body_bytes"`     // ingest body; default 4 MiB
	MaxBatch         int            `koanf:"max_batch"`          // events per ingest request; default 1000
	MaxTriggers      int            `koanf:"max_triggers"`       // policyAlertTriggers per event; default 64
	MaxMetrics       int            `koanf:"max_metrics"`        // telemetry/metrics members per event; default 256
	MaxTransactions  int            `koanf:"max_transactions"`   // STOMP transactions open per connection; default 16
	MaxFrameBytes    int            `koanf:"max_frame_bytes"`    // inbound WebSocket message; default 80 KiB
	QueueMessages    int            `koanf:"queue_messages"`     // per-connection queue; default 4096
	QueueBytes       int            `koanf:"queue_bytes"`        // per-connection queue; default 4 MiB
	WriteTimeout     time.Duration  `koanf:"write_timeout"`      // default 10s
	HeartBeat        time.Duration  `koanf:"heart_beat"`         // STOMP heart-beat offered; default 10s
	MaxPendingAcks   int            `koanf:"max_pending_acks"`   // STOMP client ack modes; default 10000
	MaxSubscriptions int            `koanf:"max_subscriptions"`  // per connection; default 100
	StompHeaderBytes int            `koanf:"stomp_header_bytes"` // default 8 KiB
	StompBodyBytes   int            `koanf:"stomp_body_bytes"`   // default 64 KiB
	StompHeaderLines int            `koanf:"stomp_header_lines"` // default 64
	Channels         ChannelsLimits `koanf:"channels"`           // the channels dialect
	ESS              ESSLimits      `koanf:"ess"`                // the ess dialect
}

// OrgConfig declares an org and what belongs to it; applied at every start.
type OrgConfig struct {
	UUID    string         `koanf:"uuid"`
	Name    string         `koanf:"name"`
	APIKeys []APIKeyConfig `koanf:"api_keys"`
	Users   []UserConfig   `koanf:"users"`
	Devices []DeviceConfig `koanf:"devices"`
}

// APIKeyConfig declares an API key; it is stored hashed.
type APIKeyConfig struct {
	Key    string   `koanf:"key"`
	Name   string   `koanf:"name"`
	Scopes []string `koanf:"scopes"` // default: subscribe, publish
}

// UserConfig declares a user; the password is stored hashed.
type UserConfig struct {
	Name     string `koanf:"name"`
	Password string `koanf:"password"`
}

// DeviceConfig declares a device.
type DeviceConfig struct {
	UUID   string `koanf:"uuid"`
	Name   string `koanf:"name"`
	Kind   string `koanf:"kind"` // default "device"
	Number int64  `koanf:"number"`
}

// envKeys maps the environment variables herald reads to config keys.
var envKeys = map[string]string{
	"HERALD_LISTEN":         "listen",
	"HERALD_DATA_DIR":       "data_dir",
	"HERALD_NATS":           "nats",
	"HERALD_SYNC":           "sync",
	"HERALD_REPLICAS":       "replicas",
	"HERALD_JWT_SECRET":     "auth.jwt_secret",
	"HERALD_LOG_LEVEL":      "log_level",
	"HERALD_METRICS_LISTEN": "metrics.listen",
	"HERALD_TLS_CERT_FILE":  "tls.cert_file",
	"HERALD_NATS_USER":      "nats_auth.user",
	"HERALD_NATS_PASSWORD":  "nats_auth.password",
	"HERALD_NATS_TOKEN":     "nats_auth.token",
	"HERALD_TLS_KEY_FILE":   "tls.key_file",
}

// Overrides are command-line values; empty ones are not set.
type Overrides struct {
	Listen         string
	DataDir        string
	NATS           string
	AcceptDataLoss bool
}

// LoadConfig reads the config file (if path is not empty), then the
// environment, then the flags: later sources win.
func LoadConfig(path string, flags Overrides) (Config, error) {
	k := koanf.New(".")
	if path != "" {
		if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
			return Config{}, fmt.Errorf("config %s: %w", path, err)
		}
	}
	err := k.Load(env.ProviderWithValue("HERALD_", ".", func(key, value string) (string, any) {
		name, ok := envKeys[key]
		if !ok {
			return "", nil
		}
		if name == "nats" {
			return name, strings.Split(value, ",")
		}
		return name, value
	}), nil)
	if err != nil {
		return Config{}, err
	}
	for key, v := range map[string]string{"listen": flags.Listen, "data_dir": flags.DataDir} {
		if v != "" {
			k.Set(key, v)
		}
	}
	if flags.NATS != "" {
		k.Set("nats", strings.Split(flags.NATS, ","))
	}
	var cfg Config
	if err := k.UnmarshalWithConf("", &cfg, koanf.UnmarshalConf{Tag: "koanf"}); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	cfg.AcceptDataLoss = flags.AcceptDataLoss
	cfg.ApplyDefaults()
	return cfg, cfg.Validate()
}

// ApplyDefaults fills zero fields with their defaults.
func (c *Config) ApplyDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.DataDir == "" {
		c.DataDir = "./herald-data"
	}
	if c.Sync == "" {
		c.Sync = "interval"
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	c.HTTP.applyDefaults()
	c.Readiness.applyDefaults()
	c.Limits.Channels.applyDefaults()
	for i := range c.Orgs {
		for j := range c.Orgs[i].APIKeys {
			if len(c.Orgs[i].APIKeys[j].Scopes) == 0 {
				c.Orgs[i].APIKeys[j].Scopes = []string{herald.ScopeSubscribe, herald.ScopePublish}
			}
		}
		for j := range c.Orgs[i].Devices {
			if c.Orgs[i].Devices[j].Kind == "" {
				c.Orgs[i].Devices[j].Kind = "device"
			}
		}
	}
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Validate reports the first invalid setting, naming it.
func (c *Config) Validate() error {
	if c.Sync != "interval" && c.Sync != "always" {
		return fmt.Errorf("config: sync must be \"interval\" or \"always\", not %q", c.Sync)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		return fmt.Errorf("config: log_level must be debug, info, warn or error, not %q", c.LogLevel)
	}
	if c.HTTP.MaxConnsPerIP < -1 {
		return fmt.Errorf("config: http.max_conns_per_ip must be at least 1, or -1 for no cap, not %d", c.HTTP.MaxConnsPerIP)
	}
	if err := c.State.validate(); err != nil {
		return err
	}
	if c.NATSAuth != (NATSAuthConfig{}) && len(c.NATS) == 0 {
		return fmt.Errorf("config: nats_auth is for an external cluster: give its URLs in nats")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return fmt.Errorf("config: tls.cert_file and tls.key_file go together: give both, or neither for plain http")
	}
	if err := c.Auth.checkTokenSettings(); err != nil {
		return err
	}
	if err := c.Auth.validate(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, o := range c.Orgs {
		where := fmt.Sprintf("config: orgs[%d]", i)
		if !uuidPattern.MatchString(o.UUID) {
			return fmt.Errorf("%s.uuid must be a UUID, not %q", where, o.UUID)
		}
		if seen[strings.ToLower(o.UUID)] {
			return fmt.Errorf("%s.uuid %s is declared twice", where, o.UUID)
		}
		seen[strings.ToLower(o.UUID)] = true
		if o.Name == "" {
			return fmt.Errorf("%s.name is required", where)
		}
		for j, k := range o.APIKeys {
			if len(k.Key) < 8 {
				return fmt.Errorf("%s.api_keys[%d].key must be at least 8 characters", where, j)
			}
			for _, s := range k.Scopes {
				if !herald.ValidScope(s) {
					return fmt.Errorf("%s.api_keys[%d]: unknown scope %q (subscribe, publish, admin)", where, j, s)
				}
			}
		}
		for j, u := range o.Users {
			if u.Name == "" || u.Password == "" {
				return fmt.Errorf("%s.users[%d] needs a name and a password", where, j)
			}
		}
		for j, d := range o.Devices {
			if d.UUID == "" || strings.ContainsAny(d.UUID, " \t\r\n") {
				return fmt.Errorf("%s.devices[%d].uuid is required and may not contain spaces", where, j)
			}
		}
	}
	return nil
}
