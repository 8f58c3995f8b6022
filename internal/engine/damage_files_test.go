package engine_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/engine"
)

// TestDamagedEventsFiles damages each file of the EVENTS stream but its
// blocks' middles (damage_test.go): the index, the metadata and its
// checksum, the last block's tail, and the stream or the whole store.
// nats-server rebuilds a bad index from the blocks, and skips a stream
// whose metadata it cannot read, which Open then creates again over the
// same blocks: those serve every event. Whatever loses the log's end is
// refused, and never starts an empty log that hands out id 1 again.
func TestDamagedEventsFiles(t *testing.T) {
	f := smallFixture(t)
	allKept := func(t *testing.T, e *engine.Engine, acked uint64) {
		t.Helper()
		if last, err := e.LastID(t.Context()); err != nil || last != acked {
			t.Fatalf("LastID: %d, %v, want %d", last, err, acked)
		}
		assertEvents(t, e, int(acked))
	}
	lastBlockTail := func(b byte) func(*testing.T, string) {
		return func(t *testing.T, dir string) {
			blks, _ := filepath.Glob(filepath.Join(dir, "msgs", "*.blk"))
			overwriteTail(t, blks[len(blks)-1], 100, b)
		}
	}
	for _, tc := range []damageCase{
		// nats-server rebuilds a missing index from the blocks and says
		// nothing: nothing was lost.
		{name: "index.db removed", asset: "EVENTS", damage: remove("msgs/index.db"), served: allKept},
		{name: "index.db garbage", asset: "EVENTS", damage: garbage("msgs/index.db"), served: allKept,
			warning: []string{"[EVENTS]", "corrupt state file"}},
		{name: "index.db truncated", asset: "EVENTS", damage: truncateHalf("msgs/index.db"), served: allKept,
			warning: []string{"[EVENTS]", "Stream state checksum did not match"}},
		{name: "meta.inf removed", asset: "EVENTS", damage: remove("meta.inf"), served: allKept,
			warning: []string{"Missing stream metafile", "EVENTS/meta.inf"}},
		{name: "meta.inf garbage", asset: "EVENTS", damage: garbage("meta.inf"), served: allKept,
			warning: []string{"EVENTS/meta.inf", "checksums do not match"}},
		{name: "meta.inf truncated", asset: "EVENTS", damage: truncateHalf("meta.inf"), served: allKept,
			warning: []string{"EVENTS/meta.inf", "checksums do not match"}},
		{name: "meta.sum removed", asset: "EVENTS", damage: remove("meta.sum"), served: allKept,
			warning: []string{"Missing stream checksum file", "EVENTS/meta.sum"}},
		{name: "meta.sum garbage", asset: "EVENTS", damage: garbage("meta.sum"), served: allKept,
			warning: []string{"EVENTS/meta.inf", "checksums do not match"}},
		{name: "last block's tail zeroed", asset: "EVENTS", damage: lastBlockTail(0), refused: true,
			warning: []string{"[EVENTS]", "last block"}},
		{name: "last block's tail garbage", asset: "EVENTS", damage: lastBlockTail(0xa5), refused: true,
			warning: []string{"[EVENTS]", "last block"}},
		{name: "the only block removed", asset: "EVENTS", damage: remove("msgs/1.blk"), refused: true,
			warning: []string{"[EVENTS]", "could not locate msg block 1"}},
		{name: "EVENTS directory removed", asset: "EVENTS", damage: removeAll, refused: true},
		{name: "jetstream directory removed", damage: func(t *testing.T, dir string) {
			removeAll(t, filepath.Join(dir, "jetstream"))
		}, refused: true},
	} {
		t.Run(tc.name, func(t *testing.T) { f.run(t, tc) })
	}
}

// TestDamagedBlocks removes one of several EVENTS block files. Without
// the first, the log starts later and a cursor before it gets the
// "events lost" error; without one in the middle, replays skip its
// events; without the last, the log's end is gone and Open refuses.
func TestDamagedBlocks(t *testing.T) {
	f := largeFixture(t)
	blockOf := func(i int) func(*testing.T, string) {
		return func(t *testing.T, dir string) {
			blks, _ := filepath.Glob(filepath.Join(dir, "msgs", "*.blk"))
			if len(blks) != 3 {
				t.Fatalf("want three block files, found %q", blks)
			}
			remove(filepath.Join("msgs", filepath.Base(blocks(t, f.dir, "EVENTS")[i])))(t, dir)
		}
	}
	for _, tc := range []damageCase{
		{name: "first of three", asset: "EVENTS", damage: blockOf(0),
			warning: []string{"[EVENTS]", "could not locate msg block 1"},
			served: func(t *testing.T, e *engine.Engine, acked uint64) {
				if last, err := e.LastID(t.Context()); err != nil || last != acked {
					t.Fatalf("LastID: %d, %v, want %d", last, err, acked)
				}
				_, err := e.Replay(t.Context(), "org-a", 1, 0, func(*herald.Event) error { return nil })
				if herald.ErrorCode(err) != herald.ECONFLICT {
					t.Fatalf("replay after id 1 with the first block gone: %v, want the events-lost conflict", err)
				}
			}},
		{name: "middle of three", asset: "EVENTS", damage: blockOf(1),
			warning: []string{"[EVENTS]", "could not locate msg block 2"},
			served: func(t *testing.T, e *engine.Engine, acked uint64) {
				n := 0
				if _, err := e.Replay(t.Context(), "org-a", 0, 0, func(*herald.Event) error { n++; return nil }); err != nil {
					t.Fatal(err)
				}
				if n == 0 || n >= int(acked) {
					t.Fatalf("the log replays %d of %d events, want the middle block's missing", n, acked)
				}
			}},
		{name: "last of three", asset: "EVENTS", damage: blockOf(2), refused: true,
			warning: []string{"[EVENTS]", "could not locate msg block 3"}},
	} {
		t.Run(tc.name, func(t *testing.T) { f.run(t, tc) })
	}
}

