package enginetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/herald-gw/herald"
)

func testAppend(t *testing.T, storage Storage) {
	e := storage(t, Limits{})
	ctx := testContext(t)

	if id := lastID(t, e); id != 0 {
		t.Fatalf("LastID of an empty log is %d", id)
	}
	if ids, err := e.Append(ctx, nil); ids != nil || err != nil {
		t.Fatalf("Append(nil) = %v, %v; want nil, nil", ids, err)
	}
	one := mustAppend(t, e, simple("org-a", 0))
	if one[0] != 1 {
		t.Fatalf("first id is %d, want 1", one[0])
	}
	many := mustAppend(t, e, simple("org-a", 1), simple("org-a", 2), simple("org-a", 3), simple("org-a", 4), simple("org-a", 5))
	if !dense(many, 2) {
		t.Fatalf("batch ids %v, want 2..6", many)
	}
	again := mustAppend(t, e, simple("org-a", 6), simple("org-a", 7))
	if !dense(again, 7) {
		t.Fatalf("second batch ids %v, want 7..8", again)
	}
	if id := lastID(t, e); id != 8 {
		t.Fatalf("LastID is %d, want 8", id)
	}

	_, err := e.Append(ctx, []herald.Record{simple("org-a", 8), simple("org-b", 9)})
	wantCode(t, err, herald.EINVALID)
	_, err = e.Append(ctx, []herald.Record{simple("org.a", 8)})
	wantCode(t, err, herald.EINVALID)
	if id := lastID(t, e); id != 8 {
		t.Fatalf("rejected appends stored something: LastID %d", id)
	}

	events := replay(t, e, "org-a", 0, 0)
	for i, event := range events {
		if event.ID != uint64(i+1) || numberOf(t, event) != i || event.Org != "org-a" {
			t.Fatalf("event %d: id %d, n %d, org %s", i, event.ID, numberOf(t, event), event.Org)
		}
		if event.Channel != herald.ChannelAlerts || event.DeviceUUID != "device-1" || event.EntityUUID != "entity-1" {
			t.Fatalf("event %d decoded as %+v", event.ID, event)
		}
	}
	if len(events) != 8 {
		t.Fatalf("replayed %d events, want 8", len(events))
	}
}

// testAppendAtomic checks what is whole-or-nothing: AppendAtomic always,
// and Append for everything it rejects before publishing (too many
// records, a record too large, two orgs). It is about the NATS engine's
// atomic batches and limits: other engines skip it.
func testAppendAtomic(t *testing.T, storage Storage) {
	opened := storage(t, Limits{MaxBatch: 4})
	e, ok := opened.(interface {
		Engine
		atomicAppender
	})
	if !ok {
		t.Skip("the engine has no atomic batches")
	}
	ctx := testContext(t)
	mustAppend(t, e, simple("org-a", 0))

	// The second record is over NATS's 1 MB payload limit.
	huge := simple("org-a", 7)
	huge.Data = []byte(`{"org":"org-a","padding":"` + strings.Repeat("x", 2<<20) + `"}`)
	tooMany := []herald.Record{simple("org-a", 1), simple("org-a", 2), simple("org-a", 3), simple("org-a", 4), simple("org-a", 5)}
	for name, appendFn := range map[string]func(context.Context, []herald.Record) ([]uint64, error){
		"Append": e.Append, "AppendAtomic": e.AppendAtomic,
	} {
		_, err := appendFn(ctx, tooMany)
		wantCode(t, err, herald.ETOOLARGE)
		_, err = appendFn(ctx, []herald.Record{simple("org-a", 6), huge, simple("org-a", 8)})
		wantCode(t, err, herald.ETOOLARGE)
		if id := lastID(t, e); id != 1 {
			t.Fatalf("%s: failed batches stored something: LastID %d", name, id)
		}
	}

	next, err := e.AppendAtomic(ctx, []herald.Record{simple("org-a", 9), simple("org-a", 10)})
	if err != nil {
		t.Fatalf("AppendAtomic: %v", err)
	}
	if !dense(next, 2) {
		t.Fatalf("ids after failed batches %v, want 2..3", next)
	}
	var tags []int
	for _, event := range replay(t, e, "org-a", 0, 0) {
		tags = append(tags, numberOf(t, event))
	}
	if len(tags) != 3 || tags[0] != 0 || tags[1] != 9 || tags[2] != 10 {
		t.Fatalf("stored events %v, want [0 9 10]", tags)
	}
}

