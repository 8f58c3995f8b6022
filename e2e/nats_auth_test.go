package e2e

import (
	"context"
	"crypto/tls"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/herald-gw/herald/internal/server"
)

// startSecuredNATS runs a JetStream server with opts' security settings
// until the test ends and returns its client URL.
func startSecuredNATS(t *testing.T, opts *natsserver.Options) string {
	t.Helper()
	ns := runNATS(t, opts)
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns.ClientURL()
}

// runNATS starts an in-process JetStream server on loopback with opts;
// a port of 0 is a free one, an empty store a temp dir.
func runNATS(t *testing.T, opts *natsserver.Options) *natsserver.Server {
	t.Helper()
	if opts.Port == 0 {
		opts.Port = -1
	}
	if opts.StoreDir == "" {
		opts.StoreDir = t.TempDir()
	}
	opts.Host, opts.JetStream, opts.NoLog, opts.NoSigs = "127.0.0.1", true, true, true
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(patience) {
		t.Fatal("nats server not ready")
	}
	return ns
}

// TestNATSAuth: herald connects to a cluster that requires a user and
// password, a token, an NKey, or TLS with a private CA and a client
// certificate, and serves on it; a wrong credential stops the start with
// the cluster's reason.
func TestNATSAuth(t *testing.T) {
	ca := newTestCA(t)
	user, _ := nkeys.CreateUser()
	userPub, _ := user.PublicKey()
	seed, _ := user.Seed()
	seedFile := filepath.Join(t.TempDir(), "herald.nk")
	os.WriteFile(seedFile, seed, 0o600)
	other, _ := nkeys.CreateUser()
	otherSeed, _ := other.Seed()
	otherFile := filepath.Join(t.TempDir(), "other.nk")
	os.WriteFile(otherFile, otherSeed, 0o600)

	serverCert, serverKey := ca.issueAs("nats", 10)
	clientCert, clientKey := ca.issueAs("herald-client", 11)
	pair, err := tls.LoadX509KeyPair(serverCert, serverKey)
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name  string
		opts  *natsserver.Options
		good  server.NATSAuthConfig
		bad   server.NATSAuthConfig
		fails string
	}{
		{"user and password", &natsserver.Options{Users: []*natsserver.User{{Username: "herald", Password: "nats-pw"}}},
			server.NATSAuthConfig{User: "herald", Password: "nats-pw"}, server.NATSAuthConfig{User: "herald", Password: "wrong"}, "Authorization Violation"},
		{"token", &natsserver.Options{Authorization: "nats-token"},
			server.NATSAuthConfig{Token: "nats-token"}, server.NATSAuthConfig{Token: "wrong"}, "Authorization Violation"},
		{"nkey", &natsserver.Options{Nkeys: []*natsserver.NkeyUser{{Nkey: userPub}}},
			server.NATSAuthConfig{NKeySeedFile: seedFile}, server.NATSAuthConfig{NKeySeedFile: otherFile}, "Authorization Violation"},
		{"tls with a client certificate", &natsserver.Options{TLS: true, TLSVerify: true, TLSTimeout: 5,
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.pool, MinVersion: tls.VersionTLS12}},
			server.NATSAuthConfig{CAFile: ca.certPEM, CertFile: clientCert, KeyFile: clientKey}, server.NATSAuthConfig{CAFile: ca.certPEM}, "tls"},
	} {
		t.Run(c.name, func(t *testing.T) {
			url := startSecuredNATS(t, c.opts)
			cfg := testConfig(t.TempDir())
			cfg.NATS, cfg.NATSAuth = []string{url}, c.good
			ts := startServer(t, cfg)
			if ids := ts.publish(keyA, alert("nats-auth", camA)); len(ids) != 1 {
				t.Fatalf("published %v", ids)
			}

			cfg.NATSAuth = c.bad
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			srv, err := server.New(ctx, cfg, slog.New(slog.DiscardHandler))
			if err == nil {
				stopped, stop := context.WithCancel(context.Background())
				stop()
				srv.Run(stopped) // shuts it down
				t.Fatal("a wrong credential was accepted")
			}
			if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(c.fails)) {
				t.Fatalf("the error %q does not say %q", err, c.fails)
			}
		})
	}
}

