package enginetest

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-gw/herald"
)

func testSessions(t *testing.T, storage Storage) {
	e := storage(t, Limits{})
	ctx := testContext(t)
	expires := time.Now().Add(time.Hour)

	// Ids are opaque: these must be four different sessions.
	sessions := []herald.DetachedSession{
		{ID: "s.1", Org: "org-a", Dialect: "stomp", After: 42, State: []byte(`{"subscriptions":[{"id":"sub-0","destination":"/topic/change/org-a"}]}`), Expires: expires},
		{ID: "s_1", Org: "org-a", Dialect: "channels", After: 7, Expires: expires},
		{ID: "s 1*>/é", Org: "org-b", Dialect: "ess", After: 0, State: []byte(`{}`), Expires: expires},
		{ID: strings.Repeat("x", 300), Org: "org-b", Dialect: "streams", After: 1 << 40, Expires: expires},
	}
	for _, s := range sessions {
		if err := e.SaveSession(ctx, s); err != nil {
			t.Fatalf("SaveSession(%q): %v", s.ID, err)
		}
	}
	for _, want := range sessions {
		got, err := e.TakeSession(ctx, want.ID)
		if err != nil {
			t.Fatalf("TakeSession(%q): %v", want.ID, err)
		}
		if !sameSession(got, want) {
			t.Fatalf("TakeSession(%q) = %+v, want %+v", want.ID, got, want)
		}
		_, err = e.TakeSession(ctx, want.ID)
		wantCode(t, err, herald.ENOTFOUND)
	}

	// Saving an id again replaces the session, also after a take.
	for _, after := range []uint64{5, 9} {
		if err := e.SaveSession(ctx, herald.DetachedSession{ID: "again", Org: "org-a", After: after, Expires: expires}); err != nil {
			t.Fatalf("SaveSession: %v", err)
		}
	}
	if got, err := e.TakeSession(ctx, "again"); err != nil || got.After != 9 {
		t.Fatalf("TakeSession of a replaced session = %+v, %v; want After 9", got, err)
	}
	if err := e.SaveSession(ctx, herald.DetachedSession{ID: "again", Org: "org-a", After: 11, Expires: expires}); err != nil {
		t.Fatalf("SaveSession after a take: %v", err)
	}
	if got, err := e.TakeSession(ctx, "again"); err != nil || got.After != 11 {
		t.Fatalf("TakeSession of a session saved after a take = %+v, %v; want After 11", got, err)
	}

	for _, id := range []string{"unknown", "", strings.Repeat("long id ", 1<<17)} {
		_, err := e.TakeSession(ctx, id)
		wantCode(t, err, herald.ENOTFOUND)
	}
	wantCode(t, e.SaveSession(ctx, herald.DetachedSession{Org: "org-a", Expires: expires}), herald.EINVALID)
	wantCode(t, e.SaveSession(ctx, herald.DetachedSession{ID: "no expiry", Org: "org-a"}), herald.EINVALID)
	// The engine still answers after the hostile id.
	if err := e.SaveSession(ctx, herald.DetachedSession{ID: "last", Org: "org-a", Expires: expires}); err != nil {
		t.Fatalf("SaveSession: %v", err)
	}
}

// testSessionExpiry checks that a session is not taken once its Expires
// has passed, even if it is still stored, and that saving an expired
// session replaces a live one. (That storage of expired sessions is
// reclaimed is each engine's own test: it takes the engine's time.)
func testSessionExpiry(t *testing.T, storage Storage) {
	e := storage(t, Limits{})
	ctx := testContext(t)

	past := herald.DetachedSession{ID: "past", Org: "org-a", Expires: time.Now().Add(-time.Second)}
	if err := e.SaveSession(ctx, past); err != nil {
		t.Fatalf("SaveSession of an expired session: %v", err)
	}
	_, err := e.TakeSession(ctx, "past")
	wantCode(t, err, herald.ENOTFOUND)

	live := herald.DetachedSession{ID: "replaced", Org: "org-a", Expires: time.Now().Add(time.Hour)}
	if err := e.SaveSession(ctx, live); err != nil {
		t.Fatalf("SaveSession: %v", err)
	}
	live.Expires = time.Now().Add(-time.Second)
	if err := e.SaveSession(ctx, live); err != nil {
		t.Fatalf("SaveSession: %v", err)
	}
	_, err = e.TakeSession(ctx, "replaced")
	wantCode(t, err, herald.ENOTFOUND)
}

// testSessionRace lets several takers race for each of many sessions:
// exactly one gets it, every other gets ENOTFOUND.
func testSessionRace(t *testing.T, storage Storage) {
	e := storage(t, Limits{})
	ctx := testContext(t)
	const sessions, takers = 20, 3

	for i := range sessions {
		s := herald.DetachedSession{ID: "race-" + string(rune('a'+i)), Org: "org-a", After: uint64(i), Expires: time.Now().Add(time.Hour)}
		if err := e.SaveSession(ctx, s); err != nil {
			t.Fatalf("SaveSession: %v", err)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		results := make(chan error, takers)
		for range takers {
			wg.Go(func() {
				<-start
				got, err := e.TakeSession(ctx, s.ID)
				if err == nil && got.After != s.After {
					t.Errorf("TakeSession(%s) = %+v, want After %d", s.ID, got, s.After)
				}
				results <- err
			})
		}
		close(start)
		wg.Wait()
		close(results)
		won := 0
		for err := range results {
			switch herald.ErrorCode(err) {
			case "":
				won++
			case herald.ENOTFOUND:
			default:
				t.Fatalf("TakeSession(%s) racing: %v", s.ID, err)
			}
		}
		if won != 1 {
			t.Fatalf("%d of %d racing takers got session %s, want exactly 1", won, takers, s.ID)
		}
	}
}

// sameSession compares sessions as stored: Expires as an instant, State
// as bytes (the suite saves it compact, as encoding/json keeps it).
func sameSession(a, b herald.DetachedSession) bool {
	return a.ID == b.ID && a.Org == b.Org && a.Dialect == b.Dialect && a.After == b.After &&
		bytes.Equal(a.State, b.State) && a.Expires.Equal(b.Expires)
}
