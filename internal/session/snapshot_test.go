package session

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/inmem"
	"github.com/herald-gw/herald/internal/wsconn"
)

// snapshotReply renders states as "snapshot:{key:id,…}".
func snapshotReply(states []*herald.Event) []byte {
	m := make(map[string]uint64, len(states))
	for _, e := range states {
		m[e.EntityUUID] = e.ID
	}
	b, _ := json.Marshal(m)
	return append([]byte("snapshot:"), b...)
}

func byEntityUUID(e *herald.Event) (string, bool) { return e.EntityUUID, true }

// laggingView is a state view that has copied only half of the log, as
// the NATS engine's STATE trails the log: what it reports is complete up
// to copied and may hold newer events too.
type laggingView struct{ *inmem.Engine }

func (v laggingView) States(ctx context.Context, org string, entities []string, fn func(*herald.Event) error) (uint64, error) {
	copied, err := v.Engine.States(ctx, org, entities, fn)
	return copied / 2, err
}

// TestSnapshotConsistentWithStream takes a snapshot while four publishers
// stream events of ten keys, on a client that keeps up and on one whose
// small queue keeps it catching up from the log: every event arrives once,
// in order, those up to the snapshot's position before it and the rest
// after it, and the snapshot holds, per key, the newest event up to that
// position.
func TestSnapshotConsistentWithStream(t *testing.T) {
	for _, c := range []struct {
		name string
		opts wsconn.Options
	}{
		{"live", wsconn.Options{}},
		{"catching up", wsconn.Options{QueueMessages: 8}},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := newNode(t, inmem.Config{}, Node{})
			cl := n.connect(t, "org-a", c.opts)
			cl.subscribe("s", nil)
			n.append(t, "org-a", "k0", "k1") // state before the publishers start

			var mu sync.Mutex
			keyOf := map[uint64]string{1: "k0", 2: "k1"}
			var wg sync.WaitGroup
			const perPublisher = 150
			started := make(chan struct{}, 4)
			for p := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range perPublisher {
						key := "k" + strconv.Itoa((p*7+i)%10)
						ids, err := n.log.Append(context.Background(), []herald.Record{alertRecord("org-a", key)})
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						keyOf[ids[0]] = key
						mu.Unlock()
						if i == 10 {
							started <- struct{}{}
						}
					}
				}()
			}
			for range 4 {
				<-started
			}
			if err := cl.session.Snapshot(context.Background(), laggingView{n.log}, []string{"POLICY_ALERT"}, byEntityUUID, snapshotReply); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			total := uint64(2 + 4*perPublisher)

			var before, after []uint64
			var snapshot map[string]uint64
			for len(before)+len(after) < int(total) || snapshot == nil {
				select {
				case m := <-cl.got:
					if rest, ok := strings.CutPrefix(m, "snapshot:"); ok {
						if snapshot != nil {
							t.Fatal("two snapshots")
						}
						if err := json.Unmarshal([]byte(rest), &snapshot); err != nil {
							t.Fatal(err)
						}
						continue
					}
					id, err := strconv.ParseUint(strings.TrimPrefix(m, "s:"), 10, 64)
					if err != nil {
						t.Fatalf("message %q", m)
					}
					if snapshot == nil {
						before = append(before, id)
					} else {
						after = append(after, id)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("got %d events before the snapshot and %d after, snapshot %v; want %d events",
						len(before), len(after), snapshot != nil, total)
				}
			}
			all := append(append([]uint64(nil), before...), after...)
			for i, id := range all {
				if id != uint64(i+1) {
					t.Fatalf("event %d is %d: not every event once and in order", i, id)
				}
			}
			at := uint64(0)
			if len(before) > 0 {
				at = before[len(before)-1]
			}
			want := map[string]uint64{}
			for id := uint64(1); id <= at; id++ {
				want[keyOf[id]] = id
			}
			if len(want) != len(snapshot) {
				t.Fatalf("snapshot at %d has %d keys, want %d: %v vs %v", at, len(snapshot), len(want), snapshot, want)
			}
			for k, id := range want {
				if snapshot[k] != id {
					t.Fatalf("snapshot at %d: %s is %d, want %d (snapshot %v)", at, k, snapshot[k], id, snapshot)
				}
			}
		})
	}
}

// TestSnapshotOfAQuietOrg answers at once when nothing follows, though
// other orgs go on publishing, and goes on delivering live after.
func TestSnapshotOfAQuietOrg(t *testing.T) {
	n := newNode(t, inmem.Config{}, Node{})
	cl := n.connect(t, "org-a", wsconn.Options{})
	cl.subscribe("s", nil)
	n.append(t, "org-a", "k0")
	cl.expect("s:1")
	n.append(t, "org-b", "x", "y")
	n.waitHead(t, 3)
	if err := cl.session.Snapshot(context.Background(), n.log, []string{"POLICY_ALERT"}, byEntityUUID, snapshotReply); err != nil {
		t.Fatal(err)
	}
	cl.expect(`snapshot:{"k0":1}`)
	n.append(t, "org-b", "z")
	n.append(t, "org-a", "k1")
	cl.expect("s:5")
	waitFor(t, "live again", cl.live)
}

// TestSnapshotKeepsOnlyWanted leaves out what key refuses and what is
// not one of the entities.
func TestSnapshotKeepsOnlyWanted(t *testing.T) {
	n := newNode(t, inmem.Config{}, Node{})
	cl := n.connect(t, "org-a", wsconn.Options{})
	cl.subscribe("s", nil)
	n.append(t, "org-a", "k0", "skip", "k1")
	cl.expect("s:1", "s:2", "s:3")
	key := func(e *herald.Event) (string, bool) { return e.EntityUUID, e.EntityUUID != "skip" }
	if err := cl.session.Snapshot(context.Background(), n.log, []string{"POLICY_ALERT"}, key, snapshotReply); err != nil {
		t.Fatal(err)
	}
	cl.expect(`snapshot:{"k0":1,"k1":3}`)
	if err := cl.session.Snapshot(context.Background(), n.log, []string{"OTHER"}, key, snapshotReply); err != nil {
		t.Fatal(err)
	}
	cl.expect(`snapshot:{}`)
}