// TestNATSAuthRefusesTwoCredentials: a config with two credentials, or
// nats_auth without nats, is refused before anything connects.
func TestNATSAuthRefusesTwoCredentials(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.NATS = []string{"nats://127.0.0.1:1"}
	cfg.NATSAuth = server.NATSAuthConfig{User: "a", Password: "b", Token: "c"}
	if _, err := server.New(context.Background(), cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "one credential") {
		t.Fatalf("two credentials: %v", err)
	}
	cfg.NATS = nil
	if _, err := server.New(context.Background(), cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "nats_auth is for an external cluster") {
		t.Fatalf("nats_auth without nats: %v", err)
	}
}

// TestNATSCredsFile: in operator mode (JWTs), herald connects with a
// user's creds file, as nsc generates it.
func TestNATSCredsFile(t *testing.T) {
	operator, _ := nkeys.CreateOperator()
	operatorPub, _ := operator.PublicKey()
	operatorClaims := jwt.NewOperatorClaims(operatorPub)
	operatorJWT, err := operatorClaims.Encode(operator)
	if err != nil {
		t.Fatal(err)
	}
	trusted, _ := jwt.DecodeOperatorClaims(operatorJWT)

	newAccount := func(name string, jetstream bool) (nkeys.KeyPair, string, string) {
		kp, _ := nkeys.CreateAccount()
		pub, _ := kp.PublicKey()
		claims := jwt.NewAccountClaims(pub)
		claims.Name = name
		if jetstream {
			claims.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		}
		token, err := claims.Encode(operator)
		if err != nil {
			t.Fatal(err)
		}
		return kp, pub, token
	}
	_, sysPub, sysJWT := newAccount("SYS", false)
	account, accountPub, accountJWT := newAccount("HERALD", true)
	resolver := &natsserver.MemAccResolver{}
	resolver.Store(sysPub, sysJWT)
	resolver.Store(accountPub, accountJWT)

	user, _ := nkeys.CreateUser()
	userPub, _ := user.PublicKey()
	userClaims := jwt.NewUserClaims(userPub)
	userClaims.IssuerAccount = accountPub
	userJWT, err := userClaims.Encode(account)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := user.Seed()
	creds, err := jwt.FormatUserConfig(userJWT, seed)
	if err != nil {
		t.Fatal(err)
	}
	credsFile := filepath.Join(t.TempDir(), "herald.creds")
	os.WriteFile(credsFile, creds, 0o600)

	url := startSecuredNATS(t, &natsserver.Options{TrustedOperators: []*jwt.OperatorClaims{trusted},
		AccountResolver: resolver, SystemAccount: sysPub})
	cfg := testConfig(t.TempDir())
	cfg.NATS, cfg.NATSAuth = []string{url}, server.NATSAuthConfig{CredsFile: credsFile}
	ts := startServer(t, cfg)
	if ids := ts.publish(keyA, alert("creds", camA)); len(ids) != 1 {
		t.Fatalf("published %v", ids)
	}
}

// TestExistingStreamOfAnotherKind: an EVENTS stream herald cannot use (a
// work queue, made by someone else) stops the start with a message that
// names the difference, and is left as it was.
func TestExistingStreamOfAnotherKind(t *testing.T) {
	url := startSecuredNATS(t, &natsserver.Options{})
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"jobs.>"}, Retention: jetstream.WorkQueuePolicy}); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t.TempDir())
	cfg.NATS = []string{url}
	_, err = server.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "stream EVENTS exists with retention") || !strings.Contains(err.Error(), "does not change or recreate") {
		t.Fatalf("start on a work-queue EVENTS: %v", err)
	}
	info, err := js.Stream(ctx, "EVENTS")
	if err != nil || info.CachedInfo().Config.Retention != jetstream.WorkQueuePolicy {
		t.Fatalf("the stream was changed: %v", err)
	}
}
