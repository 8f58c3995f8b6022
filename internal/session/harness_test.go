package session

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/hub"
	"github.com/herald-gw/herald/internal/inmem"
	"github.com/herald-gw/herald/internal/wsconn"
)

// node is a herald node in memory: the in-memory engine, a hub, and the
// follower between them, as the server wires them.
type node struct {
	log  *inmem.Engine
	hub  *hub.Hub
	node *Node
}

func newNode(t *testing.T, cfg inmem.Config, nodeCfg Node) *node {
	t.Helper()
	n := &node{log: inmem.New(cfg), hub: hub.New(0)}
	nodeCfg.Log, nodeCfg.Hub, nodeCfg.Store = n.log, n.hub, n.log
	nodeCfg = nodeCfg.WithDefaults()
	n.node = &nodeCfg
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.hub.Follow(ctx, n.log); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return n
}

// append stores one event per entity of org and returns their ids.
func (n *node) append(t *testing.T, org string, entities ...string) []uint64 {
	t.Helper()
	var records []herald.Record
	for _, entity := range entities {
		records = append(records, alertRecord(org, entity))
	}
	ids, err := n.log.Append(context.Background(), records)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// alertRecord is a POLICY_ALERT of org for the entity uuid entity.
func alertRecord(org, entity string) herald.Record {
	data, _ := json.Marshal(map[string]any{"org": org, "channel": "alerts", "entity": "POLICY_ALERT",
		"entityUuid": entity, "deviceUuid": "dev-" + entity, "type": "CREATE"})
	return herald.Record{Org: org, Channel: "alerts", Entity: "POLICY_ALERT",
		EntityUUID: entity, DeviceUUID: "dev-" + entity, Data: data}
}

// waitHead waits until the hub has dispatched id.
func (n *node) waitHead(t *testing.T, id uint64) {
	t.Helper()
	waitFor(t, "hub head "+strconv.FormatUint(id, 10), func() bool { return n.hub.Head() >= id })
}

// client is a session on a connection whose other end the test reads.
// Each event arrives as one text message "<sub id>:<event id>"; a
// message the handler sent itself arrives as it is.
type client struct {
	t       *testing.T
	session *Session
	handler *testHandler
	peer    net.Conn
	got     chan string
	gate    chan struct{} // the reader waits on it before each frame while not nil
	gateMu  sync.Mutex
}

// testHandler is a dialect that only renders: the tests drive the
// session directly.
type testHandler struct {
	lost chan error
}

func (h *testHandler) Handle([]byte) bool    { return true }
func (h *testHandler) ReadFailed(error) bool { return false }
func (h *testHandler) Lost(err error)        { h.lost <- err }
func (h *testHandler) Ended()                {}
func (h *testHandler) AppendEvents(parts [][]byte, scratch []byte, events []wsconn.Message) ([][]byte, []byte, int) {
	m := events[0]
	start := len(scratch)
	scratch = append(scratch, m.Sub.(*Sub).ID...)
	scratch = append(scratch, ':')
	scratch = strconv.AppendUint(scratch, m.Event.ID, 10)
	return append(parts, scratch[start:]), scratch, 1
}

func (n *node) connect(t *testing.T, org string, opts wsconn.Options) *client {
	t.Helper()
	return n.connectVia(t, org, opts, nil)
}

// connectVia is connect with the server's end of the connection wrapped
// by wrap, if not nil.
func (n *node) connectVia(t *testing.T, org string, opts wsconn.Options, wrap func(net.Conn) net.Conn) *client {
	t.Helper()
	return n.connectAs(t, herald.Principal{Org: org}, opts, wrap)
}

// connectAs is connectVia for a session started as p.
func (n *node) connectAs(t *testing.T, p herald.Principal, opts wsconn.Options, wrap func(net.Conn) net.Conn) *client {
	t.Helper()
	server, peer := net.Pipe()
	if wrap != nil {
		server = wrap(server)
	}
	conn := wsconn.NewConn(server, opts)
	c := &client{t: t, peer: peer, got: make(chan string, 100000), handler: &testHandler{lost: make(chan error, 1)}}
	c.session = New(n.node, conn)
	c.session.Serve(c.handler, nil)
	c.session.Start(p)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c.gateMu.Lock()
			gate := c.gate
			c.gateMu.Unlock()
			if gate != nil {
				<-gate
			}
			h, err := ws.ReadHeader(peer)
			if err != nil {
				return
			}
			payload := make([]byte, h.Length)
			if _, err := io.ReadFull(peer, payload); err != nil {
				return
			}
			if h.OpCode == ws.OpText {
				c.got <- string(payload)
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		peer.Close()
		c.resume()
		<-done
		waitFor(t, "session closed", func() bool {
			c.session.mu.Lock()
			defer c.session.mu.Unlock()
			return c.session.closed
		})
	})
	return c
}

// pause stops reading from the connection; resume reads on.
func (c *client) pause() {
	c.gateMu.Lock()
	defer c.gateMu.Unlock()
	if c.gate == nil {
		c.gate = make(chan struct{})
	}
}

func (c *client) resume() {
	c.gateMu.Lock()
	defer c.gateMu.Unlock()
	if c.gate != nil {
		close(c.gate)
		c.gate = nil
	}
}

func (c *client) subscribe(id string, after *uint64) {
	c.t.Helper()
	if err := c.session.Subscribe(&Sub{ID: id}, after, nil); err != nil {
		c.t.Fatalf("Subscribe %s: %v", id, err)
	}
}

// expect reads the next messages and fails unless they are want, in order.
func (c *client) expect(want ...string) {
	c.t.Helper()
	for i, w := range want {
		select {
		case got := <-c.got:
			if got != w {
				c.t.Fatalf("message %d: got %q, want %q", i, got, w)
			}
		case <-time.After(10 * time.Second):
			c.t.Fatalf("message %d: nothing arrived, want %q", i, w)
		}
	}
}

// live reports whether the session is on the live path with no catch-up
// running.
func (c *client) live() bool {
	c.session.mu.Lock()
	defer c.session.mu.Unlock()
	return c.session.live && !c.session.catchingUp
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

func ids(sub string, from, to uint64) []string {
	var out []string
	for id := from; id <= to; id++ {
		out = append(out, fmt.Sprintf("%s:%d", sub, id))
	}
	return out
}

func entities(prefix string, n int) []string {
	var out []string
	for i := range n {
		out = append(out, prefix+strconv.Itoa(i))
	}
	return out
}

func ptr(v uint64) *uint64 { return &v }
