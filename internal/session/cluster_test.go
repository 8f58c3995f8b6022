package session

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/engine"
	"github.com/herald-gw/herald/internal/hub"
	"github.com/herald-gw/herald/internal/wsconn"
)

// TestDetachOnOneNodeAttachOnAnother: two herald nodes on one NATS
// server. A session detached on node 1 is taken over on node 2, which
// sends exactly the events it missed, then live ones. Nothing of the
// session stayed in node 1's memory: node 1 is gone before node 2 takes it.
func TestDetachOnOneNodeAttachOnAnother(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS server")
	}
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })

	node1 := newEngineNode(t, ns.ClientURL())
	first := node1.connect(t, "org-a", wsconn.Options{})
	first.subscribe("s", nil)
	first.session.Keep("sess-x", "test", func() json.RawMessage { return json.RawMessage(`["s"]`) })
	ids := node1.appendTo(t, "org-a", 2)
	first.expect("s:"+itoa(ids[0]), "s:"+itoa(ids[1]))
	waitFor(t, "the writer to count what it wrote", func() bool { _, unwritten := first.session.Conn().Written(); return !unwritten })
	first.session.Conn().Close()
	waitFor(t, "the session to be saved", func() bool { return node1.node.node.Gauges.Detached.Load() == 1 })
	node1.stop()

	node2 := newEngineNode(t, ns.ClientURL())
	missed := node2.appendTo(t, "org-a", 2)
	second := node2.connect(t, "org-a", wsconn.Options{})
	d, err := second.session.Attach(context.Background(), "sess-x", "test")
	if err != nil {
		t.Fatalf("Attach on node 2: %v", err)
	}
	if d.After != ids[1] || string(d.State) != `["s"]` {
		t.Fatalf("attached %+v, want cursor %d", d, ids[1])
	}
	second.subscribe("s", &d.After)
	second.expect("s:"+itoa(missed[0]), "s:"+itoa(missed[1]))
	live := node2.appendTo(t, "org-a", 1)
	second.expect("s:" + itoa(live[0]))
}

// engineNode is node on the NATS engine.
type engineNode struct {
	*node
	engine *engine.Engine
	stop   func()
}

func newEngineNode(t *testing.T, url string) *engineNode {
	t.Helper()
	ctx := context.Background()
	eng, err := engine.Open(ctx, engine.Config{NATSURLs: []string{url}})
	if err != nil {
		t.Fatal(err)
	}
	head, err := eng.LastID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := &engineNode{node: &node{hub: hub.New(head)}, engine: eng}
	cfg := Node{Log: eng, Hub: n.hub, Store: eng}.WithDefaults()
	n.node.node = &cfg
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { n.hub.Follow(ctx, eng); close(done) }()
	stopped := false
	n.stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
			eng.Close()
		}
	}
	t.Cleanup(n.stop)
	return n
}

func (n *engineNode) appendTo(t *testing.T, org string, count int) []uint64 {
	t.Helper()
	var records []herald.Record
	for range count {
		records = append(records, herald.Record{Org: org, Channel: "alerts", Entity: "POLICY_ALERT",
			Data: []byte(`{"org":"` + org + `","channel":"alerts","entity":"POLICY_ALERT","type":"CREATE"}`)})
	}
	ids, err := n.engine.Append(context.Background(), records)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func itoa(id uint64) string { return strconv.FormatUint(id, 10) }
