package server

import (
	"net"
	"testing"
	"time"
)

// TestRemoteIPGroupsIPv6By64: the per-IP cap counts an IPv6 host by its
// /64, which one host can fill with addresses, and an IPv4 address (plain
// or IPv4-mapped) by itself.
func TestRemoteIPGroupsIPv6By64(t *testing.T) {
	key := func(addr string) string {
		return remoteIP(addrConn{&net.TCPAddr{IP: net.ParseIP(addr), Port: 40000}})
	}
	for _, tt := range []struct{ a, b string }{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe"},
		{"192.0.2.7", "::ffff:192.0.2.7"},
	} {
		if key(tt.a) != key(tt.b) {
			t.Errorf("%s and %s have keys %q and %q, want one", tt.a, tt.b, key(tt.a), key(tt.b))
		}
	}
	for _, tt := range []struct{ a, b string }{
		{"2001:db8:1:2::1", "2001:db8:1:3::1"},
		{"192.0.2.7", "192.0.2.8"},
	} {
		if key(tt.a) == key(tt.b) {
			t.Errorf("%s and %s share the key %q, want two", tt.a, tt.b, key(tt.a))
		}
	}
}

// addrConn is a net.Conn with only a remote address.
type addrConn struct{ remote net.Addr }

func (c addrConn) RemoteAddr() net.Addr { return c.remote }

func (addrConn) Read([]byte) (int, error)         { return 0, net.ErrClosed }
func (addrConn) Write([]byte) (int, error)        { return 0, net.ErrClosed }
func (addrConn) Close() error                     { return nil }
func (addrConn) LocalAddr() net.Addr              { return nil }
func (addrConn) SetDeadline(time.Time) error      { return nil }
func (addrConn) SetReadDeadline(time.Time) error  { return nil }
func (addrConn) SetWriteDeadline(time.Time) error { return nil }
