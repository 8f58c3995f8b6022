package server

import (
	"crypto/tls"
	"fmt"
	"net"
	"sync/atomic"
)

// tlsCertificate holds the certificate new handshakes present; ReloadTLS
// replaces it, and connections already made keep theirs.
type tlsCertificate struct {
	cert atomic.Pointer[tls.Certificate]
	cfg  TLSConfig
}

func (t *tlsCertificate) load() error {
	cert, err := tls.LoadX509KeyPair(t.cfg.CertFile, t.cfg.KeyFile)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	t.cert.Store(&cert)
	return nil
}

// listener wraps ln in TLS with the current certificate. Only HTTP/1.1 is
// offered: WebSocket upgrades need it.
func (t *tlsCertificate) listener(ln net.Listener) net.Listener {
	return tls.NewListener(ln, &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return t.cert.Load(), nil
		},
	})
}

// TLS reports whether the main listener speaks TLS (https and wss).
func (s *Server) TLS() bool { return s.tls != nil }

// ReloadTLS reads tls.cert_file and tls.key_file again (herald serve calls
// it on SIGHUP): new connections get the new certificate, the ones open
// keep going. On an error the old certificate stays. Without TLS it does
// nothing.
func (s *Server) ReloadTLS() error {
	if s.tls == nil {
		return nil
	}
	return s.tls.load()
}
