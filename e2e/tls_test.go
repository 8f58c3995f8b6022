package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-gw/herald/client"
)

// testCA is a certificate authority made for one test, and the files of
// the server certificates it signs.
type testCA struct {
	t       *testing.T
	dir     string
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM string // path of the CA's certificate, for the clients
	pool    *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "herald test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{t: t, dir: t.TempDir(), cert: cert, key: key, pool: x509.NewCertPool()}
	ca.pool.AddCert(cert)
	ca.certPEM = filepath.Join(ca.dir, "ca.pem")
	writePEM(t, ca.certPEM, "CERTIFICATE", der)
	return ca
}

// issue writes a certificate for 127.0.0.1 and localhost with serial,
// and its key, to cert.pem and key.pem (replacing them), and returns the
// two paths.
func (ca *testCA) issue(serial int64) (certFile, keyFile string) {
	ca.t.Helper()
	return ca.issueAs("cert", serial)
}

// issueAs is issue to name.pem and name-key.pem; the certificate serves
// servers and clients.
func (ca *testCA) issueAs(name string, serial int64) (certFile, keyFile string) {
	ca.t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "herald"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(ca.dir, name+".pem"), filepath.Join(ca.dir, name+"-key.pem")
	writePEM(ca.t, certFile+".tmp", "CERTIFICATE", der)
	writePEM(ca.t, keyFile+".tmp", "EC PRIVATE KEY", keyDER)
	os.Rename(certFile+".tmp", certFile)
	os.Rename(keyFile+".tmp", keyFile)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// trust makes the test's HTTP clients (http.DefaultClient and what uses
// it) trust ca, until the test ends.
func (ca *testCA) trust() {
	transport := http.DefaultTransport.(*http.Transport)
	old := transport.TLSClientConfig
	transport.TLSClientConfig = &tls.Config{RootCAs: ca.pool}
	ca.t.Cleanup(func() {
		transport.TLSClientConfig = old
		transport.CloseIdleConnections()
	})
}

// clientEnv makes Python (ssl, requests), Node and Go programs trust ca.
func (ca *testCA) clientEnv() []string {
	return []string{"SSL_CERT_FILE=" + ca.certPEM, "REQUESTS_CA_BUNDLE=" + ca.certPEM, "NODE_EXTRA_CA_CERTS=" + ca.certPEM}
}

// TestTLSClients: with tls.cert_file and tls.key_file every endpoint is
// https and wss: the seed's Python client and @stomp/stompjs run over
// wss unchanged but for the URL and their platform's trust of the CA,
// and the Go SDK streams in every dialect.
func TestTLSClients(t *testing.T) {
	ca := newTestCA(t)
	ca.trust()
	cfg := testConfig(t.TempDir())
	cfg.Orgs[0].Users = append(cfg.Orgs[0].Users, monitorUser)
	cfg.TLS.CertFile, cfg.TLS.KeyFile = ca.issue(2)
	ts := startServer(t, cfg)
	if !strings.HasPrefix(ts.base, "https://") {
		t.Fatalf("base %s", ts.base)
	}
	plain, err := http.Get("http://" + ts.srv.Addr() + "/healthz")
	if err == nil {
		plain.Body.Close()
		if plain.StatusCode == 200 {
			t.Fatal("plain http served on a TLS listener")
		}
	}

	t.Run("rhombus python", func(t *testing.T) {
		runRhombusPython(t, &testServer{t: t, srv: ts.srv, base: ts.base}, ca.clientEnv()...)
	})
	t.Run("stompjs", func(t *testing.T) {
		ensureNodeModules(t)
		runStompJS(t, &testServer{t: t, srv: ts.srv, base: ts.base}, ca.clientEnv()...)
	})
	t.Run("sdk", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}}
		for d, opts := range map[client.Dialect][]client.Option{
			client.STOMP:    {client.WithAPIKey(keyA)},
			client.Channels: {client.WithPassword("alice", "alice-pw")},
			client.ESS:      {client.WithAPIKey(keyA)},
			client.Streams:  {client.WithPassword("alice", "alice-pw"), client.WithCompany("acme")},
		} {
			s, err := client.Dial(ctx, "wss://"+ts.srv.Addr(), append([]client.Option{client.WithDialect(d), client.WithHTTPClient(hc)}, opts...)...)
			if err != nil {
				t.Fatalf("%s over wss: %v", d, err)
			}
			id := ts.publish(keyA, alert("tls-"+string(d), camA))[0]
			e, err := s.Next(ctx)
			if err != nil || strconv.FormatUint(e.ID, 10) != id {
				t.Fatalf("%s over wss: %v %v, want event %s", d, e.ID, err, id)
			}
			s.Close()
		}
	})
}

// TestTLSReloadOnSIGHUP: herald serve reloads its certificate on SIGHUP;
// new handshakes get the new one, a WebSocket opened before goes on
// receiving events.
func TestTLSReloadOnSIGHUP(t *testing.T) {
	ca := newTestCA(t)
	ca.trust()
	certFile, keyFile := ca.issue(2)
	work := t.TempDir()
	cfgPath := filepath.Join(work, "herald.yaml")
	config := binaryConfig + "tls:\n  cert_file: " + certFile + "\n  key_file: " + keyFile + "\n"
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(heraldBinary(t), "serve", "--config", cfgPath, "--data", filepath.Join(work, "data"), "--listen", "127.0.0.1:0")
	logs := new(syncBuffer)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("herald output:\n%s", logs.String())
		}
	}()
	addr := waitListening(t, logs.String)
	base := "https://" + addr
	waitHealthy(t, base)
	if !strings.Contains(logs.String(), "wss://"+addr+"/websocket") {
		t.Fatalf("the welcome does not give wss URLs:\n%s", logs.String())
	}
	serial := func() int64 {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.pool})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if got := serial(); got != 2 {
		t.Fatalf("serial %d, want 2", got)
	}

	ts := &testServer{t: t, base: base}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}}
	s, err := client.Dial(ctx, "wss://"+addr, client.WithAPIKey(keyA), client.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before := ts.publish(keyA, alert("before", camA))[0]
	if e, err := s.Next(ctx); err != nil || strconv.FormatUint(e.ID, 10) != before {
		t.Fatalf("before the reload: %v %v", e.ID, err)
	}

	ca.issue(3)
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, patience, "the new certificate", func() bool { return serial() == 3 })
	// The certificate is swapped before the line is logged.
	waitFor(t, patience, "the reload's log line", func() bool { return strings.Contains(logs.String(), "certificate reloaded") })
	after := ts.publish(keyA, alert("after", camA))[0]
	if e, err := s.Next(ctx); err != nil || strconv.FormatUint(e.ID, 10) != after {
		t.Fatalf("after the reload: %v %v, want %s on the connection made before", e.ID, err, after)
	}

	// A bad file keeps the old certificate.
	os.WriteFile(certFile, []byte("not a certificate"), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, patience, "the failed reload's log line", func() bool { return strings.Contains(logs.String(), "was not reloaded") })
	if got := serial(); got != 3 {
		t.Fatalf("serial %d after a failed reload, want 3 kept", got)
	}
}