// testAppendRetry checks the promise Append makes when it fails midway:
// a producer that retries the whole request with keys gets every event
// stored once, with the ids of those already stored, in request order.
func testAppendRetry(t *testing.T, storage Storage) {
	e := storage(t, Limits{})
	ctx := testContext(t)
	appends := map[string]func(context.Context, []herald.Record) ([]uint64, error){"Append": e.Append}
	if atomic, ok := e.(atomicAppender); ok {
		appends["AppendAtomic"] = atomic.AppendAtomic
	}
	for name, appendFn := range appends {
		request := make([]herald.Record, 5)
		for i := range request {
			request[i] = record(fields{org: "org-a", device: "device-1", key: fmt.Sprint(name, "-", i), n: i + 1})
		}
		// A failed request stored its first and third events only.
		partial := mustAppend(t, e, request[0], request[2])
		retried, err := appendFn(ctx, request)
		if err != nil {
			t.Fatalf("%s: retry: %v", name, err)
		}
		if retried[0] != partial[0] || retried[2] != partial[1] {
			t.Fatalf("%s: retry got ids %v, the stored events have %v", name, retried, partial)
		}
		if retried[1] <= partial[1] || retried[3] <= retried[1] || retried[4] <= retried[3] {
			t.Fatalf("%s: new events of the retry got ids %v, not after %d in request order", name, retried, partial[1])
		}
		again, err := appendFn(ctx, request)
		if err != nil || !equalIDs(again, retried) {
			t.Fatalf("%s: second retry got %v, %v; want %v", name, again, err, retried)
		}
	}
	var tags []int
	for _, event := range replay(t, e, "org-a", 0, 0) {
		tags = append(tags, numberOf(t, event))
	}
	var want []int
	for range appends {
		want = append(want, 1, 3, 2, 4, 5)
	}
	if len(tags) != len(want) {
		t.Fatalf("stored %v, want %v", tags, want)
	}
	for i := range want {
		if tags[i] != want[i] {
			t.Fatalf("stored %v, want %v", tags, want)
		}
	}
}

func testDedupe(t *testing.T, storage Storage) {
	e := storage(t, Limits{})
	keyed := func(org, key string, n int) herald.Record {
		return record(fields{org: org, device: "device-1", key: key, n: n})
	}

	first := mustAppend(t, e, keyed("org-a", "k1", 1))
	retry := mustAppend(t, e, keyed("org-a", "k1", 2))
	if retry[0] != first[0] {
		t.Fatalf("repeated key got id %d, the original is %d", retry[0], first[0])
	}

	batch := mustAppend(t, e, keyed("org-a", "k2", 3), keyed("org-a", "k3", 4), keyed("org-a", "k4", 5))
	stored := lastID(t, e)
	again := mustAppend(t, e, keyed("org-a", "k2", 3), keyed("org-a", "k3", 4), keyed("org-a", "k4", 5))
	if !equalIDs(batch, again) {
		t.Fatalf("retried batch got ids %v, the original %v", again, batch)
	}
	if id := lastID(t, e); id != stored {
		t.Fatalf("retried batch stored something: LastID %d, was %d", id, stored)
	}

	// A batch mixing a stored key with a new one: the old id and a new one.
	mixed := mustAppend(t, e, keyed("org-a", "k3", 6), keyed("org-a", "k5", 7))
	if mixed[0] != batch[1] || mixed[1] != stored+1 {
		t.Fatalf("mixed batch ids %v, want [%d %d]", mixed, batch[1], stored+1)
	}

	// A key repeated inside one batch is stored once.
	inside := mustAppend(t, e, keyed("org-a", "k6", 8), keyed("org-a", "", 9), keyed("org-a", "k6", 10))
	if inside[2] != inside[0] || inside[1] != inside[0]+1 {
		t.Fatalf("batch with a repeated key got ids %v", inside)
	}

	// Keys belong to an org; records without a key are never deduplicated.
	other := mustAppend(t, e, keyed("org-b", "k1", 11))
	if other[0] == first[0] {
		t.Fatalf("another org's key k1 was deduplicated against org-a's")
	}
	plain1 := mustAppend(t, e, keyed("org-a", "", 12))
	plain2 := mustAppend(t, e, keyed("org-a", "", 12))
	if plain1[0] == plain2[0] {
		t.Fatalf("records without a key were deduplicated")
	}

	var tags []int
	for _, event := range replay(t, e, "org-a", 0, 0) {
		tags = append(tags, numberOf(t, event))
	}
	want := []int{1, 3, 4, 5, 7, 8, 9, 12, 12}
	if len(tags) != len(want) {
		t.Fatalf("stored %v, want %v", tags, want)
	}
	for i := range want {
		if tags[i] != want[i] {
			t.Fatalf("stored %v, want %v", tags, want)
		}
	}
}

