package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/engine"
)

func open(t *testing.T, cfg engine.Config) *engine.Engine {
	t.Helper()
	e, err := engine.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// tagged is a record whose data says who wrote it: writer, append and
// position in the append.
func tagged(org string, writer, append, position int, key string) herald.Record {
	data := fmt.Appendf(nil, `{"org":%q,"channel":"alerts","entity":"POLICY_ALERT","deviceUuid":"dev-%d","w":%d,"a":%d,"p":%d}`,
		org, position%7, writer, append, position)
	return herald.Record{Org: org, Channel: "alerts", Entity: "POLICY_ALERT", DeviceUUID: fmt.Sprint("dev-", position%7), Key: key, Data: data}
}

type tag struct{ W, A, P int }

func tagOf(t *testing.T, event *herald.Event) tag {
	t.Helper()
	var g tag
	if err := json.Unmarshal(event.Body, &g); err != nil {
		t.Fatalf("event %d: %v", event.ID, err)
	}
	return g
}

// TestBatchContiguous proves what Append's ids rely on: the records of
// one atomic batch occupy consecutive sequences even while other batches
// and single records are published concurrently on the same stream.
func TestBatchContiguous(t *testing.T) {
	for name, storage := range map[string]func(*testing.T) engine.Config{"embedded": embedded, "external": external} {
		t.Run(name, func(t *testing.T) {
			e := open(t, storage(t))
			const writers, appends = 8, 40
			ids := make([][][]uint64, writers)
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for w := range writers {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(w), 1))
					for a := range appends {
						n := 1 + rng.IntN(12)
						records := make([]herald.Record, n)
						for p := range records {
							records[p] = tagged("org-a", w, a, p, "")
						}
						got, err := e.Append(t.Context(), records)
						if err != nil {
							errs <- err
							return
						}
						ids[w] = append(ids[w], got)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("Append: %v", err)
			}

			byID := map[uint64]tag{}
			last, err := e.Replay(t.Context(), "org-a", 0, 0, func(event *herald.Event) error {
				byID[event.ID] = tagOf(t, event)
				return nil
			})
			if err != nil {
				t.Fatalf("Replay: %v", err)
			}
			if last != uint64(len(byID)) {
				t.Fatalf("log holds %d events up to id %d: not dense", len(byID), last)
			}
			for w := range writers {
				for a, got := range ids[w] {
					for p, id := range got {
						if id != got[0]+uint64(p) {
							t.Fatalf("writer %d append %d: ids %v are not contiguous", w, a, got)
						}
						if byID[id] != (tag{w, a, p}) {
							t.Fatalf("id %d holds %+v, Append said writer %d append %d position %d", id, byID[id], w, a, p)
						}
					}
				}
			}
		})
	}
}

// TestFollowAcrossRestart stops the external NATS server under a running
// Follow and starts it again on the same port and data: the ordered
// consumer recreates itself and Follow neither skips nor repeats.
func TestFollowAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	ns := startServer(t, -1, dir)
	port := ns.Addr().(*net.TCPAddr).Port
	e := open(t, engine.Config{NATSURLs: []string{ns.ClientURL()}})

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	appendKeyed := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			// A keyed record may be retried blindly: an attempt that
			// failed after all was stored answers with its first id.
			record := tagged("org-a", 0, i, 0, fmt.Sprint("key-", i))
			for {
				ids, err := e.Append(ctx, []herald.Record{record})
				if err == nil {
					if ids[0] != uint64(i+1) {
						t.Fatalf("record %d got id %d", i, ids[0])
					}
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("Append: %v", err)
				}
			}
		}
	}

	events := make(chan *herald.Event, 1000)
	done := make(chan error, 1)
	go func() { done <- e.Follow(ctx, 0, func(event *herald.Event) { events <- event }) }()
	expect := func(from, to uint64) {
		t.Helper()
		for want := from; want <= to; want++ {
			select {
			case event := <-events:
				if event.ID != want {
					t.Fatalf("Follow delivered %d, want %d", event.ID, want)
				}
			case <-ctx.Done():
				t.Fatalf("Follow did not deliver %d", want)
			}
		}
	}

	appendKeyed(0, 50)
	expect(1, 50)
	ns.Shutdown()
	ns.WaitForShutdown()
	startServer(t, port, dir)
	appendKeyed(50, 100)
	expect(51, 100)

	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Follow returned %v, want context.Canceled", err)
	}
	select {
	case event := <-events:
		t.Fatalf("Follow delivered an extra event %d", event.ID)
	default:
	}
}

func TestSyncAlways(t *testing.T) {
	e := open(t, engine.Config{DataDir: t.TempDir(), Sync: engine.SyncAlways})
	one, err := e.Append(t.Context(), []herald.Record{tagged("org-a", 0, 0, 0, "k")})
	if err != nil || one[0] != 1 {
		t.Fatalf("Append = %v, %v", one, err)
	}
	many, err := e.Append(t.Context(), []herald.Record{tagged("org-a", 0, 1, 0, ""), tagged("org-a", 0, 1, 1, "")})
	if err != nil || many[0] != 2 || many[1] != 3 {
		t.Fatalf("Append = %v, %v", many, err)
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]engine.Config{
		"no data dir":             {},
		"unknown sync":            {DataDir: t.TempDir(), Sync: "sometimes"},
		"replicas when embedded":  {DataDir: t.TempDir(), Replicas: 3},
		"negative max batch":      {DataDir: t.TempDir(), MaxBatch: -1},
		"negative dedupe window":  {DataDir: t.TempDir(), DedupeWindow: -time.Second},
		"negative replicas":       {NATSURLs: []string{"nats://127.0.0.1:1"}, Replicas: -1},
		"negative max bytes":      {DataDir: t.TempDir(), MaxBytes: -1},
		"negative sync interval":  {DataDir: t.TempDir(), SyncInterval: -time.Second},
		"negative max age":        {DataDir: t.TempDir(), MaxAge: -time.Second},
		"negative max age, extra": {NATSURLs: []string{"nats://127.0.0.1:1"}, MaxAge: -time.Second},
	} {
		if _, err := engine.Open(t.Context(), cfg); herald.ErrorCode(err) != herald.EINVALID {
			t.Errorf("%s: Open = %v, want an EINVALID error", name, err)
		}
	}
	_, err := engine.Open(t.Context(), engine.Config{NATSURLs: []string{"nats://127.0.0.1:1"}})
	if herald.ErrorCode(err) != herald.EUNAVAILABLE {
		t.Errorf("Open of an unreachable cluster = %v, want an EUNAVAILABLE error", err)
	}
}

func TestMode(t *testing.T) {
	if mode := open(t, embedded(t)).Mode(); mode != engine.ModeEmbedded {
		t.Errorf("embedded engine reports mode %q", mode)
	}
	if mode := open(t, external(t)).Mode(); mode != engine.ModeExternal {
		t.Errorf("external engine reports mode %q", mode)
	}
}
