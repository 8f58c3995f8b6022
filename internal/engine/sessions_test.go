package engine_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/engine"
)

// TestSessionsAcrossNodes attaches two engines, two gateway nodes, to one
// NATS server: a session one detaches, the other takes, and when both
// race for a session exactly one of them gets it.
func TestSessionsAcrossNodes(t *testing.T) {
	cfg := external(t)
	nodes := []*engine.Engine{open(t, cfg), open(t, cfg)}
	ctx := t.Context()
	expires := time.Now().Add(time.Hour)

	s := herald.DetachedSession{ID: "moves", Org: "org-a", Dialect: "stomp", After: 12, State: []byte(`{"a":1}`), Expires: expires}
	if err := nodes[0].SaveSession(ctx, s); err != nil {
		t.Fatalf("SaveSession: %v", err)
	}
	got, err := nodes[1].TakeSession(ctx, "moves")
	if err != nil || got.After != 12 || string(got.State) != `{"a":1}` {
		t.Fatalf("TakeSession on the other node = %+v, %v", got, err)
	}
	if _, err := nodes[0].TakeSession(ctx, "moves"); herald.ErrorCode(err) != herald.ENOTFOUND {
		t.Fatalf("TakeSession of a session the other node took: %v, want ENOTFOUND", err)
	}

	for round := range 20 {
		id := fmt.Sprint("race-", round)
		if err := nodes[round%2].SaveSession(ctx, herald.DetachedSession{ID: id, Org: "org-a", Expires: expires}); err != nil {
			t.Fatalf("SaveSession: %v", err)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, len(nodes))
		for i, node := range nodes {
			wg.Go(func() {
				<-start
				_, errs[i] = node.TakeSession(ctx, id)
			})
		}
		close(start)
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch herald.ErrorCode(err) {
			case "":
				won++
			case herald.ENOTFOUND:
			default:
				t.Fatalf("TakeSession racing: %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d nodes took the session, want exactly 1 (errors %v)", round, won, errs)
		}
	}
}

// TestSessionsExpireInStorage checks that storage stays bounded: the
// server itself removes a session nobody took once its TTL ends, and
// what a take leaves behind carries a TTL too. It looks at the bucket
// directly, as another NATS client.
func TestSessionsExpireInStorage(t *testing.T) {
	cfg := external(t)
	e := open(t, cfg)
	ctx := t.Context()
	conn, err := nats.Connect(cfg.NATSURLs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	js, err := jetstream.New(conn)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, "KV_herald_sessions")
	if err != nil {
		t.Fatalf("the sessions bucket: %v", err)
	}
	last := func(id string) (*jetstream.RawStreamMsg, error) {
		return stream.GetLastMsgForSubject(ctx, "$KV.herald_sessions."+encodeID(id))
	}

	if err := e.SaveSession(ctx, herald.DetachedSession{ID: "left", Org: "org-a", Expires: time.Now().Add(time.Second)}); err != nil {
		t.Fatalf("SaveSession: %v", err)
	}
	msg, err := last("left")
	if err != nil || msg.Header.Get(jetstream.MsgTTLHeader) == "" {
		t.Fatalf("stored session %+v, %v: want a message with a TTL", msg, err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		msg, err := last("left")
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if msg.Header.Get(jetstream.MarkerReasonHeader) != "" {
			// The server's marker for a removed message, itself with a TTL.
			if msg.Header.Get(jetstream.MsgTTLHeader) == "" {
				t.Fatalf("the marker of an expired session has no TTL: %v", msg.Header)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an expired session is still stored after 15s")
		}
		time.Sleep(100 * time.Millisecond)
	}

	if err := e.SaveSession(ctx, herald.DetachedSession{ID: "taken", Org: "org-a", Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatalf("SaveSession: %v", err)
	}
	if _, err := e.TakeSession(ctx, "taken"); err != nil {
		t.Fatalf("TakeSession: %v", err)
	}
	msg, err = last("taken")
	if err != nil || msg.Header.Get("KV-Operation") != "PURGE" || msg.Header.Get(jetstream.MsgTTLHeader) == "" {
		t.Fatalf("after a take the bucket holds %+v, %v: want a purge marker with a TTL", msg, err)
	}
}

// encodeID is the engine's key for a session id.
func encodeID(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }
