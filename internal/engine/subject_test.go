package engine

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/herald-gw/herald"
)

// oldToken is token as versions before the injective encoding wrote it,
// copied verbatim so that the tests pin the legacy on-disk format
// independently of the engine's own copy (legacyToken).
func oldToken(s string) string {
	if s == "" {
		return "_"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= utf8.RuneSelf || c == '.' || c == '*' || c == '>' || c == 0x7f {
			var b strings.Builder
			for _, r := range s {
				if r == '.' || r == '*' || r == '>' || r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
					r = '_'
				}
				b.WriteRune(r)
			}
			return b.String()
		}
	}
	return s
}

func oldSubject(r *herald.Record) string {
	return "ev." + r.Org + "." + oldToken(r.Channel) + "." + oldToken(r.Entity) + "." +
		oldToken(r.DeviceUUID) + "." + oldToken(r.EntityUUID)
}

// untoken inverts token; it exists only to prove token loses nothing.
func untoken(tok string) (string, error) {
	switch {
	case tok == "_":
		return "", nil
	case strings.HasPrefix(tok, "~"):
		b, err := base64.RawURLEncoding.DecodeString(tok[1:])
		return string(b), err
	}
	return tok, nil
}

// checkToken fails unless tok is one valid NATS subject token.
func checkToken(t *testing.T, in, tok string) {
	t.Helper()
	if tok == "" {
		t.Fatalf("token(%q) is empty", in)
	}
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c <= ' ' || c >= 0x7f || c == '.' || c == '*' || c == '>' {
			t.Fatalf("token(%q) = %q holds %q", in, tok, c)
		}
	}
}

