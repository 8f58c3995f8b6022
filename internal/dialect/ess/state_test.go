package ess

import (
	"bytes"
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/hub"
	"github.com/herald-gw/herald/internal/inmem"
	"github.com/herald-gw/herald/internal/session"
	"github.com/herald-gw/herald/internal/wsconn"
)

// recordConn is a client socket that keeps what the server writes.
type recordConn struct {
	net.Conn
	mu  sync.Mutex
	out bytes.Buffer
}

func (c *recordConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Write(b)
}
func (c *recordConn) written() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.out.Bytes())
}
func (c *recordConn) Read([]byte) (int, error)         { select {} }
func (c *recordConn) Close() error                     { return nil }
func (c *recordConn) SetWriteDeadline(time.Time) error { return nil }
func (c *recordConn) SetReadDeadline(time.Time) error  { return nil }
func (c *recordConn) SetDeadline(time.Time) error      { return nil }
func (c *recordConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *recordConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }

// gatedView is a state view whose States waits for release.
type gatedView struct {
	herald.StateView
	entered atomic.Int32
	release chan struct{}
}

func (v *gatedView) States(ctx context.Context, org string, entities []string, fn func(*herald.Event) error) (uint64, error) {
	v.entered.Add(1)
	select {
	case <-v.release:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return 0, nil
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A node runs at most MaxConcurrentStates snapshots at once, so clients
// asking for state again and again cannot take every core from delivery;
// one that waits longer than StateWait for a turn gets 503.
func TestGetStateTakesTurns(t *testing.T) {
	eng := inmem.New(inmem.Config{})
	h := hub.New(0)
	node := session.Node{Log: eng, Hub: h, Acked: h.Head}.WithDefaults()
	view := &gatedView{release: make(chan struct{})}
	cfg := Config{Node: &node, State: view, MaxConcurrentStates: 1, StateWait: time.Hour}.WithDefaults()
	open := func() (*conn, *recordConn) {
		raw := &recordConn{}
		wc := wsconn.NewConn(raw, wsconn.Options{})
		c := &conn{cfg: &cfg, conn: wc}
		c.subs.Store(&subscriptions{})
		c.session = session.New(&node, wc)
		c.session.Start(herald.Principal{Org: "org-a"})
		t.Cleanup(func() { c.session.Close(); wc.Close() })
		return c, raw
	}
	first, _ := open()
	second, secondOut := open()
	done := make(chan bool, 2)
	go func() { done <- first.getState(Command{Name: CommandGetState, CommandID: 1}) }()
	waitFor(t, "the first snapshot to start", func() bool { return view.entered.Load() == 1 })
	go func() { done <- second.getState(Command{Name: CommandGetState, CommandID: 2}) }()
	waitFor(t, "the second getState to wait for a turn", func() bool { return cfg.states.waiting.Load() == 1 })
	if n := view.entered.Load(); n != 1 {
		t.Fatalf("%d snapshots running with one turn", n)
	}
	view.release <- struct{}{} // the first ends; the second takes its turn
	waitFor(t, "the second snapshot to start", func() bool { return view.entered.Load() == 2 })
	view.release <- struct{}{}
	<-done
	<-done

	// No turn within StateWait: 503.
	cfg.StateWait = 20 * time.Millisecond
	go func() { done <- first.getState(Command{Name: CommandGetState, CommandID: 3}) }()
	waitFor(t, "the third snapshot to start", func() bool { return view.entered.Load() == 3 })
	if !second.getState(Command{Name: CommandGetState, CommandID: 4}) {
		t.Fatal("a getState that found no turn ended the connection")
	}
	waitFor(t, "the 503 reply", func() bool {
		return bytes.Contains(secondOut.written(), []byte(`{"commandId":4,"status":503,"error":{"errorText":"The server is busy`))
	})
	view.release <- struct{}{}
	<-done
}