// TestDamagedStateAndRegistry damages STATE and the KV buckets. None of
// them holds event ids, so Open serves; the server's warning names the
// stream or file. STATE copies the log again from what it retains; a
// bucket's lost block takes its entries (here the API key) with it, and
// the way out is a backup, or the config that declares them (stored again
// at every start).
func TestDamagedStateAndRegistry(t *testing.T) {
	f := smallFixture(t)
	// A damaged STATE is not copied again (the server keeps its source
	// position), so what it alone held is lost; what the log still holds
	// answers from the log: each device's newest event is still its
	// newest, and retention is not held back.
	stateServed := func(t *testing.T, e *engine.Engine, _ uint64) {
		t.Helper()
		waitStateCaughtUp(t, e)
		for d := range 7 {
			event, err := e.Latest(t.Context(), "org-a", herald.StateQuery{DeviceUUID: fmt.Sprint("dev-", d)})
			if err != nil || event.ID <= 2993 {
				t.Fatalf("Latest of dev-%d: %+v, %v, want one of the last 7 events", d, event, err)
			}
		}
	}
	keyLost := func(t *testing.T, e *engine.Engine, _ uint64) {
		t.Helper()
		if _, err := e.APIKey(t.Context(), herald.HashAPIKey("hk_test")); herald.ErrorCode(err) != herald.ENOTFOUND {
			t.Fatalf("APIKey after its block was removed: %v, want not found", err)
		}
	}
	keyKept := func(t *testing.T, e *engine.Engine, _ uint64) {
		t.Helper()
		if _, err := e.APIKey(t.Context(), herald.HashAPIKey("hk_test")); err != nil {
			t.Fatalf("APIKey: %v", err)
		}
	}
	settingKept := func(t *testing.T, e *engine.Engine, _ uint64) {
		t.Helper()
		if v, err := e.Setting(t.Context(), "bootstrap"); err != nil || v != "org-a" {
			t.Fatalf("Setting: %q, %v", v, err)
		}
	}
	for _, tc := range []damageCase{
		{name: "STATE block removed", asset: "STATE", damage: remove("msgs/1.blk"), served: stateServed,
			warning: []string{"[STATE]", "could not locate msg block 1"}},
		{name: "STATE index.db garbage", asset: "STATE", damage: garbage("msgs/index.db"), served: stateServed,
			warning: []string{"[STATE]", "corrupt state file"}},
		{name: "STATE meta.inf garbage", asset: "STATE", damage: garbage("meta.inf"), served: stateServed,
			warning: []string{"STATE/meta.inf", "checksums do not match"}},
		{name: "herald_keys block removed", asset: "KV_herald_keys", damage: remove("msgs/1.blk"), served: keyLost,
			warning: []string{"[KV_herald_keys]", "could not locate msg block 1"}},
		{name: "herald_keys meta.inf removed", asset: "KV_herald_keys", damage: remove("meta.inf"), served: keyKept,
			warning: []string{"Missing stream metafile", "KV_herald_keys/meta.inf"}},
		{name: "herald_settings meta.sum garbage", asset: "KV_herald_settings", damage: garbage("meta.sum"), served: settingKept,
			warning: []string{"KV_herald_settings/meta.inf", "checksums do not match"}},
		{name: "herald_settings index.db truncated", asset: "KV_herald_settings", damage: truncateHalf("msgs/index.db"), served: settingKept,
			warning: []string{"[KV_herald_settings]", "Stream state checksum did not match"}},
	} {
		t.Run(tc.name, func(t *testing.T) { f.run(t, tc) })
	}
}

// TestDamagedMarkFile: a herald-acked-id that does not hold an id is
// never read as 0 (which would let a cut log hand out ids again): Open
// refuses, naming the file and the way out.
func TestDamagedMarkFile(t *testing.T) {
	for _, content := range []string{"", "garbage\n", "3000 12 7\n", "-5\n"} {
		t.Run(fmt.Sprintf("%q", content), func(t *testing.T) {
			dir := t.TempDir()
			e := open(t, engine.Config{DataDir: dir})
			if _, err := e.Append(t.Context(), []herald.Record{tagged("org-a", 0, 0, 0, "")}); err != nil {
				t.Fatal(err)
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "herald-acked-id")
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := engine.Open(t.Context(), engine.Config{DataDir: dir})
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "echo ID >") {
				t.Fatalf("Open with %q in the mark file: %v, want a refusal naming %s and the way out", content, err, path)
			}
		})
	}
}
