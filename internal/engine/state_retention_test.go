package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-gw/herald"
)

// TestStateOutlivesTinyRetention appends many events quickly into a log
// that keeps only a few kilobytes: every entity's newest event must
// reach STATE, including the many that retention removed from the log
// long before the test looks.
func TestStateOutlivesTinyRetention(t *testing.T) {
	e := openTest(t, Config{MaxBytes: 2 << 10})
	ctx := t.Context()
	const entities, rounds, batch = 300, 4, 200
	var records []herald.Record
	for round := range rounds {
		for i := range entities {
			records = append(records, stateRecord("org-a", fmt.Sprint("cam-", i%7), fmt.Sprint("entity-", i), round*entities+i))
		}
	}
	var last uint64
	for len(records) > 0 {
		n := min(batch, len(records))
		ids, err := e.Append(ctx, records[:n])
		if err != nil {
			t.Fatal(err)
		}
		last = ids[n-1]
		records = records[n:]
	}
	waitForStateCopy(t, e)
	// The newest round's first events must be gone from the log, or the
	// test would not show that STATE outlives it.
	waitUntil(t, "retention removes most of the log", func() (bool, error) {
		info, err := e.events.Info(ctx)
		return err == nil && info.State.FirstSeq > last-entities/2, err
	})

	lost := 0
	for i := range entities {
		event, err := e.Latest(ctx, "org-a", herald.StateQuery{EntityUUID: fmt.Sprint("entity-", i)})
		want := (rounds-1)*entities + i
		switch {
		case err != nil:
			lost++
			if lost <= 3 {
				t.Errorf("Latest(entity-%d): %v", i, err)
			}
		case numberIn(t, event) != want:
			lost++
			if lost <= 3 {
				t.Errorf("Latest(entity-%d) gave event %d (n %d), want n %d", i, event.ID, numberIn(t, event), want)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d entities lost their newest event", lost, entities)
	}
	for device := range 7 {
		event, err := e.Latest(ctx, "org-a", herald.StateQuery{DeviceUUID: fmt.Sprint("cam-", device)})
		if err != nil {
			t.Fatalf("Latest(cam-%d): %v", device, err)
		}
		// The newest event of cam-d is the highest i < entities with i%7 == d, in the last round.
		want := (rounds-1)*entities + (entities - 1) - ((entities-1-device)%7+7)%7
		if got := numberIn(t, event); got != want {
			t.Errorf("Latest(cam-%d) gave n %d, want %d", device, got, want)
		}
	}
}

func TestRetentionCut(t *testing.T) {
	for _, c := range []struct {
		name            string
		first, last     uint64
		msgs, bytes     uint64
		young, maxBytes uint64
		want            uint64
	}{
		{"no limits", 1, 100, 100, 10_000, 0, 0, 1},
		{"under max bytes", 1, 100, 100, 10_000, 0, 10_000, 1},
		{"over max bytes", 1, 100, 100, 10_000, 0, 5_000, 51},
		{"one byte over", 11, 110, 100, 10_000, 0, 9_999, 12},
		{"all too young", 1, 100, 100, 10_000, 1, 0, 1},
		{"some too old", 1, 100, 100, 10_000, 40, 0, 40},
		{"every one too old", 1, 100, 100, 10_000, 101, 0, 101},
		{"age cuts more than size", 1, 100, 100, 10_000, 80, 5_000, 80},
		{"size cuts more than age", 1, 100, 100, 10_000, 20, 5_000, 51},
		{"max bytes below one event", 1, 100, 100, 10_000, 0, 1, 101},
		{"huge log", 1, 1 << 40, 1 << 40, 1 << 50, 0, 1 << 49, 1<<39 + 1},
	} {
		state := jetstream.StreamState{FirstSeq: c.first, LastSeq: c.last, Msgs: c.msgs, Bytes: c.bytes}
		if got := retentionCut(state, c.young, c.maxBytes); got != c.want {
			t.Errorf("%s: retentionCut = %d, want %d", c.name, got, c.want)
		}
	}
}

// TestRetentionWaitsForState stops STATE from copying, fills a tiny log
// far past its limit, and checks that retention keeps every event STATE
// has not copied; once STATE copies again, retention catches up and
// STATE holds each entity's newest event.
func TestRetentionWaitsForState(t *testing.T) {
	e := openTest(t, Config{MaxBytes: 2 << 10})
	ctx := t.Context()
	if _, err := e.Append(ctx, []herald.Record{stateRecord("org-a", "cam-0", "before", 0)}); err != nil {
		t.Fatal(err)
	}
	waitForStateCopy(t, e)
	setSourced(t, e, false)

	const entities = 100
	var records []herald.Record
	for i := range 3 * entities {
		records = append(records, stateRecord("org-a", "cam-1", fmt.Sprint("entity-", i%entities), i))
	}
	ids, err := e.Append(ctx, records)
	if err != nil {
		t.Fatal(err)
	}
	copied, err := e.stateCopied(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if copied >= ids[0] {
		t.Fatalf("STATE copied up to %d while its source was removed", copied)
	}
	e.retention.passing.Lock()
	e.retain(ctx) // one pass for sure, however the others fell
	e.retention.passing.Unlock()
	info, err := e.events.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.FirstSeq > copied+1 || info.State.LastSeq != ids[len(ids)-1] {
		t.Fatalf("with STATE stopped at %d, the log holds %d..%d", copied, info.State.FirstSeq, info.State.LastSeq)
	}
	if info.State.Bytes <= 2<<10 {
		t.Fatalf("the log holds %d bytes: it was not past its limit", info.State.Bytes)
	}

	setSourced(t, e, true)
	waitForStateCopy(t, e)
	waitUntil(t, "retention catches up", func() (bool, error) {
		info, err := e.events.Info(ctx)
		return err == nil && info.State.Bytes <= 2<<10+2<<6, err
	})
	for i := range entities {
		event, err := e.Latest(ctx, "org-a", herald.StateQuery{EntityUUID: fmt.Sprint("entity-", i)})
		if err != nil {
			t.Fatalf("Latest(entity-%d): %v", i, err)
		}
		if got := numberIn(t, event); got != 2*entities+i {
			t.Fatalf("Latest(entity-%d) gave n %d, want %d", i, got, 2*entities+i)
		}
	}
}

// setSourced adds or removes STATE's source, as a STATE that stalls
// (a lost leader, a broken route) would behave.
func setSourced(t *testing.T, e *Engine, sourced bool) {
	t.Helper()
	info, err := e.state.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cfg := info.Config
	cfg.Sources = nil
	if sourced {
		cfg.Sources = []*jetstream.StreamSource{{Name: eventsStream}}
	}
	if _, err := e.js.UpdateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
}

// TestMaxAgeKeepsState lets every event of a log age out: STATE still
// answers for each.
func TestMaxAgeKeepsState(t *testing.T) {
	e := openTest(t, Config{MaxAge: time.Second})
	ctx := t.Context()
	var records []herald.Record
	for i := range 50 {
		records = append(records, stateRecord("org-a", "cam-1", fmt.Sprint("entity-", i%10), i))
	}
	ids, err := e.Append(ctx, records)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "every event ages out of the log", func() (bool, error) {
		info, err := e.events.Info(ctx)
		return err == nil && info.State.Msgs == 0 && info.State.FirstSeq > ids[len(ids)-1], err
	})
	for i := range 10 {
		event, err := e.Latest(ctx, "org-a", herald.StateQuery{EntityUUID: fmt.Sprint("entity-", i)})
		if err != nil {
			t.Fatalf("Latest(entity-%d): %v", i, err)
		}
		if got := numberIn(t, event); got != 40+i {
			t.Fatalf("Latest(entity-%d) gave n %d, want %d", i, got, 40+i)
		}
	}
	_, err = e.Replay(ctx, "org-a", 1, 0, func(*herald.Event) error { return nil })
	if herald.ErrorCode(err) != herald.ECONFLICT {
		t.Fatalf("Replay after an aged-out cursor: %v, want ECONFLICT", err)
	}
}

// BenchmarkAppendRetained is BenchmarkAppend/100 on a log that is kept
// at 32 MB, full from the start, so that every append pays its share of
// retention.
func BenchmarkAppendRetained(b *testing.B) {
	const maxBytes = 32 << 20
	e, err := Open(b.Context(), Config{DataDir: b.TempDir(), MaxBytes: maxBytes})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	records := make([]herald.Record, 100)
	for i := range records {
		records[i] = stateRecord("org-a", fmt.Sprint("cam-", i%50), "policy-7", i)
	}
	for range maxBytes / (len(records) * len(records[0].Data)) {
		if _, err := e.Append(b.Context(), records); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.Append(b.Context(), records); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(records)*b.N)/b.Elapsed().Seconds(), "events/s")
}
