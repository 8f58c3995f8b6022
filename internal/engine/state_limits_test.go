package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/herald-gw/herald"
)

// appendDistinct appends n events of n distinct entities (entity-from …),
// as alerts with fresh uuids do, in batches.
func appendDistinct(t *testing.T, e *Engine, from, n int) {
	t.Helper()
	var records []herald.Record
	for i := from; i < from+n; i++ {
		records = append(records, stateRecord("org-a", fmt.Sprint("cam-", i%50), fmt.Sprint("entity-", i), i))
		if len(records) == 500 || i == from+n-1 {
			if _, err := e.Append(t.Context(), records); err != nil {
				t.Fatal(err)
			}
			records = records[:0]
		}
	}
}

// stateDisk returns the size of STATE's block files.
func stateDisk(t *testing.T, dir string) int64 {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "jetstream", "*", "streams", stateStream, "msgs", "*.blk"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no block files of STATE under %s: %v", dir, err)
	}
	var n int64
	for _, f := range files {
		info, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		n += info.Size()
	}
	return n
}

// TestStateLimitsBoundState appends far more distinct entities than a
// state limit admits: STATE's entries, bytes and files stay within it,
// the newest entities stay readable, and the oldest, gone from the log
// and from STATE, are not found. Without a limit, the same run takes
// about 8.4 MB of STATE (350 bytes an entry).
func TestStateLimitsBoundState(t *testing.T) {
	const events = 24000
	for _, c := range []struct {
		name   string
		limits StateLimits
		// disk bounds STATE's files: the limit plus one file store block
		// (4 MiB with a max bytes of up to 32 MiB, 8 MiB otherwise).
		disk int64
	}{
		{"max bytes", StateLimits{MaxBytes: 1 << 20}, 1<<20 + 4<<20},
		{"max entries", StateLimits{MaxEntries: 1000}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			e := openTest(t, Config{DataDir: dir, MaxBytes: 256 << 10, State: c.limits})
			ctx := t.Context()
			var peak int64
			for from := 0; from < events; from += 2000 {
				appendDistinct(t, e, from, 2000)
				peak = max(peak, stateDisk(t, dir))
			}
			waitForStateCopy(t, e)
			info, err := e.state.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			disk := stateDisk(t, dir)
			peak = max(peak, disk)
			t.Logf("%d distinct entities: STATE holds %d entries, %d bytes, %d on disk (peak %d)",
				events, info.State.Msgs, info.State.Bytes, disk, peak)
			if l := c.limits.MaxEntries; l > 0 && info.State.Msgs > uint64(l) {
				t.Errorf("STATE holds %d entries, past its limit of %d", info.State.Msgs, l)
			}
			if l := c.limits.MaxBytes; l > 0 && info.State.Bytes > uint64(l) {
				t.Errorf("STATE holds %d bytes, past its limit of %d", info.State.Bytes, l)
			}
			if c.disk > 0 && peak > c.disk {
				t.Errorf("STATE took %d bytes on disk, past %d", peak, c.disk)
			}
			if info.State.Msgs < 500 {
				t.Errorf("STATE kept only %d entries", info.State.Msgs)
			}

			for i := events - 100; i < events; i++ {
				event, err := e.Latest(ctx, "org-a", herald.StateQuery{EntityUUID: fmt.Sprint("entity-", i)})
				if err != nil {
					t.Fatalf("Latest(entity-%d), one of the newest: %v", i, err)
				}
				if got := numberIn(t, event); got != i {
					t.Fatalf("Latest(entity-%d) gave n %d", i, got)
				}
			}
			_, err = e.Latest(ctx, "org-a", herald.StateQuery{EntityUUID: "entity-0"})
			if herald.ErrorCode(err) != herald.ENOTFOUND {
				t.Fatalf("Latest(entity-0), gone from the log and evicted from STATE: %v, want ENOTFOUND", err)
			}
			// A device's newest event is its last entity's, never an older one.
			event, err := e.Latest(ctx, "org-a", herald.StateQuery{DeviceUUID: "cam-7"})
			if err != nil || numberIn(t, event) != events-50+7 {
				t.Fatalf("Latest(cam-7) = %v, %v; want n %d", event, err, events-50+7)
			}
		})
	}
}

