package dialecttest

import (
	"context"
	"testing"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/hub"
	"github.com/herald-gw/herald/internal/inmem"
	"github.com/herald-gw/herald/internal/session"
)

// Node is a session node on the in-memory engine and a hub, whose
// detached sessions a test can take.
type Node struct {
	Session *session.Node
	Engine  *inmem.Engine
}

// NewNode makes a Node. wrap, if not nil, wraps the log its sessions read.
func NewNode(wrap func(herald.EventLog) herald.EventLog) *Node {
	eng := inmem.New(inmem.Config{})
	h := hub.New(0)
	var log herald.EventLog = eng
	if wrap != nil {
		log = wrap(eng)
	}
	node := session.Node{Log: log, Hub: h, Store: eng, Acked: h.Head}.WithDefaults()
	return &Node{Session: &node, Engine: eng}
}

// Take takes the session stored as id; ok is false if there is none.
func (n *Node) Take(t testing.TB, id string) (d herald.DetachedSession, ok bool) {
	t.Helper()
	d, err := n.Engine.TakeSession(context.Background(), id)
	if err != nil && herald.ErrorCode(err) != herald.ENOTFOUND {
		t.Fatal(err)
	}
	return d, err == nil
}