func testReplay(t *testing.T, storage Storage) {
	e := storage(t, Limits{})
	ctx := testContext(t)

	// Interleave two orgs, one of them with a name that prefixes the other.
	var idsA, idsB []uint64
	for i := range 10 {
		idsA = append(idsA, mustAppend(t, e, simple("org-a", i))...)
		if i%2 == 0 {
			idsB = append(idsB, mustAppend(t, e, simple("org-a2", 100+i), simple("org-a2", 101+i))...)
		}
	}

	all := replay(t, e, "org-a", 0, 0)
	if !equalIDs(ids(all), idsA) {
		t.Fatalf("Replay(org-a) gave%s, want ids %v", describe(all), idsA)
	}
	for i, event := range all {
		if event.Org != "org-a" || numberOf(t, event) != i {
			t.Fatalf("Replay(org-a) event %d: org %s n %d", event.ID, event.Org, numberOf(t, event))
		}
	}
	if got := replay(t, e, "org-a2", 0, 0); !equalIDs(ids(got), idsB) {
		t.Fatalf("Replay(org-a2) gave%s, want ids %v", describe(got), idsB)
	}

	ranges := []struct {
		name         string
		after, until uint64
		want         []uint64
	}{
		{"after", idsA[6], 0, idsA[7:]},
		{"until", 0, idsA[3], idsA[:4]},
		{"window", idsA[2], idsA[6], idsA[3:7]},
		{"until between events", idsA[2], idsA[6] - 1, idsA[3:6]},
		{"after the end", idsA[9], 0, nil},
		{"until before after", idsA[5], idsA[3], nil},
		{"until beyond the end", idsA[7], 1 << 40, idsA[8:]},
	}
	for _, r := range ranges {
		got := replay(t, e, "org-a", r.after, r.until)
		if !equalIDs(ids(got), r.want) {
			t.Errorf("%s: Replay(org-a, %d, %d) gave%s, want %v", r.name, r.after, r.until, describe(got), r.want)
		}
	}
	if got := replay(t, e, "org-none", 0, 0); len(got) != 0 {
		t.Fatalf("Replay of an org without events gave%s", describe(got))
	}

	stop := errors.New("stop")
	var seen int
	last, err := e.Replay(ctx, "org-a", 0, 0, func(*herald.Event) error {
		seen++
		if seen == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || last != idsA[2] || seen != 3 {
		t.Fatalf("Replay stopped by fn: last %d, err %v, calls %d; want %d, stop, 3", last, err, seen, idsA[2])
	}

	_, err = e.Replay(ctx, "org.a", 0, 0, func(*herald.Event) error { return nil })
	wantCode(t, err, herald.EINVALID)

	testReplayLong(t, e)
}

// testReplayLong replays more events than a reader fetches at once, from
// the start and from a cursor, with another org's events between them:
// 12k events of the org in 13.2k, so that the replay from the start reads
// the whole log and skips the other org's events itself (see
// engine.readAllShare), and the one from the cursor has the server filter.
func testReplayLong(t *testing.T, e Engine) {
	var want []uint64
	for b := range 12 {
		for org, n := range map[string]int{"org-a": 1000, "org-a2": 100} {
			batch := make([]herald.Record, 0, n)
			for i := range cap(batch) {
				batch = append(batch, simple(org, b*1000+i))
			}
			if ids := mustAppend(t, e, batch...); org == "org-a" {
				want = append(want, ids...)
			}
		}
	}
	prefix := len(replay(t, e, "org-a", 0, 0)) - len(want) // events of org-a from before
	for _, from := range []int{0, len(want) / 3} {
		after := uint64(0)
		if from > 0 {
			after = want[from-1]
		}
		got := ids(replay(t, e, "org-a", after, 0))
		if from == 0 {
			got = got[prefix:]
		}
		if !equalIDs(got, want[from:]) {
			t.Fatalf("long Replay(org-a, %d): %d events, want %d, ids in order without gaps", after, len(got), len(want[from:]))
		}
	}
}

func testFollow(t *testing.T, storage Storage) {
	e := storage(t, Limits{})
	for i := range 10 {
		org := "org-a"
		if i%3 == 0 {
			org = "org-b"
		}
		mustAppend(t, e, simple(org, i))
	}

	follow := func(after uint64) (<-chan *herald.Event, func() error) {
		ctx, cancel := context.WithCancel(testContext(t))
		events := make(chan *herald.Event, 100)
		done := make(chan error, 1)
		go func() { done <- e.Follow(ctx, after, func(event *herald.Event) { events <- event }) }()
		return events, func() error { cancel(); return <-done }
	}
	expect := func(events <-chan *herald.Event, from, to uint64) {
		t.Helper()
		for want := from; want <= to; want++ {
			select {
			case event := <-events:
				if event.ID != want || numberOf(t, event) != int(want-1) {
					t.Fatalf("Follow delivered %d (n %d), want %d", event.ID, numberOf(t, event), want)
				}
			case <-testContext(t).Done():
				t.Fatalf("Follow did not deliver %d", want)
			}
		}
	}

	fromStart, stopStart := follow(0)
	fromMiddle, stopMiddle := follow(7)
	expect(fromStart, 1, 10)
	expect(fromMiddle, 8, 10)

	for i := 10; i < 20; i++ {
		mustAppend(t, e, simple("org-a", i))
	}
	batch := []herald.Record{}
	for i := 20; i < 30; i++ {
		batch = append(batch, simple("org-b", i))
	}
	mustAppend(t, e, batch...)
	expect(fromStart, 11, 30)
	expect(fromMiddle, 11, 30)

	if err := stopStart(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow returned %v after cancel, want context.Canceled", err)
	}
	if err := stopMiddle(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow returned %v after cancel, want context.Canceled", err)
	}
	select {
	case event := <-fromStart:
		t.Fatalf("Follow delivered an extra event %d", event.ID)
	default:
	}
}