// TestLegacyToken pins the subjects older versions wrote, which Latest
// still reads.
func TestLegacyToken(t *testing.T) {
	for in, want := range map[string]string{
		"":                  "_",
		"cam-1":             "cam-1",
		"a.b":               "a_b",
		"*":                 "_",
		">":                 "_",
		"door 7\tb\n":       "door_7_b_",
		"ctl\x00\x7f":       "ctl__",
		"caméra":            "caméra",
		"bad\xffutf8":       "bad_utf8",
		"nbsp\u00a0zwsp":    "nbsp_zwsp",
		"uuid-1234-ABCD_ef": "uuid-1234-ABCD_ef",
	} {
		if got := legacyToken(in); got != want {
			t.Errorf("legacyToken(%q) = %q, want %q", in, got, want)
		}
		if got := oldToken(in); got != want {
			t.Errorf("oldToken(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTokenKeepsIDsApart(t *testing.T) {
	groups := [][]string{
		{"a.b", "a_b", "a*b", "a>b", "a b", "a\tb", "a\u00a0b", "a\xffb"},
		{"", "_", "~", "~Xw"},
		{"caméra", "cam_ra", "cam__ra"},
	}
	for _, group := range groups {
		seen := make(map[string]string)
		for _, id := range group {
			tok := token(id)
			checkToken(t, id, tok)
			if other, ok := seen[tok]; ok {
				t.Errorf("token(%q) = token(%q) = %q", id, other, tok)
			}
			seen[tok] = id
		}
	}
}

func TestTokenLeavesSafeIDsAlone(t *testing.T) {
	for _, id := range []string{"cam-1", "uuid-1234-ABCD_ef", "POLICY_ALERT", "a~b", "x=y", "__"} {
		if got := token(id); got != id {
			t.Errorf("token(%q) = %q, want it unchanged", id, got)
		}
	}
	if got := token(""); got != "_" {
		t.Errorf(`token("") = %q, want "_" as before`, got)
	}
}

func TestEventSubject(t *testing.T) {
	r := herald.Record{Org: "org-a", Channel: "alerts", Entity: "POLICY_ALERT", DeviceUUID: "", EntityUUID: "p.1"}
	want := "ev.org-a.alerts.POLICY_ALERT._.~" + base64.RawURLEncoding.EncodeToString([]byte("p.1"))
	if got := eventSubject(&r); got != want {
		t.Errorf("eventSubject = %q, want %q", got, want)
	}
	q := herald.StateQuery{Entity: "POLICY_ALERT", EntityUUID: "p.1"}
	want = "ev.org-a.*.POLICY_ALERT.*.~" + base64.RawURLEncoding.EncodeToString([]byte("p.1"))
	if got := stateFilter("org-a", q); got != want {
		t.Errorf("stateFilter = %q, want %q", got, want)
	}
}

// FuzzSubjectToken checks that token is injective (untoken inverts it,
// and two different ids never share a token) and that every token is
// one valid subject token.
func FuzzSubjectToken(f *testing.F) {
	for _, seed := range [][2]string{
		{"a.b", "a_b"}, {"", "_"}, {"~", "~fg"}, {"door 7.b*", "door_7_b_"},
		{"caméra", "cam\xe9ra"}, {"x>", "x*"}, {"uuid-1", "uuid-1"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ta, tb := token(a), token(b)
		checkToken(t, a, ta)
		checkToken(t, b, tb)
		if back, err := untoken(ta); err != nil || back != a {
			t.Fatalf("untoken(token(%q)) = %q, %v", a, back, err)
		}
		if a != b && ta == tb {
			t.Fatalf("token(%q) = token(%q) = %q", a, b, ta)
		}
	})
}

// stateRecord is an event whose body carries its fields and a number.
func stateRecord(org, device, entityUUID string, n int) herald.Record {
	data, err := json.Marshal(map[string]any{
		"org": org, "channel": "alerts", "entity": "POLICY_ALERT", "type": "CREATE",
		"deviceUuid": device, "entityUuid": entityUUID, "timestampMs": 1_700_000_000_000 + n, "n": n,
	})
	if err != nil {
		panic(err)
	}
	return herald.Record{Org: org, Channel: "alerts", Entity: "POLICY_ALERT", DeviceUUID: device, EntityUUID: entityUUID, Data: data}
}

func numberIn(t *testing.T, event *herald.Event) int {
	t.Helper()
	var body struct{ N int }
	if err := json.Unmarshal(event.Body, &body); err != nil {
		t.Fatalf("event %d: %v", event.ID, err)
	}
	return body.N
}

func openTest(t *testing.T, cfg Config) *Engine {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	e, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

// waitUntil polls cond until it holds, for at most 20s.
func waitUntil(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after 20s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitForStateCopy(t *testing.T, e *Engine) {
	t.Helper()
	waitUntil(t, "STATE catches up", func() (bool, error) {
		lag, err := e.StateLag(t.Context())
		return lag == 0, err
	})
}

// TestLatestKeepsIDsApart appends events whose ids the old encoding
// merged: each query must find its own event, in the log and in STATE.
func TestLatestKeepsIDsApart(t *testing.T) {
	e := openTest(t, Config{})
	ctx := t.Context()
	entities := []string{"policy.1", "policy_1", "policy*1", "policy 1"}
	devices := []string{"door 7.b", "door_7_b", "door>7>b"}
	n := 0
	for _, entity := range entities {
		n++
		if _, err := e.Append(ctx, []herald.Record{stateRecord("org-a", "cam-1", entity, n)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, device := range devices {
		n++
		if _, err := e.Append(ctx, []herald.Record{stateRecord("org-a", device, "status", n)}); err != nil {
			t.Fatal(err)
		}
	}
	waitForStateCopy(t, e)

	check := func(q herald.StateQuery, want string, got func(*herald.Event) string) {
		t.Helper()
		event, err := e.Latest(ctx, "org-a", q)
		if err != nil {
			t.Errorf("Latest(%+v): %v", q, err)
		} else if got(event) != want {
			t.Errorf("Latest(%+v) gave the event of %q", q, got(event))
		}
		// The same question to STATE alone.
		msg, err := e.state.GetLastMsgForSubject(ctx, stateFilter("org-a", q))
		if err != nil {
			t.Errorf("STATE for %+v: %v", q, err)
			return
		}
		event, err = herald.DecodeEvent(msg.Sequence, msg.Data)
		if err != nil {
			t.Fatal(err)
		}
		if got(event) != want {
			t.Errorf("STATE for %+v holds the event of %q", q, got(event))
		}
	}
	for _, entity := range entities {
		check(herald.StateQuery{EntityUUID: entity}, entity, func(e *herald.Event) string { return e.EntityUUID })
	}
	for _, device := range devices {
		check(herald.StateQuery{DeviceUUID: device}, device, func(e *herald.Event) string { return e.DeviceUUID })
	}
}

// publishLegacy stores r the way versions before the injective encoding
// did: under oldSubject, through the engine's own connection.
func publishLegacy(t *testing.T, e *Engine, r herald.Record) uint64 {
	t.Helper()
	ack, err := e.js.Publish(t.Context(), oldSubject(&r), r.Data)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// TestLegacySubjectsStayReadable: events stored under the old, lossy
// subjects are still found by Latest, from the log and from STATE once
// retention removed them from the log, and by Replay.
func TestLegacySubjectsStayReadable(t *testing.T) {
	e := openTest(t, Config{MaxBytes: 8 << 10})
	ctx := t.Context()
	old := []herald.Record{
		stateRecord("org-a", "door 7.b", "policy.1", 1),
		stateRecord("org-a", "caméra", "policy-2", 2),
	}
	var ids []uint64
	for _, r := range old {
		ids = append(ids, publishLegacy(t, e, r))
	}
	waitForStateCopy(t, e)

	latest := func(q herald.StateQuery, want uint64) {
		t.Helper()
		event, err := e.Latest(ctx, "org-a", q)
		if err != nil {
			t.Fatalf("Latest(%+v) of a legacy event: %v", q, err)
		}
		if event.ID != want {
			t.Fatalf("Latest(%+v) = %d, want %d", q, event.ID, want)
		}
	}
	latest(herald.StateQuery{EntityUUID: "policy.1"}, ids[0])
	latest(herald.StateQuery{DeviceUUID: "door 7.b", EntityUUID: "policy.1"}, ids[0])
	latest(herald.StateQuery{DeviceUUID: "caméra"}, ids[1])
	var replayed []uint64
	if _, err := e.Replay(ctx, "org-a", 0, 0, func(event *herald.Event) error {
		replayed = append(replayed, event.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(replayed) != fmt.Sprint(ids) {
		t.Fatalf("Replay gave %v, want %v", replayed, ids)
	}

	// Push the legacy events out of the log: STATE answers for them.
	for i := 0; ; i++ {
		info, err := e.events.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.FirstSeq > ids[1] {
			break
		}
		if i == 2000 {
			t.Fatalf("retention kept the log from %d", info.State.FirstSeq)
		}
		batch := make([]herald.Record, 20)
		for j := range batch {
			batch[j] = stateRecord("org-a", "filler", fmt.Sprint("f-", j), 100+i)
		}
		if _, err := e.Append(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 {
			waitForStateCopy(t, e)
		}
	}
	latest(herald.StateQuery{EntityUUID: "policy.1"}, ids[0])
	latest(herald.StateQuery{DeviceUUID: "caméra"}, ids[1])

	// A new event of an id the old encoding merged with policy.1 is
	// stored under the legacy subject of policy.1 (policy_1 is a safe
	// token). It answers for its own id, never for policy.1; STATE keeps
	// one event per subject, so the legacy one is gone from it, as it
	// would have been before (see Latest).
	id, err := e.Append(ctx, []herald.Record{stateRecord("org-a", "cam-9", "policy_1", 3)})
	if err != nil {
		t.Fatal(err)
	}
	latest(herald.StateQuery{EntityUUID: "policy_1"}, id[0])
	waitForStateCopy(t, e)
	if event, err := e.Latest(ctx, "org-a", herald.StateQuery{EntityUUID: "policy.1"}); err == nil && event.ID != ids[0] {
		t.Fatalf("Latest(policy.1) gave the event of %q", event.EntityUUID)
	}
}

// TestLegacyMergedSubjectIsNotAnswer: when the newest event under a
// legacy subject belongs to another id the old encoding merged, Latest
// must not hand it out for this one.
func TestLegacyMergedSubjectIsNotAnswer(t *testing.T) {
	e := openTest(t, Config{})
	publishLegacy(t, e, stateRecord("org-a", "cam-1", "policy_1", 1))
	event, err := e.Latest(t.Context(), "org-a", herald.StateQuery{EntityUUID: "policy.1"})
	if err == nil {
		t.Fatalf("Latest(policy.1) with only policy_1 stored gave the event of %q", event.EntityUUID)
	}
	if herald.ErrorCode(err) != herald.ENOTFOUND {
		t.Fatalf("Latest(policy.1) with only policy_1 stored: %v, want ENOTFOUND", err)
	}
}

// TestLongSubjectRefused: fields whose tokens make a subject too long for
// the server's control line are refused with ETOOLARGE, and the engine's
// connection, which the server would close, keeps working.
func TestLongSubjectRefused(t *testing.T) {
	e := openTest(t, Config{})
	ctx := t.Context()
	long := strings.Repeat("a b", 341) // each token base64, 1365 bytes
	r := stateRecord("org-a", long, long, 1)
	r.Entity = long
	_, err := e.Append(ctx, []herald.Record{stateRecord("org-a", "cam-1", "fine", 0), r})
	if herald.ErrorCode(err) != herald.ETOOLARGE {
		t.Fatalf("Append with a %d-byte subject: %v, want ETOOLARGE", len(eventSubject(&r)), err)
	}
	var coded *herald.Error
	if errors.As(err, &coded) && coded.Index != 1 {
		t.Errorf("the error names record %d, want 1", coded.Index)
	}
	if _, err := e.Append(ctx, []herald.Record{stateRecord("org-a", "cam-1", "after", 2)}); err != nil {
		t.Fatalf("Append after a refused subject: %v", err)
	}
}