// TestStateMaxAgeEmptiesState lets every STATE entry age out: the state
// view still knows how far it copied, so the lag stays 0, the log's
// retention goes on, and a restart does not copy the log again.
func TestStateMaxAgeEmptiesState(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{DataDir: dir, MaxBytes: 16 << 10, State: StateLimits{MaxAge: time.Second}}
	e := openTest(t, cfg)
	ctx := t.Context()
	appendDistinct(t, e, 0, 200)
	waitForStateCopy(t, e)
	waitUntil(t, "every STATE entry ages out", func() (bool, error) {
		info, err := e.state.Info(ctx)
		return err == nil && info.State.Msgs == 0, err
	})
	if lag, err := e.StateLag(ctx); err != nil || lag != 0 {
		t.Fatalf("StateLag with an empty STATE = %d, %v; want 0", lag, err)
	}
	// The log's first events are held by nothing but retention now.
	waitUntil(t, "retention trims the log", func() (bool, error) {
		info, err := e.events.Info(ctx)
		return err == nil && info.State.Bytes <= 16<<10+1<<10, err
	})
	// Entries still in the log are found there; the others are gone.
	if _, err := e.Latest(ctx, "org-a", herald.StateQuery{EntityUUID: "entity-199"}); err != nil {
		t.Fatalf("Latest(entity-199), still in the log: %v", err)
	}
	if _, err := e.Latest(ctx, "org-a", herald.StateQuery{EntityUUID: "entity-0"}); herald.ErrorCode(err) != herald.ENOTFOUND {
		t.Fatalf("Latest(entity-0), gone from both: %v, want ENOTFOUND", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e = openTest(t, cfg)
	appendDistinct(t, e, 200, 1)
	waitForStateCopy(t, e)
	info, err := e.state.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("after a restart STATE holds %d entries, want only the new one (it copied the log again)", info.State.Msgs)
	}
}

// TestStateLimitChangesOnRestart opens an existing data dir with a lower
// limit, then with none: each takes effect at Open.
func TestStateLimitChangesOnRestart(t *testing.T) {
	dir := t.TempDir()
	e := openTest(t, Config{DataDir: dir, MaxBytes: 128 << 10})
	appendDistinct(t, e, 0, 3000)
	waitForStateCopy(t, e)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e = openTest(t, Config{DataDir: dir, MaxBytes: 128 << 10, State: StateLimits{MaxEntries: 1000}})
	ctx := t.Context()
	waitUntil(t, "the new limit evicts the oldest entries", func() (bool, error) {
		info, err := e.state.Info(ctx)
		return err == nil && info.State.Msgs == 1000, err
	})
	waitUntil(t, "retention trims the log past entity-1999", func() (bool, error) {
		info, err := e.events.Info(ctx)
		return err == nil && info.State.FirstSeq > 2000, err
	})
	if _, err := e.Latest(ctx, "org-a", herald.StateQuery{EntityUUID: "entity-2000"}); err != nil {
		t.Fatalf("Latest(entity-2000), the oldest entry kept: %v", err)
	}
	if _, err := e.Latest(ctx, "org-a", herald.StateQuery{EntityUUID: "entity-1999"}); herald.ErrorCode(err) != herald.ENOTFOUND {
		t.Fatalf("Latest(entity-1999), evicted: %v, want ENOTFOUND", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e = openTest(t, Config{DataDir: dir})
	info, err := e.state.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.MaxMsgs != -1 || info.Config.MaxBytes != -1 || info.Config.MaxAge != 0 {
		t.Fatalf("without limits STATE keeps max msgs %d, bytes %d, age %v", info.Config.MaxMsgs, info.Config.MaxBytes, info.Config.MaxAge)
	}
}

func TestStateLimitsValidated(t *testing.T) {
	for name, limits := range map[string]StateLimits{
		"negative entries": {MaxEntries: -1},
		"negative bytes":   {MaxBytes: -1},
		"negative age":     {MaxAge: -time.Second},
		"bytes too small":  {MaxBytes: MinStateBytes - 1},
		"age too short":    {MaxAge: MinStateAge / 2},
	} {
		if _, err := (Config{DataDir: "x", State: limits}).withDefaults(); herald.ErrorCode(err) != herald.EINVALID {
			t.Errorf("%s: %v, want EINVALID", name, err)
		}
	}
}
