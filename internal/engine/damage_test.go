package engine_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/engine"
)

// TestDamagedDataDir damages the EVENTS block file of a closed engine
// the ways issue 9 saw, and checks that Open refuses to reuse event ids,
// and that with AcceptDataLoss the next id is past every one acknowledged.
func TestDamagedDataDir(t *testing.T) {
	for _, tc := range []struct {
		name    string
		refused bool
		damage  func(t *testing.T, blk string)
	}{
		{"zeroed 64 bytes at a record in the middle", true, func(t *testing.T, blk string) {
			zero(t, blk, recordAfter(t, blk, 0.5), 64)
		}},
		{"zeroed 64 bytes inside a record in the middle", false, func(t *testing.T, blk string) {
			zero(t, blk, recordAfter(t, blk, 0.5)+40, 64)
		}},
		{"truncated to half", true, func(t *testing.T, blk string) {
			info, err := os.Stat(blk)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(blk, info.Size()/2); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated to 0", true, func(t *testing.T, blk string) {
			if err := os.Truncate(blk, 0); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			e := open(t, engine.Config{DataDir: dir})
			append3000(t, e)
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			blks, _ := filepath.Glob(filepath.Join(dir, "jetstream", "*", "streams", "EVENTS", "msgs", "*.blk"))
			if len(blks) != 1 {
				t.Fatalf("want one EVENTS block file, found %q", blks)
			}
			tc.damage(t, blks[0])

			if !tc.refused {
				// nats-server skips the damaged record when it reads it and
				// keeps the log's end: an event is lost, no id is reused.
				e = open(t, engine.Config{DataDir: dir})
				assertNextAfter(t, e, 3000)
				return
			}
			_, err := engine.Open(t.Context(), engine.Config{DataDir: dir})
			if err == nil || !strings.Contains(err.Error(), "3000") || !strings.Contains(err.Error(), "AcceptDataLoss") {
				t.Fatalf("Open on a damaged log: %v, want an error naming id 3000 and the way out", err)
			}

			e = open(t, engine.Config{DataDir: dir, AcceptDataLoss: true})
			if !e.DataLoss() {
				t.Error("DataLoss() is false on an engine that moved past lost events")
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			// Accepted once, the emptied log is no sign of damage.
			e = open(t, engine.Config{DataDir: dir})
			ids := assertNextAfter(t, e, 3000)
			if e.DataLoss() {
				t.Error("DataLoss() is true on a later clean start")
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			e = open(t, engine.Config{DataDir: dir})
			if last, err := e.LastID(t.Context()); err != nil || last != ids[0] {
				t.Fatalf("LastID after reopening: %d, %v, want %d", last, err, ids[0])
			}
		})
	}
}

// assertNextAfter appends one event and fails unless its id is above id.
func assertNextAfter(t *testing.T, e *engine.Engine, id uint64) []uint64 {
	t.Helper()
	ids, err := e.Append(t.Context(), []herald.Record{tagged("org-a", 1, 0, 0, "")})
	if err != nil {
		t.Fatal(err)
	}
	if ids[0] <= id {
		t.Fatalf("the next id is %d, reusing an acknowledged one (up to %d)", ids[0], id)
	}
	return ids
}

// recordAfter returns the offset of the first record of a block file that
// starts at or after fraction of its size. A record starts with its length
// (uint32, little endian, the top bit flagging headers): nats-server's
// filestore.go, msgBlock.writeMsgRecordLocked.
func recordAfter(t *testing.T, blk string, fraction float64) int64 {
	t.Helper()
	b, err := os.ReadFile(blk)
	if err != nil {
		t.Fatal(err)
	}
	want := int64(float64(len(b)) * fraction)
	for off := int64(0); off+4 <= int64(len(b)); {
		if off >= want {
			return off
		}
		rl := int64(binary.LittleEndian.Uint32(b[off:]) &^ (1 << 31))
		if rl == 0 {
			break
		}
		off += rl
	}
	t.Fatalf("no record at or after %d in %s", want, blk)
	return 0
}

func zero(t *testing.T, path string, off int64, n int) {
	t.Helper()
	overwrite(t, path, off, n, 0)
}
